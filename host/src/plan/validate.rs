//! Checking a preset's steps against the allowlist before anything runs.
//!
//! A [`ValidatedStep`] can only be made here, and only a validated step can be rendered to argv.
//! Every rejection names the step, the node or output, and the reason.
//!
//! Budgets live here too: every output gets a duration bound derived from the real length of
//! what its step reads (media info from [`crate::media::probe`], which measures rather than
//! trusts), a generator that would run forever is refused, and the rendered command line is
//! capped in size.
//!
//! Not here: building the command line (that is [`crate::ffmpeg::render`]) or measuring media.

use std::collections::{HashMap, HashSet};

use super::allowlist::{self, Arg};
use crate::model;

/// Caps on a plan's size, whatever the allowlist says.
pub const MAX_STEPS: usize = 16;
pub const MAX_NODES: usize = 64;
pub const MAX_OUTPUTS: usize = 16;
pub const MAX_STREAMS: usize = 32;
pub const MAX_INPUTS: usize = 16;
pub const MAX_ARGS: usize = 32;
pub const MAX_TEXT: usize = 1024;
const MAX_DURATION_S: f64 = 24.0 * 3600.0;
/// The most bytes a step's rendered argv may hold in all, and in any one argument. Far below
/// the kernel's limits (2 MiB in all, 128 KiB per argument), so a plan is refused with a
/// reason instead of failing at `exec`.
pub const MAX_ARGV_BYTES: usize = 128 << 10;
pub const MAX_ARG_BYTES: usize = 64 << 10;
/// What a host path may add to the argv; paths are the host's, counted at this length.
const PATH_ALLOWANCE: usize = 256;
/// The shortest apad length that ffmpeg does not read as "forever".
const MIN_PAD_S: f64 = 0.001;
/// Slack over an output's derived bound, for encoder padding and frame rounding.
const BOUND_SLACK_S: f64 = 1.0;
/// How far past the source's measured length an analysis window may start (rounding).
const WINDOW_SLACK_S: f64 = 0.001;

/// A step that passed validation; it can be rendered.
#[derive(Debug, Clone)]
pub struct ValidatedStep {
    step: model::Step,
    /// Per output, in order: the duration ffmpeg is told not to exceed (`-t`).
    bounds: Vec<f64>,
    /// Per input, in order: whether it is an image with an EXIF orientation, which ffmpeg
    /// must decode as stored (the plan turns it, or the kept EXIF tells a viewer to).
    as_stored: Vec<bool>,
}

impl ValidatedStep {
    pub fn step(&self) -> &model::Step {
        &self.step
    }

    /// The duration bound of the step's `i`th output, in seconds.
    pub fn output_bound(&self, i: usize) -> f64 {
        self.bounds[i]
    }

    /// Whether the step's `i`th input is decoded as stored, without the rotation ffmpeg would
    /// otherwise take from its EXIF orientation.
    pub fn decodes_as_stored(&self, i: usize) -> bool {
        self.as_stored.get(i).copied().unwrap_or(false)
    }

    /// The same step writing only its required outputs, for running again after a failure an
    /// optional output may have caused; `None` when it has no optional output, or nothing else.
    /// A filter label only the dropped outputs read is ended in a null sink, as ffmpeg refuses
    /// a graph with an unconnected output.
    pub fn without_optional(&self) -> Option<ValidatedStep> {
        let keep = |o: &model::Output| !o.optional;
        let kept = self.step.outputs.iter().filter(|o| keep(o)).count();
        if kept == 0 || kept == self.step.outputs.len() {
            return None;
        }
        let mut step = self.step.clone();
        let mut bounds = Vec::with_capacity(kept);
        let mut dropped = Vec::new();
        step.outputs = std::mem::take(&mut step.outputs)
            .into_iter()
            .zip(&self.bounds)
            .filter_map(|(o, b)| {
                if keep(&o) {
                    bounds.push(*b);
                    Some(o)
                } else {
                    dropped.push(o);
                    None
                }
            })
            .collect();
        let still_read: HashSet<&str> = step
            .outputs
            .iter()
            .flat_map(|o| &o.streams)
            .filter_map(|s| match &s.source {
                model::Pad::Link(label) => Some(label.as_str()),
                model::Pad::Stream(_) => None,
            })
            .collect();
        let mut sinks = Vec::new();
        for stream in dropped.iter().flat_map(|o| &o.streams) {
            let model::Pad::Link(label) = &stream.source else {
                continue;
            };
            if still_read.contains(label.as_str()) {
                continue;
            }
            let video = matches!(&stream.codec, model::Codec::Encode(e) if allowlist::is_video_encoder(&e.codec));
            sinks.push(model::FilterNode {
                filter: if video { "nullsink" } else { "anullsink" }.into(),
                args: Vec::new(),
                inputs: vec![stream.source.clone()],
                outputs: Vec::new(),
            });
        }
        step.graph.extend(sinks);
        Some(ValidatedStep {
            step,
            bounds,
            as_stored: self.as_stored.clone(),
        })
    }
}

/// Why a plan was rejected: `where_` names the step and the node or output.
#[derive(Debug, thiserror::Error)]
#[error("step '{step}'{where_}: {reason}")]
pub struct Rejection {
    pub step: String,
    pub where_: String,
    pub reason: String,
}

/// The media a step may read: the job's inputs and what earlier rounds produced.
pub trait MediaLookup {
    fn info(&self, source: &model::MediaRef) -> Option<&model::MediaInfo>;
}

/// Validates a round's steps. `taken` holds output names already used by earlier rounds.
pub fn validate_steps(
    steps: Vec<model::Step>,
    media: &dyn MediaLookup,
    taken: &HashSet<String>,
) -> Result<Vec<ValidatedStep>, Rejection> {
    if steps.len() > MAX_STEPS {
        return Err(Rejection {
            step: "-".into(),
            where_: String::new(),
            reason: format!("{} steps in one round; at most {MAX_STEPS}", steps.len()),
        });
    }
    let mut names = taken.clone();
    let mut step_names = HashSet::new();
    steps
        .into_iter()
        .map(|step| {
            if !step_names.insert(step.name.clone()) {
                return Err(Rejection {
                    step: clip(&step.name),
                    where_: String::new(),
                    reason: "two steps have the same name".into(),
                });
            }
            let bounds = validate_step(&step, media, &mut names)?;
            let as_stored = step
                .inputs
                .iter()
                .map(|i| {
                    media
                        .info(&i.source)
                        .and_then(crate::media::probe::exif_orientation)
                        .is_some()
                })
                .collect();
            let validated = ValidatedStep {
                step,
                bounds,
                as_stored,
            };
            check_argv_size(&validated)?;
            Ok(validated)
        })
        .collect()
}

/// An analysis that passed validation: its source and stream exist, the stream is of the kind
/// the analysis measures, its window lies inside the media and its spec values are in range.
#[derive(Debug, Clone)]
pub struct ValidatedAnalysis {
    request: model::AnalysisRequest,
    /// The measured length of the source, which bounds the analysis's run time.
    media_s: f64,
}

impl ValidatedAnalysis {
    pub fn request(&self) -> &model::AnalysisRequest {
        &self.request
    }

    /// The measured length of the analysed source, in seconds.
    pub fn media_s(&self) -> f64 {
        self.media_s
    }
}

/// A round's work whose steps passed validation, with their output bounds. Its analyses may
/// measure what these steps produce, so they are checked ([`validate_analyses`]) once the steps
/// have run.
#[derive(Debug, Clone)]
pub struct ValidatedWork {
    pub steps: Vec<ValidatedStep>,
    pub analyses: Vec<model::AnalysisRequest>,
}

/// The last round, validated: its steps (whose outputs are the job's) and what it reports.
#[derive(Debug, Clone)]
pub struct ValidatedFinish {
    pub steps: Vec<ValidatedStep>,
    pub packages: Vec<model::HlsPackage>,
    pub documents: Vec<model::Document>,
    pub report: Vec<model::OptionValue>,
}

/// A validated decision: only [`validate_round`] makes one.
#[derive(Debug, Clone)]
pub enum ValidatedRound {
    Next(ValidatedWork),
    Finish(ValidatedFinish),
}

/// Why a round was rejected: a step's rejection, or an analysis's.
#[derive(Debug, thiserror::Error)]
pub enum RoundRejection {
    #[error(transparent)]
    Step(#[from] Rejection),
    #[error("analysis '{id}': {reason}")]
    Analysis { id: String, reason: String },
}

/// Validates a preset's decision for one round. `taken` holds output names of earlier rounds.
pub fn validate_round(
    decision: model::Decision,
    media: &dyn MediaLookup,
    taken: &HashSet<String>,
) -> Result<ValidatedRound, RoundRejection> {
    Ok(match decision {
        model::Decision::Next(work) => {
            let steps = validate_steps(work.steps, media, taken)?;
            check_intermediates(&steps)?;
            ValidatedRound::Next(ValidatedWork {
                steps,
                analyses: work.analyses,
            })
        }
        model::Decision::Finish(finish) => {
            let steps = validate_steps(finish.steps, media, taken)?;
            check_finish(&steps, &finish.packages, &finish.documents, media, taken)?;
            ValidatedRound::Finish(ValidatedFinish {
                steps,
                packages: finish.packages,
                documents: finish.documents,
                report: finish.report,
            })
        }
    })
}

/// Intermediates are read back as media by later rounds: each is one required file.
fn check_intermediates(steps: &[ValidatedStep]) -> Result<(), Rejection> {
    for step in steps {
        for output in &step.step().outputs {
            let reason = if !matches!(output.kind, model::OutputKind::File(_)) {
                "an intermediate is a file; stills, image sequences and HLS renditions are \
                 outputs of the finish"
            } else if output.optional {
                "an intermediate is never optional: a later round reads it"
            } else {
                continue;
            };
            return Err(Rejection {
                step: clip(&step.step().name),
                where_: format!(", output '{}'", clip(&output.name)),
                reason: reason.into(),
            });
        }
    }
    Ok(())
}

/// Checks analysis requests against the media they name.
pub fn validate_analyses(
    requests: Vec<model::AnalysisRequest>,
    media: &dyn MediaLookup,
) -> Result<Vec<ValidatedAnalysis>, RoundRejection> {
    requests
        .into_iter()
        .map(|request| {
            let media_s =
                check_analysis(&request, media).map_err(|reason| RoundRejection::Analysis {
                    id: clip(&request.id),
                    reason,
                })?;
            Ok(ValidatedAnalysis { request, media_s })
        })
        .collect()
}

fn check_analysis(r: &model::AnalysisRequest, media: &dyn MediaLookup) -> Result<f64, String> {
    if r.id.is_empty() || r.id.len() > 64 {
        return Err("ids are 1-64 bytes".into());
    }
    let info = media
        .info(&r.source)
        .ok_or_else(|| format!("its source, {}, does not exist", describe_ref(&r.source)))?;
    let want = match r.kind {
        model::AnalysisKind::Loudness => model::StreamKind::Audio,
        model::AnalysisKind::BlackIntervals(_)
        | model::AnalysisKind::SceneChanges(_)
        | model::AnalysisKind::Crop
        | model::AnalysisKind::Interlacing => model::StreamKind::Video,
    };
    let stream = info
        .streams
        .iter()
        .find(|s| s.index == r.stream)
        .ok_or_else(|| format!("stream {} does not exist", r.stream))?;
    if stream.kind != want {
        return Err(format!(
            "stream {} is {}, and this analysis measures a {} stream",
            r.stream,
            stream.kind.name(),
            want.name()
        ));
    }
    let in_unit = |v: f64| v.is_finite() && (0.0..=1.0).contains(&v);
    match r.kind {
        model::AnalysisKind::BlackIntervals(b) => {
            if !(b.min_duration_s.is_finite() && b.min_duration_s > 0.0)
                || b.min_duration_s > MAX_DURATION_S
            {
                return Err(format!(
                    "min_duration_s {} is outside (0, {MAX_DURATION_S}]",
                    b.min_duration_s
                ));
            }
            if !in_unit(b.picture_threshold) || !in_unit(b.pixel_threshold) {
                return Err("picture_threshold and pixel_threshold are 0 to 1".into());
            }
        }
        model::AnalysisKind::SceneChanges(sc) => {
            if !(sc.threshold.is_finite() && (0.0..=100.0).contains(&sc.threshold)) {
                return Err(format!("threshold {} is outside 0 to 100", sc.threshold));
            }
        }
        model::AnalysisKind::Loudness
        | model::AnalysisKind::Crop
        | model::AnalysisKind::Interlacing => {}
    }
    let full = media_length(info);
    if let Some(w) = r.window {
        // The window starts inside the media; an end past it is cut at the media's end by the
        // analysis (a preset may ask for "the first 10 s" of whatever it gets).
        let well_formed = w.start_s.is_finite()
            && w.start_s >= 0.0
            && w.duration_s.is_finite()
            && w.duration_s > 0.0
            && w.duration_s <= MAX_DURATION_S;
        if !well_formed || w.start_s >= full + WINDOW_SLACK_S {
            return Err(format!(
                "window {}+{} s does not start inside the source's {full} s",
                w.start_s, w.duration_s
            ));
        }
    }
    Ok(full)
}

/// Renders the step with placeholder paths and refuses it when its argv is over budget.
fn check_argv_size(step: &ValidatedStep) -> Result<(), Rejection> {
    let placeholder = std::path::PathBuf::from("p".repeat(PATH_ALLOWANCE));
    let rendered = crate::ffmpeg::render::render(step, |_| placeholder.clone(), &placeholder);
    let largest = rendered.argv.iter().map(|a| a.len()).max().unwrap_or(0);
    let total: usize = rendered.argv.iter().map(|a| a.len() + 1).sum();
    let reason = if largest > MAX_ARG_BYTES {
        format!(
            "one argument of the ffmpeg command line would be {largest} bytes; at most \
             {MAX_ARG_BYTES} per argument: use fewer or shorter filter arguments"
        )
    } else if total > MAX_ARGV_BYTES {
        format!(
            "the ffmpeg command line would be {total} bytes; at most {MAX_ARGV_BYTES} in all: \
             use fewer or shorter filter arguments and metadata"
        )
    } else {
        return Ok(());
    };
    Err(Rejection {
        step: clip(&step.step.name),
        where_: String::new(),
        reason,
    })
}

/// The real length a step input contributes: what the media measures, after seek and duration.
fn input_length(input: &model::StepInput, info: &model::MediaInfo) -> f64 {
    let full = media_length(info);
    let after_seek = (full - input.seek_s.unwrap_or(0.0)).max(0.0);
    input.duration_s.map_or(after_seek, |d| d.min(after_seek))
}

/// The measured length of media: its container's, else its longest stream's, else zero.
fn media_length(info: &model::MediaInfo) -> f64 {
    info.container
        .duration_s
        .or_else(|| {
            info.streams
                .iter()
                .filter_map(|s| s.duration_s)
                .reduce(f64::max)
        })
        .filter(|d| d.is_finite() && *d > 0.0)
        .unwrap_or(0.0)
}

/// Seconds a filter node may add to what it reads, or why it would never stop.
fn node_extension(node: &model::FilterNode) -> Result<f64, String> {
    let arg = |name: &str| {
        node.args
            .iter()
            .find(|a| a.name == name)
            .and_then(|a| match &a.value {
                model::Value::Number(n) => Some(*n),
                model::Value::Integer(i) => Some(*i as f64),
                _ => None,
            })
    };
    // ffmpeg reads an apad length that rounds to 0 µs as "no length": padding forever.
    let length = |name: &str| arg(name).filter(|v| *v >= MIN_PAD_S);
    match node.filter.as_str() {
        "apad" => match (length("pad_dur"), length("whole_dur")) {
            (None, None) => Err(format!(
                "apad without a pad_dur or whole_dur of at least {MIN_PAD_S} s pads forever; \
                 give it a length"
            )),
            (pad, whole) => Ok(pad.unwrap_or(0.0) + whole.unwrap_or(0.0)),
        },
        "adelay" => Ok(node
            .args
            .iter()
            .find(|a| a.name == "delays")
            .and_then(|a| match &a.value {
                model::Value::Text(t) => t
                    .split('|')
                    .filter_map(|d| d.parse::<f64>().ok())
                    .reduce(f64::max),
                _ => None,
            })
            .unwrap_or(0.0)
            / 1000.0),
        _ => Ok(0.0),
    }
}

fn clip(s: &str) -> String {
    let mut out: String = s
        .chars()
        .take(40)
        .collect::<String>()
        .escape_debug()
        .to_string();
    if s.chars().count() > 40 {
        out.push('…');
    }
    out
}

fn is_name(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 32
        && (b[0].is_ascii_lowercase() || b[0].is_ascii_digit())
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-' || *c == b'_')
}

fn is_label(s: &str) -> bool {
    !s.is_empty() && s.len() <= 32 && s.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_')
}

fn safe_text(s: &str) -> bool {
    s.len() <= MAX_TEXT && !s.chars().any(char::is_control)
}

/// Checks one step; returns each output's duration bound.
fn validate_step(
    step: &model::Step,
    media: &dyn MediaLookup,
    names: &mut HashSet<String>,
) -> Result<Vec<f64>, Rejection> {
    let reject = |where_: String, reason: String| Rejection {
        step: clip(&step.name),
        where_,
        reason,
    };
    if !is_name(&step.name) {
        return Err(reject(
            String::new(),
            "step names are 1-32 characters of a-z, 0-9, '-' and '_'".into(),
        ));
    }
    if step.inputs.is_empty() || step.inputs.len() > MAX_INPUTS {
        return Err(reject(
            String::new(),
            format!("a step reads 1 to {MAX_INPUTS} inputs"),
        ));
    }
    if step.graph.len() > MAX_NODES {
        return Err(reject(
            String::new(),
            format!("{} filter nodes; at most {MAX_NODES}", step.graph.len()),
        ));
    }
    if step.outputs.is_empty() || step.outputs.len() > MAX_OUTPUTS {
        return Err(reject(
            String::new(),
            format!("a step writes 1 to {MAX_OUTPUTS} outputs"),
        ));
    }

    let mut infos = Vec::new();
    for (i, input) in step.inputs.iter().enumerate() {
        let where_ = format!(", input {i}");
        let info = media.info(&input.source).ok_or_else(|| {
            reject(
                where_.clone(),
                format!(
                    "{} is neither a job input nor an output of an earlier round",
                    describe_ref(&input.source)
                ),
            )
        })?;
        for (what, v) in [("seek", input.seek_s), ("duration", input.duration_s)] {
            if let Some(v) = v
                && !(v.is_finite() && (0.0..=MAX_DURATION_S).contains(&v))
            {
                return Err(reject(
                    where_.clone(),
                    format!("{what} {v} s is outside 0..{MAX_DURATION_S}"),
                ));
            }
        }
        infos.push(info);
    }
    let mut longest = step
        .inputs
        .iter()
        .zip(&infos)
        .map(|(input, info)| input_length(input, info))
        .sum::<f64>();

    let stream_ok = |r: &model::StreamRef| {
        infos
            .get(r.input as usize)
            .is_some_and(|info| info.streams.iter().any(|s| s.index == r.stream))
    };

    // Labels: each produced once, consumed once.
    let mut produced: HashMap<&str, bool> = HashMap::new();
    for (n, node) in step.graph.iter().enumerate() {
        let where_ = format!(", node {n} ({})", clip(&node.filter));
        let args = allowlist::filter_args(&node.filter).ok_or_else(|| {
            reject(
                where_.clone(),
                format!("filter '{}' is not allowed", clip(&node.filter)),
            )
        })?;
        if node.args.len() > MAX_ARGS {
            return Err(reject(where_, format!("more than {MAX_ARGS} args")));
        }
        check_options(&node.args, args).map_err(|r| reject(where_.clone(), r))?;
        longest += node_extension(node).map_err(|r| reject(where_.clone(), r))?;
        if node.inputs.len() > MAX_INPUTS || node.outputs.len() > MAX_OUTPUTS {
            return Err(reject(where_, "too many pads".into()));
        }
        for pad in &node.inputs {
            consume(pad, &mut produced, &stream_ok).map_err(|r| reject(where_.clone(), r))?;
        }
        for label in &node.outputs {
            if !is_label(label) {
                return Err(reject(
                    where_,
                    format!("label '{}' must be 1-32 of A-Z, a-z, 0-9, '_'", clip(label)),
                ));
            }
            if produced.insert(label, false).is_some() {
                return Err(reject(where_, format!("label '{label}' is produced twice")));
            }
        }
    }

    // Inputs summed plus everything filters may add: no allowed filter makes a stream longer
    // than that, so this bounds an output the preset left open, and one it asked too much of.
    let bound = (longest * 1.01 + BOUND_SLACK_S).min(MAX_DURATION_S);
    let mut bounds = Vec::with_capacity(step.outputs.len());
    for output in &step.outputs {
        let where_ = format!(", output '{}'", clip(&output.name));
        if !is_name(&output.name) {
            return Err(reject(
                where_,
                "output names are roles of 1-32 characters of a-z, 0-9, '-' and '_', never paths"
                    .into(),
            ));
        }
        if !names.insert(output.name.clone()) {
            return Err(reject(
                where_,
                "another output of this job already has this name".into(),
            ));
        }
        check_kind(output, &infos).map_err(|r| reject(where_.clone(), r))?;
        check_tags(&output.metadata).map_err(|r| reject(where_.clone(), r))?;
        if let Some(d) = output.duration_s
            && !(d.is_finite() && d > 0.0 && d <= MAX_DURATION_S)
        {
            return Err(reject(where_, format!("duration {d} s is out of range")));
        }
        bounds.push(output.duration_s.map_or(bound, |d| d.min(bound)));
        if output.streams.is_empty() || output.streams.len() > MAX_STREAMS {
            return Err(reject(
                where_,
                format!("an output has 1 to {MAX_STREAMS} streams"),
            ));
        }
        for (s, stream) in output.streams.iter().enumerate() {
            let where_ = format!("{where_}, stream {s}");
            consume(&stream.source, &mut produced, &stream_ok)
                .map_err(|r| reject(where_.clone(), r))?;
            check_tags(&stream.metadata).map_err(|r| reject(where_.clone(), r))?;
            if let model::Codec::Encode(enc) = &stream.codec {
                check_encoder(enc).map_err(|r| reject(where_, r))?;
            }
        }
    }
    if let Some((label, _)) = produced.iter().find(|(_, used)| !**used) {
        return Err(reject(
            String::new(),
            format!("label '{label}' is produced but never used"),
        ));
    }
    Ok(bounds)
}

/// The most images an image sequence may hold.
pub const MAX_IMAGES: u32 = 1000;
/// The most bytes of a document's body.
pub const MAX_DOCUMENT_BYTES: usize = 256 << 10;

/// Checks what an output's kind asks of it: an allowed container, an image of one video
/// stream, or an HLS rendition with a segment duration in range. The host owns every muxer
/// option of images and renditions.
fn check_kind(output: &model::Output, infos: &[&model::MediaInfo]) -> Result<(), String> {
    let host_muxed = || {
        if output.muxer_options.is_empty() {
            Ok(())
        } else {
            Err("muxer options are the host's for image and HLS outputs; give none".to_owned())
        }
    };
    match &output.kind {
        model::OutputKind::File(name) => {
            let container = allowlist::container(name)
                .ok_or_else(|| format!("container '{}' is not allowed", clip(name)))?;
            check_options(&output.muxer_options, container.muxer_options)
        }
        model::OutputKind::Still(image) => {
            host_muxed()?;
            check_image(output, image, infos)
        }
        model::OutputKind::ImageSequence(seq) => {
            host_muxed()?;
            if !(1..=MAX_IMAGES).contains(&seq.max_frames) {
                return Err(format!(
                    "max_frames {} is outside 1..={MAX_IMAGES}",
                    seq.max_frames
                ));
            }
            if seq.image.format == model::ImageFormat::Avif {
                // ffmpeg 5.1's image2 muxer writes bare AV1 frames, not AVIF files.
                return Err(
                    "an image sequence cannot be AVIF; use JPEG, PNG or WebP, or AVIF stills"
                        .into(),
                );
            }
            check_image(output, &seq.image, infos)
        }
        model::OutputKind::HlsRendition(hls) => {
            host_muxed()?;
            let d = hls.segment_duration_s;
            if !(d.is_finite() && (1.0..=30.0).contains(&d)) {
                return Err(format!("segment_duration_s {d} is outside 1 to 30"));
            }
            Ok(())
        }
    }
}

fn check_image(
    output: &model::Output,
    image: &model::ImageSpec,
    infos: &[&model::MediaInfo],
) -> Result<(), String> {
    let encoder = allowlist::image_encoder(image.format);
    let [stream] = output.streams.as_slice() else {
        return Err("an image output has exactly one stream, a video stream".into());
    };
    if let Some(q) = image.quality
        && !(1..=100).contains(&q)
    {
        return Err(format!("quality {q} is outside 1 to 100"));
    }
    match &stream.codec {
        model::Codec::Encode(enc) if enc.codec == encoder && enc.options.is_empty() => {}
        _ => {
            return Err(format!(
                "an image of this format is encoded with '{encoder}' and no options (the host \
                 sets its quality from the image spec)"
            ));
        }
    }
    if let model::Pad::Stream(r) = &stream.source {
        let kind = infos
            .get(r.input as usize)
            .and_then(|i| i.streams.iter().find(|s| s.index == r.stream))
            .map(|s| s.kind);
        if kind != Some(model::StreamKind::Video) {
            return Err(format!(
                "stream {} of step input {} is not a video stream",
                r.stream, r.input
            ));
        }
    }
    Ok(())
}

/// Whether an output holds a video stream: a video encoder, or a copy of a video stream.
fn has_video(step: &model::Step, output: &model::Output, media: &dyn MediaLookup) -> bool {
    output.streams.iter().any(|s| match (&s.codec, &s.source) {
        (model::Codec::Encode(enc), _) => allowlist::is_video_encoder(&enc.codec),
        (model::Codec::Copy, model::Pad::Stream(r)) => step
            .inputs
            .get(r.input as usize)
            .and_then(|i| media.info(&i.source))
            .and_then(|info| info.streams.iter().find(|st| st.index == r.stream))
            .is_some_and(|st| st.kind == model::StreamKind::Video),
        (model::Codec::Copy, model::Pad::Link(_)) => false,
    })
}

/// Why a finish's packages or documents were rejected.
fn finish_rejection(what: &str, name: &str, reason: String) -> Rejection {
    Rejection {
        step: "-".into(),
        where_: format!(", {what} '{}'", clip(name)),
        reason,
    }
}

/// Checks a finish's packages and documents against the outputs of its steps.
fn check_finish(
    steps: &[ValidatedStep],
    packages: &[model::HlsPackage],
    documents: &[model::Document],
    media: &dyn MediaLookup,
    taken: &HashSet<String>,
) -> Result<(), Rejection> {
    let outputs: HashMap<&str, (&model::Step, &model::Output)> = steps
        .iter()
        .flat_map(|s| {
            s.step()
                .outputs
                .iter()
                .map(move |o| (o.name.as_str(), (s.step(), o)))
        })
        .collect();
    let mut names: HashSet<String> = HashSet::new();
    let mut unique = |what: &str, name: &str| {
        if !is_name(name) {
            return Err(finish_rejection(
                what,
                name,
                "names are 1-32 characters of a-z, 0-9, '-' and '_'".into(),
            ));
        }
        if outputs.contains_key(name) || taken.contains(name) || !names.insert(name.to_owned()) {
            return Err(finish_rejection(
                what,
                name,
                "another output, package or document of this job has this name".into(),
            ));
        }
        Ok(())
    };
    for package in packages {
        unique("package", &package.name)?;
        let rendition = |output: &str| match outputs.get(output) {
            Some((step, o)) if matches!(o.kind, model::OutputKind::HlsRendition(_)) => {
                Ok(has_video(step, o, media))
            }
            _ => Err(finish_rejection(
                "package",
                &package.name,
                format!(
                    "'{}' is not an HLS rendition output of this finish",
                    clip(output)
                ),
            )),
        };
        if package.variants.is_empty() {
            return Err(finish_rejection(
                "package",
                &package.name,
                "a package has at least one variant".into(),
            ));
        }
        for variant in &package.variants {
            if !rendition(variant)? {
                return Err(finish_rejection(
                    "package",
                    &package.name,
                    format!("variant '{}' has no video stream", clip(variant)),
                ));
            }
        }
        for audio in &package.audio {
            if rendition(&audio.output)? {
                return Err(finish_rejection(
                    "package",
                    &package.name,
                    format!("audio '{}' has a video stream", clip(&audio.output)),
                ));
            }
            let language_ok = audio.language.as_ref().is_none_or(|l| {
                (1..=16).contains(&l.len())
                    && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            });
            if audio.label.is_empty() || audio.label.len() > 64 || !safe_text(&audio.label) {
                return Err(finish_rejection(
                    "package",
                    &package.name,
                    "an audio label is 1-64 bytes without control characters".into(),
                ));
            }
            if !language_ok {
                return Err(finish_rejection(
                    "package",
                    &package.name,
                    "an audio language is a BCP 47 tag (\"en\", \"pt-BR\")".into(),
                ));
            }
        }
    }
    for document in documents {
        unique("document", &document.name)?;
        check_document(document, &outputs)
            .map_err(|r| finish_rejection("document", &document.name, r))?;
    }
    Ok(())
}

/// Checks a document's size, its references to outputs (`{{output:<name>}}`,
/// `{{output:<name>:<n>}}`) and that it is what its format says once they are substituted.
fn check_document(
    document: &model::Document,
    outputs: &HashMap<&str, (&model::Step, &model::Output)>,
) -> Result<(), String> {
    if document.body.len() > MAX_DOCUMENT_BYTES {
        return Err(format!(
            "the body is {} bytes; at most {MAX_DOCUMENT_BYTES}",
            document.body.len()
        ));
    }
    let mut substituted = String::with_capacity(document.body.len());
    let mut rest = document.body.as_str();
    while let Some(at) = rest.find("{{output:") {
        substituted.push_str(&rest[..at]);
        let after = &rest[at + "{{output:".len()..];
        let end = after
            .find("}}")
            .ok_or("a {{output:...}} reference is not closed")?;
        let reference = &after[..end];
        let (name, n) = match reference.split_once(':') {
            Some((name, n)) => (
                name,
                Some(
                    n.parse::<u32>()
                        .map_err(|_| format!("'{}' is not an image number", clip(n)))?,
                ),
            ),
            None => (reference, None),
        };
        let (_, output) = outputs.get(name).ok_or_else(|| {
            format!(
                "{{{{output:{}}}}} names no output of this finish",
                clip(name)
            )
        })?;
        let layout = super::layout::layout(output);
        let object = match n {
            None => layout.main_object(),
            Some(n) => layout.image(n).ok_or_else(|| {
                format!(
                    "{{{{output:{}:{n}}}}} is not an image of an image sequence (1 to its \
                     max_frames)",
                    clip(name)
                )
            })?,
        };
        substituted.push_str(&object);
        rest = &after[end + 2..];
    }
    substituted.push_str(rest);
    match document.format {
        model::DocumentFormat::Json => serde_json::from_str::<serde_json::Value>(&substituted)
            .map(|_| ())
            .map_err(|e| format!("the body is not JSON: {e}")),
        model::DocumentFormat::Webvtt => {
            if substituted.starts_with("WEBVTT") {
                Ok(())
            } else {
                Err("a WebVTT body starts with \"WEBVTT\"".into())
            }
        }
    }
}

fn describe_ref(r: &model::MediaRef) -> String {
    match r {
        model::MediaRef::Input(n) => format!("input '{}'", clip(n)),
        model::MediaRef::Produced(n) => format!("produced '{}'", clip(n)),
    }
}

fn consume(
    pad: &model::Pad,
    produced: &mut HashMap<&str, bool>,
    stream_ok: &dyn Fn(&model::StreamRef) -> bool,
) -> Result<(), String> {
    match pad {
        model::Pad::Stream(r) => stream_ok(r).then_some(()).ok_or_else(|| {
            format!(
                "stream {} of step input {} does not exist",
                r.stream, r.input
            )
        }),
        model::Pad::Link(label) => match produced.get_mut(label.as_str()) {
            Some(used @ false) => {
                *used = true;
                Ok(())
            }
            Some(true) => Err(format!("label '{}' is used twice", clip(label))),
            None => Err(format!(
                "label '{}' is not produced by an earlier node",
                clip(label)
            )),
        },
    }
}

fn check_tags(tags: &[model::Tag]) -> Result<(), String> {
    if tags.len() > MAX_ARGS {
        return Err(format!("more than {MAX_ARGS} metadata entries"));
    }
    for tag in tags {
        let key_ok = !tag.key.is_empty()
            && tag.key.len() <= 64
            && tag
                .key
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_');
        if !key_ok || !safe_text(&tag.value) {
            return Err(format!(
                "metadata '{}' needs a key of A-Z, a-z, 0-9, '_' and a value without control \
                 characters",
                clip(&tag.key)
            ));
        }
    }
    Ok(())
}

fn check_encoder(enc: &model::Encoder) -> Result<(), String> {
    let opts = allowlist::encoder_options(&enc.codec)
        .ok_or_else(|| format!("codec '{}' is not allowed", clip(&enc.codec)))?;
    check_options(&enc.options, opts)?;
    if let Some(b) = enc.bit_rate
        && !(1_000..=200_000_000).contains(&b)
    {
        return Err(format!("bit rate {b} is outside 1000..200000000"));
    }
    if let Some(r) = enc.sample_rate
        && !(8_000..=384_000).contains(&r)
    {
        return Err(format!("sample rate {r} is outside 8000..384000"));
    }
    if let Some(c) = enc.channels
        && !(1..=16).contains(&c)
    {
        return Err(format!("{c} channels is outside 1..16"));
    }
    if let Some(f) = &enc.sample_format
        && !allowlist::SAMPLE_FORMATS.contains(&f.as_str())
    {
        return Err(format!("sample format '{}' is not allowed", clip(f)));
    }
    if let Some(f) = &enc.pixel_format
        && !allowlist::PIXEL_FORMATS.contains(&f.as_str())
    {
        return Err(format!("pixel format '{}' is not allowed", clip(f)));
    }
    if let Some(r) = &enc.frame_rate
        && !(r.num > 0 && r.den > 0 && r.num <= 240 * r.den && r.den <= 1_000_000)
    {
        return Err("frame rate must be a positive fraction up to 240 fps".into());
    }
    Ok(())
}

fn check_options(given: &[model::OptionValue], allowed: &[(&str, Arg)]) -> Result<(), String> {
    let mut seen = HashSet::new();
    for opt in given {
        let name = clip(&opt.name);
        let (_, kind) = allowed
            .iter()
            .find(|(n, _)| *n == opt.name)
            .ok_or_else(|| format!("option '{name}' is not allowed here"))?;
        if !seen.insert(&opt.name) {
            return Err(format!("option '{name}' is given twice"));
        }
        check_value(kind, &opt.value).map_err(|why| format!("option '{name}': {why}"))?;
    }
    Ok(())
}

fn check_value(kind: &Arg, value: &model::Value) -> Result<(), String> {
    use model::Value as V;
    let in_range = |v: f64, lo: f64, hi: f64| v.is_finite() && v >= lo && v <= hi;
    let ok = match (kind, value) {
        (Arg::Int(lo, hi), V::Integer(v)) => (lo..=hi).contains(&v),
        (Arg::OddInt(lo, hi), V::Integer(v)) => (lo..=hi).contains(&v) && v % 2 != 0,
        (Arg::Num(lo, hi), V::Number(v)) => in_range(*v, *lo, *hi),
        (Arg::Num(lo, hi), V::Integer(v)) => in_range(*v as f64, *lo, *hi),
        (Arg::Bool, V::Boolean(_)) => true,
        (Arg::Choice(options), V::Text(t)) => options.contains(&t.as_str()),
        (Arg::Gain, V::Number(v)) => in_range(*v, 0.0, 1000.0),
        (Arg::Gain, V::Text(t)) => t
            .strip_suffix("dB")
            .and_then(|n| n.parse::<f64>().ok())
            .is_some_and(|db| in_range(db, -120.0, 120.0)),
        (Arg::List(kind), V::Text(t)) => safe_text(t) && allowlist::list_ok(*kind, t),
        (Arg::PanSpec, V::Text(t)) => allowlist::pan_ok(t),
        (Arg::Weights, V::Text(t)) => {
            t.len() <= 256
                && t.split(' ')
                    .all(|w| w.parse::<f64>().is_ok_and(|w| in_range(w, -64.0, 64.0)))
        }
        (Arg::Delays, V::Text(t)) => {
            t.len() <= 256
                && t.split('|')
                    .all(|d| d.parse::<f64>().is_ok_and(|d| in_range(d, 0.0, 3_600_000.0)))
        }
        (Arg::Rate, V::Number(v)) => in_range(*v, 0.001, 240.0),
        (Arg::Rate, V::Integer(v)) => (1..=240).contains(v),
        (Arg::Rate, V::Text(t)) => t.split_once('/').is_some_and(|(a, b)| {
            matches!((a.parse::<u32>(), b.parse::<u32>()), (Ok(a), Ok(b)) if a > 0 && b > 0 && a <= 240 * b)
        }),
        (Arg::Size, V::Text(t)) => t.split_once('x').is_some_and(|(a, b)| {
            matches!((a.parse::<u32>(), b.parse::<u32>()), (Ok(a), Ok(b)) if (1..=64).contains(&a) && (1..=64).contains(&b))
        }),
        (Arg::Params(keys), V::Text(t)) => t.len() <= 512 && t.split(':').all(|pair| param_ok(keys, pair)),
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(format!(
            "value {} is not allowed (expected {kind:?})",
            show(value)
        ))
    }
}

/// One `key=value` of a parameter list: a listed key, its value read as that key's type
/// (`0`/`1` for a boolean).
fn param_ok(keys: &[(&str, Arg)], pair: &str) -> bool {
    let Some((key, text)) = pair.split_once('=') else {
        return false;
    };
    let Some((_, kind)) = keys.iter().find(|(name, _)| *name == key) else {
        return false;
    };
    let value = match kind {
        Arg::Int(..) | Arg::OddInt(..) => text.parse().map(model::Value::Integer),
        Arg::Bool => match text {
            "0" | "1" => Ok(model::Value::Boolean(text == "1")),
            _ => return false,
        },
        Arg::Choice(_) => Ok(model::Value::Text(text.to_owned())),
        _ => return false,
    };
    value.is_ok_and(|v| check_value(kind, &v).is_ok())
}

fn show(v: &model::Value) -> String {
    match v {
        model::Value::Integer(i) => i.to_string(),
        model::Value::Number(n) => n.to_string(),
        model::Value::Boolean(b) => b.to_string(),
        model::Value::Text(t) => format!("'{}'", clip(t)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// One job input, "a": a mono audio stream of `seconds` (as measured by probe).
    struct OneInput(model::MediaInfo);

    impl MediaLookup for OneInput {
        fn info(&self, source: &model::MediaRef) -> Option<&model::MediaInfo> {
            matches!(source, model::MediaRef::Input(n) if n == "a").then_some(&self.0)
        }
    }

    fn media(seconds: f64) -> OneInput {
        OneInput(crate::media::probe::from_json(&json!({
            "format": {"format_name": "wav", "duration": seconds.to_string(), "size": "1000"},
            "streams": [{"index": 0, "codec_type": "audio", "codec_name": "pcm_s16le",
                         "sample_rate": "48000", "channels": 1}]
        })))
    }

    fn opt(name: &str, value: model::Value) -> model::OptionValue {
        model::OptionValue {
            name: name.into(),
            value,
        }
    }

    fn node(filter: &str, args: Vec<model::OptionValue>) -> model::FilterNode {
        model::FilterNode {
            filter: filter.into(),
            args,
            inputs: vec![model::Pad::Stream(model::StreamRef {
                input: 0,
                stream: 0,
            })],
            outputs: vec!["out".into()],
        }
    }

    /// A step reading input "a" through `graph` (ending in label "out", or none) into one WAV.
    fn step(graph: Vec<model::FilterNode>, duration_s: Option<f64>) -> model::Step {
        let source = if graph.is_empty() {
            model::Pad::Stream(model::StreamRef {
                input: 0,
                stream: 0,
            })
        } else {
            model::Pad::Link("out".into())
        };
        model::Step {
            name: "s".into(),
            inputs: vec![model::StepInput {
                source: model::MediaRef::Input("a".into()),
                seek_s: None,
                duration_s: None,
            }],
            graph,
            outputs: vec![model::Output {
                duration_s,
                ..model::Output::encoded(
                    "o",
                    model::OutputKind::File("wav".into()),
                    source,
                    "pcm_s16le",
                )
            }],
        }
    }

    fn validate(step: model::Step, seconds: f64) -> Result<ValidatedStep, Rejection> {
        validate_steps(vec![step], &media(seconds), &HashSet::new()).map(|mut v| v.remove(0))
    }

    #[test]
    fn x265_params_take_only_listed_keys_with_typed_values() {
        let (_, params) = allowlist::encoder_options("libx265")
            .unwrap()
            .iter()
            .find(|(name, _)| *name == "x265-params")
            .unwrap();
        let ok = |text: &str| check_value(params, &model::Value::Text(text.into())).is_ok();
        assert!(ok(
            "keyint=48:min-keyint=48:scenecut=0:open-gop=0:level-idc=5.1"
        ));
        for refused in [
            "csv=/tmp/stats.csv",
            "keyint=48:analysis-save=x",
            "open-gop=yes",
            "keyint=0",
            "keyint=48:",
            "scenecut=40=1",
            "level-idc=3",
        ] {
            assert!(!ok(refused), "{refused} passed");
        }
    }

    #[test]
    fn an_allowlisted_filter_with_typed_args_passes() {
        let s = step(
            vec![node(
                "volume",
                vec![opt("volume", model::Value::Text("-3dB".into()))],
            )],
            None,
        );
        assert!(validate(s, 1.0).is_ok());
    }

    #[test]
    fn filters_options_and_values_off_the_allowlist_are_refused() {
        for (filter, args, why) in [
            ("amovie", vec![], "is not allowed"),
            (
                "volume",
                vec![opt("eval", model::Value::Text("frame".into()))],
                "option 'eval' is not allowed",
            ),
            (
                "volume",
                vec![opt("volume", model::Value::Text("1e9dB".into()))],
                "is not allowed (expected Gain)",
            ),
            (
                "aresample",
                vec![opt("sample_rate", model::Value::Integer(10_000_000))],
                "is not allowed",
            ),
        ] {
            let err = validate(step(vec![node(filter, args)], None), 1.0).unwrap_err();
            assert!(err.reason.contains(why), "{filter}: {}", err.reason);
        }
    }

    #[test]
    fn an_output_without_a_duration_is_bounded_by_its_input() {
        let v = validate(step(vec![], None), 2.0).unwrap();
        let bound = v.output_bound(0);
        assert!((2.0..=3.1).contains(&bound), "bound {bound}");
    }

    #[test]
    fn an_explicit_duration_is_kept_but_never_beyond_the_bound() {
        let v = validate(step(vec![], Some(0.5)), 2.0).unwrap();
        assert_eq!(v.output_bound(0), 0.5);
        let v = validate(step(vec![], Some(3600.0)), 2.0).unwrap();
        assert!(v.output_bound(0) < 4.0, "bound {}", v.output_bound(0));
    }

    #[test]
    fn a_claimless_input_still_gets_a_bound() {
        let mut m = media(1.0);
        m.0.container.duration_s = None;
        let v = validate_steps(vec![step(vec![], None)], &m, &HashSet::new()).unwrap();
        assert!(v[0].output_bound(0) <= BOUND_SLACK_S);
    }

    #[test]
    fn apad_without_a_length_is_refused() {
        let err = validate(step(vec![node("apad", vec![])], None), 1.0).unwrap_err();
        assert!(err.reason.contains("pads forever"), "{}", err.reason);
        assert!(err.where_.contains("apad"), "{}", err.where_);
        for zero in [
            model::Value::Number(0.0),
            model::Value::Integer(0),
            model::Value::Number(1e-7),
        ] {
            let padded = node("apad", vec![opt("whole_dur", zero)]);
            let err = validate(step(vec![padded], None), 1.0).unwrap_err();
            assert!(err.reason.contains("pads forever"), "{}", err.reason);
        }
    }

    #[test]
    fn apad_and_adelay_with_lengths_extend_the_bound_by_what_they_add() {
        let padded = node("apad", vec![opt("pad_dur", model::Value::Number(10.0))]);
        let v = validate(step(vec![padded], None), 1.0).unwrap();
        assert!((11.0..=12.2).contains(&v.output_bound(0)));
        let delayed = node(
            "adelay",
            vec![opt("delays", model::Value::Text("5000|250".into()))],
        );
        let v = validate(step(vec![delayed], None), 1.0).unwrap();
        assert!((6.0..=7.1).contains(&v.output_bound(0)));
    }

    #[test]
    fn bounds_never_exceed_the_maximum_duration() {
        let padded = node(
            "apad",
            vec![opt("whole_dur", model::Value::Number(86_400.0))],
        );
        let v = validate(step(vec![padded], None), 86_000.0).unwrap();
        assert_eq!(v.output_bound(0), MAX_DURATION_S);
    }

    #[test]
    fn a_seek_and_an_input_duration_shorten_the_bound() {
        let mut s = step(vec![], None);
        s.inputs[0].seek_s = Some(50.0);
        let v = validate(s.clone(), 60.0).unwrap();
        assert!(v.output_bound(0) < 12.0);
        s.inputs[0].duration_s = Some(2.0);
        let v = validate(s, 60.0).unwrap();
        assert!(v.output_bound(0) < 4.0);
    }

    #[test]
    fn a_command_line_over_budget_is_refused() {
        let mut s = step(vec![], None);
        let tags: Vec<model::Tag> = (0..MAX_ARGS)
            .map(|i| model::Tag {
                key: format!("k{i}"),
                value: "x".repeat(MAX_TEXT),
            })
            .collect();
        s.outputs[0].streams[0].metadata = tags.clone();
        s.outputs[0].metadata = tags.clone();
        assert!(validate(s.clone(), 1.0).is_ok(), "64 KiB of tags fit");
        let stream = s.outputs[0].streams[0].clone();
        s.outputs[0].streams = vec![stream; 4];
        let err = validate(s, 1.0).unwrap_err();
        assert!(err.reason.contains("in all"), "{}", err.reason);
    }

    #[test]
    fn one_argument_over_budget_is_refused() {
        let chain: Vec<model::FilterNode> = (0..MAX_NODES)
            .map(|n| model::FilterNode {
                filter: "aformat".into(),
                args: vec![
                    opt(
                        "sample_rates",
                        model::Value::Text(vec!["48000"; 170].join("|")),
                    ),
                    opt(
                        "sample_fmts",
                        model::Value::Text(vec!["fltp"; 200].join("|")),
                    ),
                ],
                inputs: vec![if n == 0 {
                    model::Pad::Stream(model::StreamRef {
                        input: 0,
                        stream: 0,
                    })
                } else {
                    model::Pad::Link(format!("l{}", n - 1))
                }],
                outputs: vec![if n + 1 == MAX_NODES {
                    "out".into()
                } else {
                    format!("l{n}")
                }],
            })
            .collect();
        let err = validate(step(chain, None), 1.0).unwrap_err();
        assert!(err.reason.contains("per argument"), "{}", err.reason);
    }

    fn analysis(kind: model::AnalysisKind, window: Option<(f64, f64)>) -> model::AnalysisRequest {
        model::AnalysisRequest {
            id: "x".into(),
            source: model::MediaRef::Input("a".into()),
            stream: 0,
            kind,
            window: window.map(|(start_s, duration_s)| model::TimeWindow {
                start_s,
                duration_s,
            }),
        }
    }

    /// One job input, "a": a video stream of 10 s.
    fn video() -> OneInput {
        OneInput(crate::media::probe::from_json(&json!({
            "format": {"format_name": "matroska", "duration": "10", "size": "1000"},
            "streams": [{"index": 0, "codec_type": "video", "codec_name": "h264",
                         "width": 64, "height": 64}]
        })))
    }

    /// Input "a": an 8192-tall JPEG photo with EXIF orientation 6, as the probe reports it.
    fn photo() -> OneInput {
        let mut info = crate::media::probe::from_json(&json!({
            "format": {"format_name": "image2,jpeg_pipe", "duration": "0.04", "size": "9000000"},
            "streams": [{"index": 0, "codec_type": "video", "codec_name": "mjpeg",
                         "width": 6144, "height": 8192}]
        }));
        crate::media::probe::tag_orientation(&mut info, Some(6));
        OneInput(info)
    }

    #[test]
    fn unsharp_matrix_sizes_are_odd() {
        let unsharp = allowlist::filter_args("unsharp").unwrap();
        let size =
            |v: i64| check_options(&[opt("luma_msize_x", model::Value::Integer(v))], unsharp);
        for ok in [3, 5, 13] {
            size(ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
        }
        for refused in [1, 4, 12, 15] {
            assert!(size(refused).is_err(), "{refused} passed");
        }
        let amount =
            |v: f64| check_options(&[opt("luma_amount", model::Value::Number(v))], unsharp);
        assert!(amount(1.5).is_ok() && amount(3.5).is_err() && amount(-1.0).is_err());
    }

    /// What an image-variants preset plans: the photo turned by its orientation, split into 16
    /// branches, each scaled (up to 8192 on either axis), cropped or padded, sharpened, then
    /// encoded in the pixel format of its image (which saves a `format` node per branch).
    #[test]
    fn a_photo_split_into_16_sized_variants_passes() {
        let int = |name: &str, v: i64| opt(name, model::Value::Integer(v));
        let text = |name: &str, v: &str| opt(name, model::Value::Text(v.into()));
        let link = |label: String| model::Pad::Link(label);
        let node = |filter: &str, args, inputs, outputs: Vec<String>| model::FilterNode {
            filter: filter.into(),
            args,
            inputs,
            outputs,
        };
        let mut graph = vec![
            node(
                "transpose",
                vec![text("dir", "clock")],
                vec![model::Pad::Stream(model::StreamRef {
                    input: 0,
                    stream: 0,
                })],
                vec!["turned".into()],
            ),
            node(
                "split",
                vec![int("outputs", 16)],
                vec![link("turned".into())],
                (0..16).map(|i| format!("v{i}")).collect(),
            ),
        ];
        let mut outputs = Vec::new();
        for i in 0..16 {
            let side = 512 * (i + 1);
            graph.push(node(
                "scale",
                vec![int("w", -2), int("h", side), text("flags", "lanczos")],
                vec![link(format!("v{i}"))],
                vec![format!("s{i}")],
            ));
            let (fit, args) = if i % 2 == 0 {
                let args = vec![
                    int("w", side),
                    int("h", side),
                    int("x", 0),
                    int("y", 0),
                    text("color", ["black", "white", "black@0"][i as usize % 3]),
                ];
                ("pad", args)
            } else {
                (
                    "crop",
                    vec![int("w", side / 2), int("h", side), int("x", 0), int("y", 0)],
                )
            };
            graph.push(node(
                fit,
                args,
                vec![link(format!("s{i}"))],
                vec![format!("f{i}")],
            ));
            graph.push(node(
                "unsharp",
                vec![
                    int("luma_msize_x", 5),
                    int("luma_msize_y", 5),
                    opt("luma_amount", model::Value::Number(0.8)),
                ],
                vec![link(format!("f{i}"))],
                vec![format!("u{i}")],
            ));
            let (format, codec, pixels) = match i % 4 {
                0 => (model::ImageFormat::Jpeg, "mjpeg", "yuvj420p"),
                1 => (model::ImageFormat::Webp, "libwebp", "yuva420p"),
                2 => (model::ImageFormat::Png, "png", "rgba"),
                _ => (model::ImageFormat::Png, "png", "gray"),
            };
            let mut codec = model::Codec::encode(codec);
            if let model::Codec::Encode(e) = &mut codec {
                e.pixel_format = Some(pixels.into());
            }
            outputs.push(model::Output {
                name: format!("w{side}"),
                kind: model::OutputKind::Still(model::ImageSpec { format, ..JPEG }),
                streams: vec![model::OutputStream {
                    source: link(format!("u{i}")),
                    codec,
                    metadata: vec![],
                }],
                metadata: vec![],
                muxer_options: vec![],
                duration_s: None,
                optional: false,
            });
        }
        let mut s = step(vec![], None);
        s.graph = graph;
        s.outputs = outputs;
        assert_eq!(s.graph.len(), 50);
        let validated = validate_steps(vec![s.clone()], &photo(), &HashSet::new())
            .unwrap_or_else(|r| panic!("{r}"))
            .remove(0);
        assert!(
            validated.decodes_as_stored(0),
            "the photo has an orientation"
        );

        // A `format` node in every branch as well is one node too many: 2 + 16 * 4 > 64.
        for i in 0..16 {
            let at = s
                .graph
                .iter()
                .position(|n| n.outputs == [format!("u{i}")])
                .unwrap();
            s.graph[at].outputs = vec![format!("x{i}")];
            s.graph.push(node(
                "format",
                vec![text("pix_fmts", "rgb24")],
                vec![link(format!("x{i}"))],
                vec![format!("u{i}")],
            ));
        }
        let err = validate_steps(vec![s], &photo(), &HashSet::new()).unwrap_err();
        assert!(err.reason.contains("at most 64"), "{}", err.reason);
    }

    #[test]
    fn an_analysis_window_must_start_inside_the_media() {
        let check = |window| {
            validate_analyses(
                vec![analysis(model::AnalysisKind::Loudness, window)],
                &media(10.0),
            )
        };
        let ok = check(Some((2.0, 8.0))).expect("inside");
        assert_eq!(ok[0].media_s(), 10.0);
        check(Some((5.0, 600.0))).expect("an end past the media is cut there");
        for window in [(10.5, 1.0), (-1.0, 2.0), (0.0, 0.0), (f64::NAN, 1.0)] {
            let err = check(Some(window)).unwrap_err();
            assert!(
                err.to_string().contains("does not start inside"),
                "{window:?}: {err}"
            );
        }
    }

    #[test]
    fn video_analysis_specs_must_be_in_range() {
        let black = |min_duration_s, picture_threshold, pixel_threshold| {
            model::AnalysisKind::BlackIntervals(model::BlackSpec {
                min_duration_s,
                picture_threshold,
                pixel_threshold,
            })
        };
        let scene = |threshold| model::AnalysisKind::SceneChanges(model::SceneSpec { threshold });
        for kind in [
            black(0.5, 0.98, 0.1),
            scene(10.0),
            model::AnalysisKind::Crop,
        ] {
            validate_analyses(vec![analysis(kind, None)], &video()).expect("in range");
        }
        for kind in [
            black(0.0, 0.98, 0.1),
            black(0.5, 1.5, 0.1),
            black(0.5, 0.9, -0.1),
            scene(101.0),
            scene(f64::INFINITY),
        ] {
            validate_analyses(vec![analysis(kind, None)], &video()).expect_err("out of range");
        }
        let err = validate_analyses(vec![analysis(scene(10.0), None)], &media(1.0)).unwrap_err();
        assert!(err.to_string().contains("measures a video stream"), "{err}");
    }

    #[test]
    fn a_round_is_validated_whole() {
        let decision = model::Decision::Finish(model::Finish {
            steps: vec![step(vec![], None)],
            packages: vec![],
            documents: vec![],
            report: vec![],
        });
        let round = validate_round(decision, &media(1.0), &HashSet::new()).unwrap();
        assert!(matches!(round, ValidatedRound::Finish(f) if f.steps.len() == 1));
    }

    const JPEG: model::ImageSpec = model::ImageSpec {
        format: model::ImageFormat::Jpeg,
        quality: None,
        metadata: model::ImageMetadata::Keep,
    };

    /// A step reading stream 0 of input "a" into one output `name` of `kind`, encoded by `codec`.
    fn kind_step(name: &str, kind: model::OutputKind, codec: &str) -> model::Step {
        let mut s = step(vec![], None);
        s.name = format!("s-{name}");
        s.outputs[0].name = name.into();
        s.outputs[0].kind = kind;
        s.outputs[0].streams[0].codec = model::Codec::encode(codec);
        s
    }

    fn hls(seconds: f64) -> model::OutputKind {
        model::OutputKind::HlsRendition(model::HlsRenditionSpec {
            segment_format: model::SegmentFormat::Fmp4,
            segment_duration_s: seconds,
        })
    }

    fn sequence(format: model::ImageFormat, max_frames: u32) -> model::OutputKind {
        model::OutputKind::ImageSequence(model::ImageSequenceSpec {
            image: model::ImageSpec { format, ..JPEG },
            max_frames,
        })
    }

    fn check(step: model::Step, media: &OneInput) -> Result<(), String> {
        validate_steps(vec![step], media, &HashSet::new())
            .map(|_| ())
            .map_err(|r| r.reason)
    }

    #[test]
    fn a_still_is_one_video_stream_encoded_for_its_format() {
        let still = model::OutputKind::Still(JPEG);
        check(kind_step("p", still.clone(), "mjpeg"), &video()).expect("a JPEG still");
        let err = check(kind_step("p", still.clone(), "png"), &video()).unwrap_err();
        assert!(err.contains("'mjpeg'"), "{err}");
        let err = check(kind_step("p", still.clone(), "mjpeg"), &media(1.0)).unwrap_err();
        assert!(err.contains("not a video stream"), "{err}");
        let mut two = kind_step("p", still.clone(), "mjpeg");
        let again = two.outputs[0].streams[0].clone();
        two.outputs[0].streams.push(again);
        assert!(
            check(two, &video())
                .unwrap_err()
                .contains("exactly one stream")
        );
        for q in [0, 101] {
            let bad = model::OutputKind::Still(model::ImageSpec {
                quality: Some(q),
                ..JPEG
            });
            assert!(
                check(kind_step("p", bad, "mjpeg"), &video()).is_err(),
                "quality {q}"
            );
        }
        let mut muxed = kind_step("p", still, "mjpeg");
        muxed.outputs[0].muxer_options =
            vec![opt("movflags", model::Value::Text("+faststart".into()))];
        assert!(
            check(muxed, &video())
                .unwrap_err()
                .contains("muxer options")
        );
    }

    #[test]
    fn an_image_sequence_is_bounded_and_never_avif() {
        check(
            kind_step("t", sequence(model::ImageFormat::Webp, 1000), "libwebp"),
            &video(),
        )
        .expect("1000 WebP images");
        for n in [0, 1001] {
            let err = check(
                kind_step("t", sequence(model::ImageFormat::Webp, n), "libwebp"),
                &video(),
            )
            .unwrap_err();
            assert!(err.contains("max_frames"), "{err}");
        }
        let err = check(
            kind_step("t", sequence(model::ImageFormat::Avif, 4), "libaom-av1"),
            &video(),
        )
        .unwrap_err();
        assert!(err.contains("AVIF"), "{err}");
    }

    #[test]
    fn an_hls_rendition_has_segments_of_1_to_30_seconds() {
        check(kind_step("r", hls(4.0), "libx264"), &video()).expect("4 s segments");
        for d in [0.5, 31.0, f64::NAN] {
            assert!(
                check(kind_step("r", hls(d), "libx264"), &video()).is_err(),
                "{d}"
            );
        }
    }

    #[test]
    fn intermediates_are_required_files() {
        let next = |step| {
            model::Decision::Next(model::RoundWork {
                steps: vec![step],
                analyses: vec![],
            })
        };
        let still = kind_step("p", model::OutputKind::Still(JPEG), "mjpeg");
        let err = validate_round(next(still), &video(), &HashSet::new()).unwrap_err();
        assert!(err.to_string().contains("outputs of the finish"), "{err}");
        let mut optional = step(vec![], None);
        optional.outputs[0].optional = true;
        let err = validate_round(next(optional), &media(1.0), &HashSet::new()).unwrap_err();
        assert!(err.to_string().contains("never optional"), "{err}");
    }

    fn finish_with(
        packages: Vec<model::HlsPackage>,
        documents: Vec<model::Document>,
    ) -> Result<ValidatedRound, RoundRejection> {
        let mut audio = kind_step("audio", hls(4.0), "aac");
        audio.outputs[0].streams[0].source = model::Pad::Stream(model::StreamRef {
            input: 0,
            stream: 0,
        });
        let decision = model::Decision::Finish(model::Finish {
            steps: vec![
                kind_step("v720", hls(4.0), "libx264"),
                kind_step("thumbs", sequence(model::ImageFormat::Jpeg, 2), "mjpeg"),
                audio,
            ],
            packages,
            documents,
            report: vec![],
        });
        validate_round(decision, &video(), &HashSet::new())
    }

    fn package(variants: &[&str], audio: &[&str]) -> model::HlsPackage {
        model::HlsPackage {
            name: "master".into(),
            variants: variants.iter().map(|v| v.to_string()).collect(),
            audio: audio
                .iter()
                .map(|a| model::HlsAudio {
                    output: a.to_string(),
                    label: "English".into(),
                    language: Some("en".into()),
                })
                .collect(),
        }
    }

    #[test]
    fn a_package_groups_video_renditions_and_audio_only_ones() {
        finish_with(vec![package(&["v720"], &["audio"])], vec![]).expect("a package");
        for (p, why) in [
            (package(&["nope"], &[]), "not an HLS rendition"),
            (package(&["thumbs"], &[]), "not an HLS rendition"),
            (package(&["audio"], &[]), "no video stream"),
            (package(&["v720"], &["v720"]), "has a video stream"),
            (package(&[], &[]), "at least one variant"),
        ] {
            let err = finish_with(vec![p], vec![]).unwrap_err().to_string();
            assert!(err.contains(why), "{why}: {err}");
        }
        let mut clash = package(&["v720"], &[]);
        clash.name = "v720".into();
        let err = finish_with(vec![clash], vec![]).unwrap_err().to_string();
        assert!(err.contains("has this name"), "{err}");
    }

    fn document(format: model::DocumentFormat, body: &str) -> model::Document {
        model::Document {
            name: "index".into(),
            format,
            body: body.into(),
            optional: false,
        }
    }

    #[test]
    fn a_document_refers_only_to_outputs_of_its_finish() {
        let vtt = |body: &str| document(model::DocumentFormat::Webvtt, body);
        finish_with(
            vec![],
            vec![vtt(
                "WEBVTT\n\n00:00.000 --> 00:01.000\n{{output:thumbs:2}}\n",
            )],
        )
        .expect("the second of two images");
        finish_with(
            vec![],
            vec![document(
                model::DocumentFormat::Json,
                r#"{"playlist": "{{output:v720}}"}"#,
            )],
        )
        .expect("a JSON document naming a rendition");
        for (doc, why) in [
            (vtt("WEBVTT\n{{output:thumbs:3}}"), "not an image"),
            (vtt("WEBVTT\n{{output:thumbs:0}}"), "not an image"),
            (vtt("WEBVTT\n{{output:v720:1}}"), "not an image"),
            (vtt("WEBVTT\n{{output:gone}}"), "names no output"),
            (vtt("WEBVTT\n{{output:v720"), "not closed"),
            (vtt("no header"), "WEBVTT"),
            (document(model::DocumentFormat::Json, "{"), "not JSON"),
            (
                vtt(&format!("WEBVTT\n{}", "x".repeat(MAX_DOCUMENT_BYTES))),
                "at most",
            ),
        ] {
            let err = finish_with(vec![], vec![doc]).unwrap_err().to_string();
            assert!(err.contains(why), "{why}: {err}");
        }
    }
}
