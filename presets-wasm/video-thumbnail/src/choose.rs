//! When the still is taken.

use preset_sdk::*;
use video_source::Source;

const BLACK_ID: &str = "black";
const SCENES_ID: &str = "scenes";
/// scdet's score (0 to 100) from which a change counts as a cut.
const SCENE_THRESHOLD: f64 = 10.0;
/// How far past a cut the still is taken, so the new shot is fully on screen.
const AFTER_CUT_S: f64 = 0.5;
/// The longest first part searched, and the share of the video it is.
const SEARCH_MAX_S: f64 = 120.0;
const SEARCH_SHARE: f64 = 1.0 / 3.0;

/// What the params ask for.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Asked {
    Time(f64),
    Fraction(f64),
    Automatic,
}

impl Asked {
    pub fn from_params(params: &Params) -> Result<Asked, Refusal> {
        Ok(
            match (
                params.optional_number("time")?,
                params.optional_number("fraction")?,
            ) {
                (Some(t), _) => Asked::Time(t),
                (None, Some(f)) => Asked::Fraction(f),
                (None, None) => Asked::Automatic,
            },
        )
    }

    pub fn is_automatic(&self) -> bool {
        *self == Asked::Automatic
    }
}

/// The time chosen and why, as the report says it.
pub struct Chosen {
    pub time_s: f64,
    pub chosen_by: &'static str,
}

/// The part of the video an automatic choice searches.
fn search_window(source: &Source) -> f64 {
    source
        .duration_s()
        .map_or(SEARCH_MAX_S, |d| (d * SEARCH_SHARE).min(SEARCH_MAX_S))
        .max(0.1)
}

/// Round 1's analyses for an automatic choice: black intervals and scene changes of the
/// search window.
pub fn analyses(source: &Source) -> [AnalysisRequest; 2] {
    let window = search_window(source);
    let main = || MediaRef::input("main");
    [
        AnalysisRequest::black_intervals(BLACK_ID, main(), source.index(), BlackSpec::new(0.1))
            .window(0.0, window),
        AnalysisRequest::scene_changes(SCENES_ID, main(), source.index(), SCENE_THRESHOLD)
            .window(0.0, window),
    ]
}

pub fn time(request: &PlanRequest, source: &Source, asked: Asked) -> Result<Chosen, Refusal> {
    let duration = source.duration_s();
    let last = source.last_still_s();
    match asked {
        Asked::Time(t) => {
            if let Some(d) = duration
                && t >= d
            {
                return Err(refuse(
                    "TIME_OUT_OF_RANGE",
                    format!("time {t} s is past the end of the video ({d:.3} s)"),
                ));
            }
            Ok(Chosen {
                time_s: last.map_or(t, |l| t.min(l)),
                chosen_by: "time",
            })
        }
        Asked::Fraction(f) => {
            let d = duration.ok_or_else(|| {
                refuse(
                    "NO_DURATION",
                    "the video's duration is unknown, so a fraction of it is too: give a time",
                )
            })?;
            Ok(Chosen {
                time_s: (f * d).min(last.unwrap_or(d)),
                chosen_by: "fraction",
            })
        }
        Asked::Automatic => {
            let missing = || {
                refuse(
                    "NO_ANALYSIS",
                    "round 2 came without the black and scene analyses of round 1",
                )
            };
            let black = request.black_intervals(BLACK_ID).ok_or_else(missing)?;
            let scenes = request.scene_changes(SCENES_ID).ok_or_else(missing)?;
            let chosen = automatic(black, scenes, search_window(source));
            Ok(Chosen {
                time_s: last.map_or(chosen.time_s, |l| chosen.time_s.min(l)),
                ..chosen
            })
        }
    }
}

/// Just after the strongest cut that does not land in black; else the first moment past a
/// tenth of the window that is not black.
pub fn automatic(black: &[Interval], scenes: &[SceneChange], window: f64) -> Chosen {
    let is_black = |t: f64| black.iter().any(|b| t >= b.start_s && t < b.end_s);
    let cut = scenes
        .iter()
        .map(|s| (s.time_s + AFTER_CUT_S, s.score))
        .filter(|(t, _)| *t < window && !is_black(*t))
        .max_by(|a, b| a.1.total_cmp(&b.1));
    if let Some((time_s, _)) = cut {
        return Chosen {
            time_s,
            chosen_by: "scene_change",
        };
    }
    let mut time_s = window / 10.0;
    let mut moved = false;
    // Intervals may touch; step past each one the time lands in.
    while let Some(b) = black
        .iter()
        .find(|b| time_s >= b.start_s && time_s < b.end_s)
    {
        time_s = b.end_s + AFTER_CUT_S;
        moved = true;
    }
    Chosen {
        time_s,
        chosen_by: if moved { "after_black" } else { "start" },
    }
}
