//! Measurements a preset can ask for before it plans, run by the host with ffmpeg: loudness of
//! an audio stream; black intervals, scene changes, the crop box and interlacing of a video
//! stream.
//!
//! [`run`] is the one entry point. Every measurement honours the request's window (an input
//! seek and duration, so only that part is decoded) and reports times in seconds from the start
//! of the source, not of the window. Loudness, black intervals and scene changes read the whole
//! window, under [`ffmpeg::time_limit`] of its length. The crop box and interlacing are read
//! from a sample: at most [`SAMPLE_WINDOWS`] stretches spread evenly over the window, each at
//! most [`SAMPLE_SECONDS`] long and [`SAMPLE_FRAMES`] frames, so their cost does not grow with
//! the media.
//!
//! Not here: whether a plan may request an analysis, or of which stream (the planning session
//! checks that before calling [`run`]).

use std::ffi::OsString;
use std::path::Path;

use crate::error::{ErrorCode, JobError};
use crate::ffmpeg::{self, Tools};
use crate::model;

/// How many stretches of a window the crop box and interlacing are measured on.
pub const SAMPLE_WINDOWS: u32 = 5;
/// The longest stretch measured for the crop box and interlacing.
pub const SAMPLE_SECONDS: f64 = 2.0;
/// The most frames decoded per stretch for the crop box and interlacing.
pub const SAMPLE_FRAMES: u32 = 50;

const STEP: &str = "analyze";

/// The part of the source a measurement reads, in seconds from its start.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Span {
    start_s: f64,
    len_s: f64,
}

impl Span {
    /// The request's window cut to the media's measured length, or the whole of it.
    fn of(window: Option<model::TimeWindow>, duration_s: f64) -> Self {
        let duration_s = if duration_s.is_finite() {
            duration_s.max(0.0)
        } else {
            0.0
        };
        match window {
            None => Self {
                start_s: 0.0,
                len_s: duration_s,
            },
            Some(w) => {
                let start_s = w.start_s.clamp(0.0, duration_s);
                Self {
                    start_s,
                    len_s: w.duration_s.clamp(0.0, duration_s - start_s),
                }
            }
        }
    }

    /// The stretches the sampled measurements read: the whole span when it is short, else
    /// [`SAMPLE_WINDOWS`] stretches of [`SAMPLE_SECONDS`] centred in equal parts of it.
    fn samples(self) -> Vec<Span> {
        let n = f64::from(SAMPLE_WINDOWS);
        if self.len_s <= n * SAMPLE_SECONDS {
            return vec![self];
        }
        let part = self.len_s / n;
        (0..SAMPLE_WINDOWS)
            .map(|i| Span {
                start_s: self.start_s + part * (f64::from(i) + 0.5) - SAMPLE_SECONDS / 2.0,
                len_s: SAMPLE_SECONDS,
            })
            .collect()
    }
}

/// Runs one requested analysis of `path` (whose measured length is `duration_s`). The request
/// is already validated: its stream exists and is of the kind the analysis needs.
///
/// A measurement the media makes fail is `ANALYSIS_FAILED`; ffmpeg stopped by something else
/// (its time limit, a signal the host did not send, a host out of resources) keeps its own code,
/// so a retryable fault is not recorded as bad media.
pub async fn run(
    tools: &Tools,
    path: &Path,
    request: &model::AnalysisRequest,
    duration_s: f64,
) -> Result<model::AnalysisValue, JobError> {
    let span = Span::of(request.window, duration_s);
    let stream = request.stream;
    Ok(match request.kind {
        model::AnalysisKind::Loudness => {
            model::AnalysisValue::Loudness(loudness_of(tools, path, stream, span).await?)
        }
        model::AnalysisKind::BlackIntervals(spec) => {
            let filter = format!(
                "blackdetect=d={}:pic_th={}:pix_th={}",
                spec.min_duration_s, spec.picture_threshold, spec.pixel_threshold
            );
            let out = measure(
                tools,
                path,
                stream,
                span,
                Filter::Video(&filter),
                None,
                "black intervals",
            )
            .await?;
            let found = parse_black(&String::from_utf8_lossy(&out.stderr)).ok_or_else(|| {
                failed(
                    "more black intervals than ffmpeg's log kept were found; ask for a shorter \
                     window or a longer minimum duration",
                )
            })?;
            model::AnalysisValue::BlackIntervals(shifted_intervals(found, span.start_s))
        }
        model::AnalysisKind::SceneChanges(spec) => {
            // Only the frames scdet marks as cuts reach the print, on stdout (capped far above
            // stderr's kept tail), so a long film's cuts are not lost.
            let filter = format!(
                "scdet=t={},metadata=mode=select:key=lavfi.scd.time,\
                 metadata=mode=print:file=pipe\\\\:1",
                spec.threshold
            );
            let out = measure(
                tools,
                path,
                stream,
                span,
                Filter::Video(&filter),
                None,
                "scene changes",
            )
            .await?;
            let mut cuts = parse_scenes(&String::from_utf8_lossy(&out.stdout));
            for cut in &mut cuts {
                cut.time_s += span.start_s;
            }
            model::AnalysisValue::SceneChanges(cuts)
        }
        model::AnalysisKind::Crop => {
            // reset=1 makes each frame's box its own; skip=0 because a seek already lands on
            // decoded frames. round=2 keeps 4:2:0 chroma aligned without cutting picture.
            let mut boxes = Vec::new();
            for sample in span.samples() {
                let out = measure(
                    tools,
                    path,
                    stream,
                    sample,
                    Filter::Video("cropdetect=round=2:reset=1:skip=0"),
                    Some(frames_for(sample)),
                    "crop detection",
                )
                .await?;
                boxes.extend(parse_crop_boxes(&String::from_utf8_lossy(&out.stderr)));
            }
            model::AnalysisValue::Crop(stable_box(&boxes))
        }
        model::AnalysisKind::Interlacing => {
            let mut counts = IdetCounts::default();
            for sample in span.samples() {
                let out = measure(
                    tools,
                    path,
                    stream,
                    sample,
                    Filter::Video("idet"),
                    Some(frames_for(sample)),
                    "interlacing detection",
                )
                .await?;
                let found = parse_idet(&String::from_utf8_lossy(&out.stderr))
                    .ok_or_else(|| failed("ffmpeg printed no interlacing summary"))?;
                counts.add(found);
            }
            model::AnalysisValue::Interlacing(counts.verdict())
        }
    })
}

/// The most frames a sampled stretch decodes: [`SAMPLE_FRAMES`] per stretch, and the whole
/// budget when the window is short enough to be read as one stretch.
fn frames_for(sample: Span) -> u32 {
    if sample.len_s > SAMPLE_SECONDS {
        SAMPLE_WINDOWS * SAMPLE_FRAMES
    } else {
        SAMPLE_FRAMES
    }
}

fn failed(why: impl Into<String>) -> JobError {
    JobError::new(ErrorCode::AnalysisFailed, STEP, why)
}

/// The argv of one measuring pass: the guarded input (sought to the span), one stream through
/// `filter` (`-vf` or `-af`), decoded to nowhere.
fn argv(
    path: &Path,
    stream: u32,
    span: Span,
    filter: Filter<'_>,
    frames: Option<u32>,
) -> Vec<OsString> {
    let mut args: Vec<OsString> = ["-hide_banner", "-nostdin", "-nostats"]
        .iter()
        .map(Into::into)
        .collect();
    args.extend(ffmpeg::input_guard_args());
    if span.start_s > 0.0 {
        args.extend(["-ss".into(), format!("{:.6}", span.start_s).into()]);
    }
    // A length of 0 is a media whose length is unknown: read it all (the time limit holds).
    if span.len_s > 0.0 {
        args.extend(["-t".into(), format!("{:.6}", span.len_s).into()]);
    }
    args.extend(["-i".into(), path.as_os_str().to_owned()]);
    args.extend(["-map".into(), format!("0:{stream}").into()]);
    if let Some(frames) = frames {
        args.extend(["-frames:v".into(), frames.to_string().into()]);
    }
    let (flag, graph) = match filter {
        Filter::Video(g) => ("-vf", g),
        Filter::Audio(g) => ("-af", g),
    };
    for a in [flag, graph, "-f", "null", "-"] {
        args.push(a.into());
    }
    args
}

/// The filter chain a measuring pass runs the stream through.
#[derive(Debug, Clone, Copy)]
enum Filter<'a> {
    Video(&'a str),
    Audio(&'a str),
}

async fn measure(
    tools: &Tools,
    path: &Path,
    stream: u32,
    span: Span,
    filter: Filter<'_>,
    frames: Option<u32>,
    what: &str,
) -> Result<ffmpeg::Captured, JobError> {
    let args = argv(path, stream, span, filter, frames);
    let out = ffmpeg::capture(
        &tools.ffmpeg,
        &args,
        ffmpeg::time_limit(span.len_s),
        tools,
        path.parent(),
    )
    .await
    .map_err(|e| JobError::new(e.code(ErrorCode::AnalysisFailed), STEP, e.to_string()))?;
    if !out.success {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let last = stderr
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("")
            .replace(&path.display().to_string(), "input");
        return Err(failed(format!("{what} of stream {stream} failed: {last}")));
    }
    Ok(out)
}

/// EBU R128 loudness of one audio stream of the whole file (ffmpeg's `ebur128` filter, true
/// peak oversampled). [`run`] is the entry point for a requested analysis; this stays for the
/// callers that measure a whole file.
pub async fn loudness(
    tools: &Tools,
    path: &Path,
    stream: u32,
    duration_s: f64,
) -> Result<model::Loudness, JobError> {
    loudness_of(tools, path, stream, Span::of(None, duration_s)).await
}

async fn loudness_of(
    tools: &Tools,
    path: &Path,
    stream: u32,
    span: Span,
) -> Result<model::Loudness, JobError> {
    let filter = Filter::Audio("ebur128=peak=true");
    let out = measure(
        tools,
        path,
        stream,
        span,
        filter,
        None,
        "loudness measurement",
    )
    .await?;
    parse_summary(&String::from_utf8_lossy(&out.stderr))
        .ok_or_else(|| failed("ffmpeg printed no loudness summary"))
}

fn value_after(text: &str, key: &str) -> Option<f64> {
    let line = text.lines().find(|l| l.trim_start().starts_with(key))?;
    let field = line.trim_start()[key.len()..].split_whitespace().next()?;
    match field {
        "-inf" => Some(f64::NEG_INFINITY),
        "inf" => Some(f64::INFINITY),
        v => v.parse().ok(),
    }
}

/// Parses the `Summary:` block that ebur128 prints at the end.
pub fn parse_summary(stderr: &str) -> Option<model::Loudness> {
    let summary = &stderr[stderr.rfind("Summary:")?..];
    let integrated = &summary[summary.find("Integrated loudness:")?..];
    let range = &summary[summary.find("Loudness range:")?..];
    let peak = &summary[summary.find("True peak:")?..];
    Some(model::Loudness {
        integrated_lufs: value_after(integrated, "I:")?,
        threshold_lufs: value_after(integrated, "Threshold:")?,
        lra_lu: value_after(range, "LRA:")?,
        true_peak_dbtp: value_after(peak, "Peak:")?,
    })
}

/// The value of `key:` (ffmpeg's `key:value` log fields) in `line`.
fn field(line: &str, key: &str) -> Option<f64> {
    line.split_whitespace()
        .find_map(|f| f.strip_prefix(key)?.strip_prefix(':')?.parse().ok())
}

/// blackdetect's intervals (`black_start:0 black_end:1 black_duration:1`), in window time.
/// None when the log's head was cut (ffmpeg's stderr is kept as a bounded tail), so intervals
/// may be missing: `Input #0` is printed before any frame is.
pub fn parse_black(stderr: &str) -> Option<Vec<model::Interval>> {
    if !stderr.contains("Input #0") {
        return None;
    }
    Some(
        stderr
            .lines()
            .filter(|l| l.contains("black_start:"))
            .filter_map(|l| {
                Some(model::Interval {
                    start_s: field(l, "black_start")?,
                    end_s: field(l, "black_end")?,
                })
            })
            .collect(),
    )
}

fn shifted_intervals(mut found: Vec<model::Interval>, by_s: f64) -> Vec<model::Interval> {
    for i in &mut found {
        i.start_s += by_s;
        i.end_s += by_s;
    }
    found
}

/// The cuts printed by `metadata=mode=print` after scdet (`lavfi.scd.score=` and
/// `lavfi.scd.time=` lines per selected frame), in window time.
pub fn parse_scenes(stdout: &str) -> Vec<model::SceneChange> {
    let mut cuts = Vec::new();
    let mut score = None;
    for line in stdout.lines() {
        if line.starts_with("frame:") {
            score = None;
        } else if let Some(s) = line.strip_prefix("lavfi.scd.score=") {
            score = s.trim().parse().ok();
        } else if let Some(t) = line.strip_prefix("lavfi.scd.time=")
            && let (Ok(time_s), Some(score)) = (t.trim().parse(), score)
        {
            cuts.push(model::SceneChange { time_s, score });
        }
    }
    cuts
}

/// Each frame's box from cropdetect's log (`w:320 h:240 x:0 y:40`). A black frame gives a
/// negative width or height and no box.
pub fn parse_crop_boxes(stderr: &str) -> Vec<model::CropBox> {
    stderr
        .lines()
        .filter(|l| l.contains("cropdetect") && l.contains(" crop="))
        .filter_map(|l| {
            let get = |k| field(l, k).filter(|v| *v >= 0.0).map(|v| v as u32);
            Some(model::CropBox {
                width: get("w").filter(|w| *w > 0)?,
                height: get("h").filter(|h| *h > 0)?,
                x: get("x")?,
                y: get("y")?,
            })
        })
        .collect()
}

/// The box most frames agree on; among equally frequent ones the largest, so that picture is
/// never cut on a tie. None when every frame measured was black.
pub fn stable_box(boxes: &[model::CropBox]) -> Option<model::CropBox> {
    let mut counted: Vec<(model::CropBox, usize)> = Vec::new();
    for b in boxes {
        match counted.iter_mut().find(|(c, _)| c == b) {
            Some((_, n)) => *n += 1,
            None => counted.push((*b, 1)),
        }
    }
    counted
        .into_iter()
        .max_by_key(|(b, n)| (*n, u64::from(b.width) * u64::from(b.height)))
        .map(|(b, _)| b)
}

/// idet's multi-frame detection counts, which use neighbouring frames and so are steadier
/// than its single-frame ones.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IdetCounts {
    pub tff: u32,
    pub bff: u32,
    pub progressive: u32,
    pub undetermined: u32,
}

impl IdetCounts {
    fn add(&mut self, other: Self) {
        self.tff += other.tff;
        self.bff += other.bff;
        self.progressive += other.progressive;
        self.undetermined += other.undetermined;
    }

    /// Interlaced when more frames look interlaced than progressive and at least 80 % of them
    /// show one field order; progressive otherwise; undetermined when no frame was decided.
    /// Fields of an interlaced source keep one order, while fast motion in progressive frames
    /// (sharp synthetic patterns especially) trips idet's comparisons both ways about equally.
    pub fn verdict(self) -> model::Interlacing {
        let interlaced = self.tff + self.bff;
        let consistent = |order: u32| u64::from(order) * 5 >= u64::from(interlaced) * 4;
        let verdict = if interlaced == 0 && self.progressive == 0 {
            model::ScanType::Undetermined
        } else if interlaced > self.progressive && consistent(self.tff) {
            model::ScanType::TopFieldFirst
        } else if interlaced > self.progressive && consistent(self.bff) {
            model::ScanType::BottomFieldFirst
        } else {
            model::ScanType::Progressive
        };
        model::Interlacing {
            verdict,
            progressive_frames: self.progressive,
            top_field_first_frames: self.tff,
            bottom_field_first_frames: self.bff,
            undetermined_frames: self.undetermined,
        }
    }
}

/// The `Multi frame detection: TFF: 46 BFF: 0 Progressive: 5 Undetermined: 0` summary line.
pub fn parse_idet(stderr: &str) -> Option<IdetCounts> {
    let line = stderr
        .lines()
        .rfind(|l| l.contains("Multi frame detection:"))?;
    let words: Vec<&str> = line.split_whitespace().collect();
    let count = |key: &str| -> Option<u32> {
        let at = words.iter().position(|w| *w == key)?;
        words.get(at + 1)?.parse().ok()
    };
    Some(IdetCounts {
        tff: count("TFF:")?,
        bff: count("BFF:")?,
        progressive: count("Progressive:")?,
        undetermined: count("Undetermined:")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_summary() {
        let text = "[Parsed_ebur128_0 @ 0x5] Summary:\n\n  Integrated loudness:\n    I:         -16.4 LUFS\n    Threshold: -26.9 LUFS\n\n  Loudness range:\n    LRA:         5.1 LU\n    Threshold: -37.0 LUFS\n    LRA low:   -19.9 LUFS\n    LRA high:  -14.8 LUFS\n\n  True peak:\n    Peak:       -1.6 dBFS\n";
        let l = parse_summary(text).unwrap();
        assert_eq!(l.integrated_lufs, -16.4);
        assert_eq!(l.threshold_lufs, -26.9);
        assert_eq!(l.lra_lu, 5.1);
        assert_eq!(l.true_peak_dbtp, -1.6);
        let silent = text.replace("-1.6 dBFS", "-inf dBFS");
        assert_eq!(
            parse_summary(&silent).unwrap().true_peak_dbtp,
            f64::NEG_INFINITY
        );
    }

    #[test]
    fn parses_black_intervals_and_notices_a_cut_log() {
        let log = "Input #0, mov,mp4,m4a,3gp,3g2,mj2, from 't.mp4':\n\
            [blackdetect @ 0x55] black_start:0 black_end:1 black_duration:1\n\
            frame=  100 fps=0.0 q=-0.0 size=N/A\n\
            [blackdetect @ 0x55] black_start:2.52 black_end:3.52 black_duration:1\n";
        let found = parse_black(log).unwrap();
        assert_eq!(
            found,
            [
                model::Interval {
                    start_s: 0.0,
                    end_s: 1.0
                },
                model::Interval {
                    start_s: 2.52,
                    end_s: 3.52
                }
            ]
        );
        let cut = &log[log.find("[blackdetect").unwrap() + 5..];
        assert_eq!(parse_black(cut), None);
        let shifted = shifted_intervals(found, 10.0);
        assert_eq!(shifted[1].start_s, 12.52);
    }

    #[test]
    fn parses_scene_cuts_from_the_metadata_print() {
        let out = "frame:0    pts:6400    pts_time:0.5\nlavfi.scd.mafd=37.225\n\
            lavfi.scd.score=37.225\nlavfi.scd.time=0.5\nframe:1    pts:25856   pts_time:2.02\n\
            lavfi.scd.mafd=37.328\nlavfi.scd.score=36.201\nlavfi.scd.time=2.02\n";
        assert_eq!(
            parse_scenes(out),
            [
                model::SceneChange {
                    time_s: 0.5,
                    score: 37.225
                },
                model::SceneChange {
                    time_s: 2.02,
                    score: 36.201
                }
            ]
        );
    }

    #[test]
    fn the_stable_crop_box_is_the_most_frequent_and_black_frames_give_none() {
        let log = "[Parsed_cropdetect_0 @ 0x5] x1:0 x2:319 y1:40 y2:279 w:320 h:240 x:0 y:40 pts:0 t:0.000000 crop=320:240:0:40\n\
            [Parsed_cropdetect_0 @ 0x5] x1:0 x2:319 y1:40 y2:279 w:320 h:240 x:0 y:40 pts:512 t:0.040000 crop=320:240:0:40\n\
            [Parsed_cropdetect_0 @ 0x5] x1:0 x2:319 y1:0 y2:319 w:320 h:320 x:0 y:0 pts:1024 t:0.080000 crop=320:320:0:0\n\
            [Parsed_cropdetect_0 @ 0x5] x1:199 x2:0 y1:159 y2:0 w:-198 h:-158 x:200 y:160 pts:1536 t:0.12 crop=-198:-158:200:160\n";
        let boxes = parse_crop_boxes(log);
        assert_eq!(boxes.len(), 3);
        let letterboxed = model::CropBox {
            width: 320,
            height: 240,
            x: 0,
            y: 40,
        };
        assert_eq!(stable_box(&boxes), Some(letterboxed));
        // A tie goes to the larger box: picture is never cut on a coin toss.
        assert_eq!(stable_box(&boxes[1..]).map(|b| b.height), Some(320));
        let black = parse_crop_boxes(log.lines().last().unwrap());
        assert_eq!(stable_box(&black), None);
    }

    #[test]
    fn parses_idet_and_decides() {
        let log = "[Parsed_idet_0 @ 0x5] Repeated Fields: Neither:   126 Top:     0 Bottom:     0\n\
            [Parsed_idet_0 @ 0x5] Single frame detection: TFF:    39 BFF:     0 Progressive:     6 Undetermined:    81\n\
            [Parsed_idet_0 @ 0x5] Multi frame detection: TFF:    97 BFF:     3 Progressive:     5 Undetermined:    24\n";
        let counts = parse_idet(log).unwrap();
        assert_eq!(
            counts,
            IdetCounts {
                tff: 97,
                bff: 3,
                progressive: 5,
                undetermined: 24
            }
        );
        assert_eq!(counts.verdict().verdict, model::ScanType::TopFieldFirst);
        assert_eq!(counts.verdict().top_field_first_frames, 97);
        let progressive = IdetCounts {
            tff: 2,
            bff: 1,
            progressive: 40,
            undetermined: 8,
        };
        assert_eq!(progressive.verdict().verdict, model::ScanType::Progressive);
        let still = IdetCounts {
            undetermined: 51,
            ..IdetCounts::default()
        };
        assert_eq!(still.verdict().verdict, model::ScanType::Undetermined);
        // What idet says of testsrc2 (progressive, fast sharp motion): both orders, about equally.
        let moving = IdetCounts {
            tff: 92,
            bff: 85,
            progressive: 15,
            undetermined: 0,
        };
        assert_eq!(moving.verdict().verdict, model::ScanType::Progressive);
        assert_eq!(parse_idet("no summary"), None);
    }

    #[test]
    fn windows_are_cut_to_the_media_and_samples_spread_over_them() {
        let whole = Span::of(None, 100.0);
        assert_eq!(whole.len_s, 100.0);
        let late = Span::of(
            Some(model::TimeWindow {
                start_s: 90.0,
                duration_s: 50.0,
            }),
            100.0,
        );
        assert_eq!((late.start_s, late.len_s), (90.0, 10.0));
        assert_eq!(late.samples(), [late]);
        let samples = whole.samples();
        assert_eq!(samples.len(), SAMPLE_WINDOWS as usize);
        assert_eq!(samples[0].start_s, 9.0);
        assert_eq!(samples[4].start_s, 89.0);
        assert!(samples.iter().all(|s| s.len_s == SAMPLE_SECONDS));
        assert_eq!(frames_for(samples[0]), SAMPLE_FRAMES);
        assert_eq!(frames_for(late), SAMPLE_WINDOWS * SAMPLE_FRAMES);
    }

    /// Real ffmpeg on small generated media: what a preset would get back.
    mod ffmpeg_runs {
        use super::*;

        fn make(dir: &Path, name: &str, lavfi: &str, extra: &[&str]) -> std::path::PathBuf {
            let path = dir.join(name);
            let status = std::process::Command::new("ffmpeg")
                .args(["-v", "error", "-y", "-f", "lavfi", "-i", lavfi])
                .args(["-c:v", "libx264", "-preset", "ultrafast"])
                .args(extra)
                .arg(&path)
                .status()
                .unwrap();
            assert!(status.success(), "{name}");
            path
        }

        fn request(
            kind: model::AnalysisKind,
            window: Option<model::TimeWindow>,
        ) -> model::AnalysisRequest {
            model::AnalysisRequest {
                id: "a".into(),
                source: model::MediaRef::Input("main".into()),
                stream: 0,
                kind,
                window,
            }
        }

        /// 1 s black, 1.5 s pattern, 1 s black, 1.5 s red: 5 s at 25 fps.
        const CUTS: &str = "color=black:s=160x120:r=25:d=1,format=yuv420p[a];\
            testsrc2=s=160x120:r=25:d=1.5[b];color=black:s=160x120:r=25:d=1[c];\
            color=red:s=160x120:r=25:d=1.5[d];[a][b][c][d]concat=n=4";

        #[tokio::test]
        async fn black_intervals_and_scene_changes_in_source_time() {
            let (tools, _) = Tools::detect().await;
            let dir = tempfile::tempdir().unwrap();
            let file = make(dir.path(), "cuts.mp4", CUTS, &[]);
            let black = model::AnalysisKind::BlackIntervals(model::BlackSpec {
                min_duration_s: 0.5,
                picture_threshold: 0.98,
                pixel_threshold: 0.1,
            });
            let value = run(&tools, &file, &request(black, None), 5.0)
                .await
                .unwrap();
            let model::AnalysisValue::BlackIntervals(found) = value else {
                panic!("{value:?}")
            };
            assert_eq!(found.len(), 2, "{found:?}");
            assert!((found[1].start_s - 2.5).abs() < 0.05, "{found:?}");
            assert!((found[1].end_s - 3.5).abs() < 0.05, "{found:?}");

            // A window starting at 2 s sees only the second interval, in source time.
            let window = model::TimeWindow {
                start_s: 2.0,
                duration_s: 3.0,
            };
            let value = run(&tools, &file, &request(black, Some(window)), 5.0)
                .await
                .unwrap();
            let model::AnalysisValue::BlackIntervals(found) = value else {
                panic!("{value:?}")
            };
            assert_eq!(found.len(), 1, "{found:?}");
            assert!((found[0].start_s - 2.5).abs() < 0.05, "{found:?}");

            let scenes = model::AnalysisKind::SceneChanges(model::SceneSpec { threshold: 10.0 });
            let value = run(&tools, &file, &request(scenes, None), 5.0)
                .await
                .unwrap();
            let model::AnalysisValue::SceneChanges(cuts) = value else {
                panic!("{value:?}")
            };
            let times: Vec<f64> = cuts.iter().map(|c| c.time_s).collect();
            assert_eq!(cuts.len(), 3, "{cuts:?}");
            for (cut, want) in times.iter().zip([1.0, 2.5, 3.5]) {
                assert!((cut - want).abs() < 0.05, "{times:?}");
            }
            assert!(cuts.iter().all(|c| c.score >= 10.0), "{cuts:?}");
        }

        #[tokio::test]
        async fn the_crop_box_of_a_letterboxed_picture() {
            let (tools, _) = Tools::detect().await;
            let dir = tempfile::tempdir().unwrap();
            let file = make(
                dir.path(),
                "lb.mp4",
                "testsrc2=s=320x240:r=25:d=12,pad=320:320:0:40,format=yuv420p",
                &[],
            );
            let value = run(
                &tools,
                &file,
                &request(model::AnalysisKind::Crop, None),
                12.0,
            )
            .await
            .unwrap();
            assert_eq!(
                value,
                model::AnalysisValue::Crop(Some(model::CropBox {
                    width: 320,
                    height: 240,
                    x: 0,
                    y: 40
                }))
            );
            let black = make(
                dir.path(),
                "black.mp4",
                "color=black:s=160x120:r=25:d=1,format=yuv420p",
                &[],
            );
            let value = run(
                &tools,
                &black,
                &request(model::AnalysisKind::Crop, None),
                1.0,
            )
            .await
            .unwrap();
            assert_eq!(value, model::AnalysisValue::Crop(None));
        }

        #[tokio::test]
        async fn interlacing_and_its_field_order() {
            let (tools, _) = Tools::detect().await;
            let dir = tempfile::tempdir().unwrap();
            for (scan, want) in [
                ("tff", model::ScanType::TopFieldFirst),
                ("bff", model::ScanType::BottomFieldFirst),
            ] {
                let file = make(
                    dir.path(),
                    &format!("{scan}.mp4"),
                    &format!("testsrc2=s=320x240:r=50:d=3,interlace=scan={scan},format=yuv420p"),
                    &["-flags", "+ildct+ilme"],
                );
                let value = run(
                    &tools,
                    &file,
                    &request(model::AnalysisKind::Interlacing, None),
                    3.0,
                )
                .await
                .unwrap();
                let model::AnalysisValue::Interlacing(found) = value else {
                    panic!("{value:?}")
                };
                assert_eq!(found.verdict, want, "{found:?}");
                let counted = found.progressive_frames
                    + found.top_field_first_frames
                    + found.bottom_field_first_frames
                    + found.undetermined_frames;
                assert!(counted > 0 && counted <= SAMPLE_WINDOWS * SAMPLE_FRAMES + 1);
            }
        }
    }
}
