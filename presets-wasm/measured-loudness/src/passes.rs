//! The measured passes: linear gain when it is enough, else gain + oversampled limiter passes
//! corrected from their measurements (the algorithm of loudness-normalize 1.0.0).

use preset_sdk::*;

use crate::{db_to_linear, round_to, volume};

/// How close a limited pass must land to the target to be delivered.
const TOLERANCE_LU: f64 = 0.2;
/// After the last pass, the closest one is still delivered within this distance.
const FALLBACK_TOLERANCE_LU: f64 = 0.5;
const MAX_LIMITER_PASSES: u32 = 5;
/// The most one pass changes the gain, in dB: a bound on a bad slope estimate.
const MAX_CORRECTION_DB: f64 = 6.0;
/// alimiter's lowest `limit` (0.0625).
const LIMITER_FLOOR_DB: f64 = -24.0;
/// The limiter runs at this multiple of the sample rate so it catches inter-sample peaks.
const OVERSAMPLING: u32 = 4;
/// Limiter attack and release, ms: fast enough for speech transients, slow enough not to
/// distort low frequencies.
const LIMITER_ATTACK_MS: f64 = 5.0;
const LIMITER_RELEASE_MS: f64 = 50.0;

/// Where the loudness must land.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Target {
    /// Integrated loudness, LUFS.
    pub target_lufs: f64,
    /// True-peak ceiling of the delivery, dBTP.
    pub ceiling_db: f64,
    /// dB kept free below the ceiling for the final encoder ([`crate::OutputFormat::headroom_db`]).
    pub headroom_db: f64,
}

impl Target {
    /// The peak a limited pass may reach: the ceiling, less the extra headroom lossy output needs.
    fn pass_ceiling_db(&self) -> f64 {
        self.ceiling_db - (self.headroom_db - 0.1)
    }
}

/// The audio to normalize: one stream of an input or intermediate, and its measurement.
#[derive(Clone, Debug, PartialEq)]
pub struct Source {
    pub media: MediaRef,
    /// Absolute index of the audio stream.
    pub stream: u32,
    pub sample_rate: u32,
    pub loudness: Loudness,
}

/// What a round does next.
#[derive(Clone, Debug, PartialEq)]
pub enum Progress {
    /// Render and measure another limited pass.
    Next(RoundWork),
    /// The loudness is settled: encode this.
    Deliver(Delivery),
}

/// How the delivered audio reaches the target.
#[derive(Clone, Debug, PartialEq)]
pub enum Delivery {
    /// Plain gain on the source keeps the peak under the ceiling.
    Linear { gain_db: f64 },
    /// A limited pass that was measured within tolerance: encode the pass as is.
    Limited {
        pass: u32,
        gain_db: f64,
        limit_db: f64,
        measured: Loudness,
        /// Stream of the pass's intermediate to encode.
        stream: u32,
    },
}

/// One limited pass: its settings and, once run, its measurement.
#[derive(Clone, Debug, PartialEq)]
struct Pass {
    number: u32,
    gain_db: f64,
    limit_db: f64,
    measured: Option<Loudness>,
}

impl Pass {
    fn name(&self) -> String {
        format!("pass{}", self.number)
    }
}

/// The next move for `source` towards `target`, replaying the passes measured so far
/// (intermediates and analyses `pass1`, `pass2`, ...; callers must not use those names).
///
/// ```
/// use measured_loudness::*;
/// use preset_sdk::*;
///
/// let source = Source {
///     media: MediaRef::produced("mix"),
///     stream: 0,
///     sample_rate: 48_000,
///     loudness: Loudness::new(-20.0, -8.0, 3.0),
/// };
/// let target = Target { target_lufs: -16.0, ceiling_db: -1.5, headroom_db: 0.1 };
/// let progress = normalize(&PlanRequest::new(3), &target, &source).unwrap();
/// assert_eq!(progress, Progress::Deliver(Delivery::Linear { gain_db: 4.0 }));
/// ```
pub fn normalize(
    request: &PlanRequest,
    target: &Target,
    source: &Source,
) -> Result<Progress, Refusal> {
    normalize_with(request, target, source, None)
        .map_err(|unreachable| unreachable.refusal(target, source))
}

/// [`normalize`] with `pre_gain` (an `acompressor` for a loudness-range limit, say) run before
/// the gain in every limited pass, and the passes tried handed back when none landed, for a
/// refusal in the caller's words. What `pre_gain` does to the loudness is only known once
/// measured, so with one there is never plain gain: every delivery is a measured pass.
///
/// ```
/// use measured_loudness::*;
/// use preset_sdk::*;
///
/// let source = Source {
///     media: MediaRef::input("main"),
///     stream: 0,
///     sample_rate: 48_000,
///     loudness: Loudness::new(-20.0, -8.0, 12.0),
/// };
/// let target = Target { target_lufs: -16.0, ceiling_db: -1.5, headroom_db: 0.1 };
/// let compress = FilterNode::new("acompressor").arg("ratio", 2.0);
/// let progress = normalize_with(&PlanRequest::new(3), &target, &source, Some(&compress));
/// let Ok(Progress::Next(work)) = progress else { panic!("a limited pass") };
/// assert!(work.steps[0].find_filter("acompressor").is_some());
/// ```
pub fn normalize_with(
    request: &PlanRequest,
    target: &Target,
    source: &Source,
    pre_gain: Option<&FilterNode>,
) -> Result<Progress, Unreachable> {
    let gain_db = target.target_lufs - source.loudness.integrated_lufs;
    let peak_after_gain = source.loudness.true_peak_dbtp + gain_db;
    if pre_gain.is_none() && peak_after_gain <= target.ceiling_db - target.headroom_db {
        log::info(format!(
            "linear gain {gain_db:+.2} dB keeps the peak at {peak_after_gain:.2} dBTP"
        ));
        return Ok(Progress::Deliver(Delivery::Linear { gain_db }));
    }
    let planner = Planner {
        target,
        source,
        pre_gain,
    };
    planner.limited(request, gain_db)
}

/// No limited pass landed near enough to the target under the ceiling.
#[derive(Clone, Debug, PartialEq)]
pub struct Unreachable {
    /// Each pass tried, in order: its gain in dB and what it measured.
    pub passes: Vec<(f64, Loudness)>,
}

impl Unreachable {
    /// What the passes gave, for a refusal: "gain +4.00 dB -> -17.50 LUFS / -1.60 dBTP; ...".
    ///
    /// ```
    /// use preset_sdk::Loudness;
    ///
    /// let unreachable = measured_loudness::Unreachable {
    ///     passes: vec![(4.0, Loudness::new(-17.5, -1.6, 1.0))],
    /// };
    /// assert_eq!(unreachable.passes_gave(), "gain +4.00 dB -> -17.50 LUFS / -1.60 dBTP");
    /// ```
    pub fn passes_gave(&self) -> String {
        let passes: Vec<String> = self
            .passes
            .iter()
            .map(|(gain_db, m)| {
                format!(
                    "gain {:+.2} dB -> {:.2} LUFS / {:.2} dBTP",
                    gain_db, m.integrated_lufs, m.true_peak_dbtp
                )
            })
            .collect();
        passes.join("; ")
    }

    /// The `TARGET_UNREACHABLE` refusal [`normalize`] gives.
    fn refusal(&self, target: &Target, source: &Source) -> Refusal {
        let input = &source.loudness;
        refuse(
            "TARGET_UNREACHABLE",
            format!(
                "{} LUFS under a {} dBTP ceiling is out of reach ({:.2} LUFS, {:.2} dBTP before gain): {} limiter passes gave {}; lower the target or raise the ceiling",
                target.target_lufs,
                target.ceiling_db,
                input.integrated_lufs,
                input.true_peak_dbtp,
                self.passes.len(),
                self.passes_gave()
            ),
        )
    }
}

struct Planner<'a> {
    target: &'a Target,
    source: &'a Source,
    pre_gain: Option<&'a FilterNode>,
}

impl Planner<'_> {
    fn limited(&self, request: &PlanRequest, first_gain_db: f64) -> Result<Progress, Unreachable> {
        let mut pass = Pass {
            number: 1,
            gain_db: first_gain_db,
            limit_db: self.target.ceiling_db - self.target.headroom_db,
            measured: None,
        };
        let mut done: Vec<Pass> = Vec::new();
        loop {
            let Some(measured) = request.loudness(&pass.name()) else {
                log::info(format!(
                    "pass {}: gain {:+.2} dB, limit {:.2} dBTP",
                    pass.number, pass.gain_db, pass.limit_db
                ));
                let measure =
                    AnalysisRequest::loudness(pass.name(), MediaRef::produced(pass.name()), 0);
                let work = RoundWork::new()
                    .step(self.limiter_step(&pass))
                    .analyze(measure);
                return Ok(Progress::Next(work));
            };
            log::info(format!(
                "pass {} measured {:.2} LUFS, {:.2} dBTP",
                pass.number, measured.integrated_lufs, measured.true_peak_dbtp
            ));
            pass.measured = Some(*measured);
            if self.landed(&pass, TOLERANCE_LU) {
                return Ok(Progress::Deliver(delivery(request, &pass)));
            }
            done.push(pass);
            if done.len() as u32 == MAX_LIMITER_PASSES {
                break;
            }
            pass = self.next_pass(&done);
        }

        let closest = done
            .iter()
            .filter(|p| self.landed(p, FALLBACK_TOLERANCE_LU))
            .min_by(|a, b| self.miss_lu(a).total_cmp(&self.miss_lu(b)));
        match closest {
            Some(pass) => {
                log::warn(format!(
                    "no pass within {TOLERANCE_LU} LU; delivering pass {}",
                    pass.number
                ));
                Ok(Progress::Deliver(delivery(request, pass)))
            }
            None => Err(Unreachable {
                passes: done
                    .iter()
                    .filter_map(|p| p.measured.map(|m| (p.gain_db, m)))
                    .collect(),
            }),
        }
    }

    fn miss_lu(&self, pass: &Pass) -> f64 {
        pass.measured.as_ref().map_or(f64::INFINITY, |m| {
            (m.integrated_lufs - self.target.target_lufs).abs()
        })
    }

    fn landed(&self, pass: &Pass, tolerance_lu: f64) -> bool {
        let under_ceiling = pass
            .measured
            .as_ref()
            .is_some_and(|m| m.true_peak_dbtp <= self.target.pass_ceiling_db());
        under_ceiling && self.miss_lu(pass) <= tolerance_lu
    }

    /// The next pass from the measured ones. The limiter eats loudness, more the harder it
    /// works, so output loudness grows slower than the gain: the correction is divided by that
    /// slope, taken from the last two passes when they shared a limit, else estimated from one
    /// pass assuming the loss grows with the square of the gain above the limiter's onset.
    fn next_pass(&self, done: &[Pass]) -> Pass {
        let last = done.last().expect("at least one pass");
        let measured = last.measured.as_ref().expect("measured pass");
        let miss = self.target.target_lufs - measured.integrated_lufs;
        let input = &self.source.loudness;

        let previous = done.len().checked_sub(2).map(|i| &done[i]);
        let slope = match previous {
            Some(prev)
                if prev.limit_db == last.limit_db && (last.gain_db - prev.gain_db).abs() > 0.05 =>
            {
                let prev_lufs = prev
                    .measured
                    .as_ref()
                    .expect("measured pass")
                    .integrated_lufs;
                (measured.integrated_lufs - prev_lufs) / (last.gain_db - prev.gain_db)
            }
            _ => {
                let onset_db = last.limit_db - input.true_peak_dbtp;
                let loss_db = input.integrated_lufs + last.gain_db - measured.integrated_lufs;
                let above_onset = last.gain_db - onset_db;
                if above_onset > 0.5 {
                    1.0 - 2.0 * loss_db / above_onset
                } else {
                    1.0
                }
            }
        };
        let slope = slope.clamp(0.25, 1.0);
        let correction_db = (miss / slope).clamp(-MAX_CORRECTION_DB, MAX_CORRECTION_DB);

        let mut limit_db = last.limit_db;
        let pass_ceiling = self.target.pass_ceiling_db();
        if measured.true_peak_dbtp > pass_ceiling {
            limit_db -= measured.true_peak_dbtp - pass_ceiling + 0.1;
        }
        Pass {
            number: last.number + 1,
            gain_db: last.gain_db + correction_db,
            limit_db: limit_db.max(LIMITER_FLOOR_DB),
            measured: None,
        }
    }

    /// [pre-gain ->] gain -> 4x upsample -> limiter -> back to the source rate, into a float
    /// WAV (lossless, and nothing clips before the final encode).
    fn limiter_step(&self, pass: &Pass) -> Step {
        let rate = self.source.sample_rate;
        let chain = Chain::new(Pad::stream(0, self.source.stream))
            .then_maybe(self.pre_gain.cloned())
            .then(volume(pass.gain_db))
            .then(FilterNode::new("aresample").arg("sample_rate", rate * OVERSAMPLING))
            .then(
                FilterNode::new("alimiter")
                    .arg("limit", round_to(db_to_linear(pass.limit_db), 5))
                    .arg("attack", LIMITER_ATTACK_MS)
                    .arg("release", LIMITER_RELEASE_MS)
                    // On by default, `level` renormalizes the output and undoes the gain.
                    .arg("level", false),
            )
            .then(FilterNode::new("aresample").arg("sample_rate", rate));
        Step::new(pass.name())
            .input(self.source.media.clone())
            .chain("limited", chain)
            .output(
                Output::new(pass.name(), "wav")
                    .audio(Pad::link("limited"), Encoder::new("pcm_f32le")),
            )
    }
}

fn delivery(request: &PlanRequest, pass: &Pass) -> Delivery {
    let stream = request
        .intermediate(&pass.name())
        .and_then(MediaInfo::best_audio)
        .map_or(0, |a| a.index());
    Delivery::Limited {
        pass: pass.number,
        gain_db: pass.gain_db,
        limit_db: pass.limit_db,
        measured: pass.measured.expect("a delivered pass was measured"),
        stream,
    }
}

impl Delivery {
    /// The final step, named `name`: reads the source (linear) or the landed pass (limited)
    /// and writes the [`Output`] that `output` builds around the pad carrying the audio.
    ///
    /// ```
    /// use measured_loudness::*;
    /// use preset_sdk::*;
    ///
    /// let source = Source {
    ///     media: MediaRef::produced("mix"),
    ///     stream: 0,
    ///     sample_rate: 48_000,
    ///     loudness: Loudness::new(-20.0, -8.0, 3.0),
    /// };
    /// let step = Delivery::Linear { gain_db: 4.0 }.step("encode", &source, |pad| {
    ///     Output::new("main", "flac").audio(pad, Encoder::new("flac"))
    /// });
    /// assert!(step.find_filter("volume").is_some());
    /// ```
    pub fn step(&self, name: &str, source: &Source, output: impl FnOnce(Pad) -> Output) -> Step {
        match self {
            Delivery::Linear { gain_db } => Step::new(name)
                .input(source.media.clone())
                .chain(
                    "delivered",
                    Chain::new(Pad::stream(0, source.stream)).then(volume(*gain_db)),
                )
                .output(output(Pad::link("delivered"))),
            Delivery::Limited { pass, stream, .. } => Step::new(name)
                .input(MediaRef::produced(format!("pass{pass}")))
                .output(output(Pad::stream(0, *stream))),
        }
    }

    /// The gain applied, in dB.
    ///
    /// ```
    /// assert_eq!(measured_loudness::Delivery::Linear { gain_db: 2.5 }.gain_db(), 2.5);
    /// ```
    pub fn gain_db(&self) -> f64 {
        match self {
            Delivery::Linear { gain_db } | Delivery::Limited { gain_db, .. } => *gain_db,
        }
    }

    /// Adds `gain_db`, `limited`, `passes` and the output's `output_integrated_lufs` and
    /// `output_true_peak_dbtp` (measured for a limited pass, predicted from the source's
    /// measurement for linear gain) to the report.
    ///
    /// ```
    /// use measured_loudness::*;
    /// use preset_sdk::*;
    ///
    /// let source = Source {
    ///     media: MediaRef::produced("mix"),
    ///     stream: 0,
    ///     sample_rate: 48_000,
    ///     loudness: Loudness::new(-20.0, -8.0, 3.0),
    /// };
    /// let finish = Delivery::Linear { gain_db: 4.0 }.report(Finish::new(), &source);
    /// assert_eq!(finish.report_value("output_integrated_lufs"), Some(&Value::Number(-16.0)));
    /// ```
    pub fn report(&self, finish: Finish, source: &Source) -> Finish {
        let (limited, passes, output) = match self {
            Delivery::Linear { gain_db } => (
                false,
                0,
                Loudness::new(
                    source.loudness.integrated_lufs + gain_db,
                    source.loudness.true_peak_dbtp + gain_db,
                    source.loudness.lra_lu,
                ),
            ),
            Delivery::Limited { pass, measured, .. } => (true, *pass, *measured),
        };
        let mut finish = finish
            .report("gain_db", round_to(self.gain_db(), 2))
            .report("limited", limited)
            .report("passes", passes);
        if let Delivery::Limited { limit_db, .. } = self {
            finish = finish.report("limiter_limit_db", round_to(*limit_db, 2));
        }
        finish
            .report(
                "output_integrated_lufs",
                round_to(output.integrated_lufs, 2),
            )
            .report("output_true_peak_dbtp", round_to(output.true_peak_dbtp, 2))
            .report("output_lra_lu", round_to(output.lra_lu, 2))
    }
}

#[cfg(test)]
mod tests;
