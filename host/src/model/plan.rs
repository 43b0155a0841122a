//! A preset's plan as data: steps of filter graphs and outputs, packages and documents built
//! from them, and the decision a planning round ends with. Nothing here is checked yet; only
//! [`crate::plan::validate`] turns a plan into something that can run.

use serde::{Deserialize, Serialize};

use super::analysis::AnalysisRequest;
use super::media::{MediaRef, Rational, Tag};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Value {
    Integer(i64),
    Number(f64),
    Boolean(bool),
    Text(String),
}

/// A named argument of a filter, codec or muxer. The host checks the name against an
/// allowlist and escapes the value itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OptionValue {
    pub name: String,
    pub value: Value,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepInput {
    pub source: MediaRef,
    pub seek_s: Option<f64>,
    pub duration_s: Option<f64>,
}

/// One stream of one of the step's inputs, by position in `step.inputs` and absolute index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamRef {
    pub input: u32,
    pub stream: u32,
}

/// A filter pad or mapped stream: a stream of an input, or a labelled filter output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Pad {
    Stream(StreamRef),
    Link(String),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FilterNode {
    pub filter: String,
    pub args: Vec<OptionValue>,
    pub inputs: Vec<Pad>,
    /// Labels for this node's outputs, used by later nodes or by output streams.
    pub outputs: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Encoder {
    pub codec: String,
    pub bit_rate: Option<u64>,
    pub sample_rate: Option<u32>,
    pub channels: Option<u32>,
    pub sample_format: Option<String>,
    pub pixel_format: Option<String>,
    pub frame_rate: Option<Rational>,
    pub options: Vec<OptionValue>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Codec {
    Copy,
    Encode(Encoder),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutputStream {
    pub source: Pad,
    pub codec: Codec,
    pub metadata: Vec<Tag>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ImageFormat {
    Jpeg,
    Png,
    Webp,
    Avif,
}

/// What an image output keeps of its source's EXIF, XMP and ICC profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ImageMetadata {
    /// Copied after encoding, EXIF orientation reset when the pixels were rotated.
    Keep,
    /// Dropped, the pixels converted to sRGB first.
    Strip,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageSpec {
    pub format: ImageFormat,
    /// 1 (smallest) to 100 (best); the host's default for the format when absent.
    pub quality: Option<u32>,
    pub metadata: ImageMetadata,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageSequenceSpec {
    pub image: ImageSpec,
    /// The most images the output may hold.
    pub max_frames: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SegmentFormat {
    Fmp4,
    Mpegts,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct HlsRenditionSpec {
    pub segment_format: SegmentFormat,
    pub segment_duration_s: f64,
}

/// What an output is once written: one file, one image, a run of images, or an HLS rendition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum OutputKind {
    /// One container file, by ffmpeg muxer name.
    File(String),
    Still(ImageSpec),
    ImageSequence(ImageSequenceSpec),
    HlsRendition(HlsRenditionSpec),
}

#[cfg(test)]
impl Codec {
    /// A test's encoder: `codec` with every setting left to ffmpeg.
    pub fn encode(codec: &str) -> Self {
        Self::Encode(Encoder {
            codec: codec.into(),
            bit_rate: None,
            sample_rate: None,
            channels: None,
            sample_format: None,
            pixel_format: None,
            frame_rate: None,
            options: vec![],
        })
    }
}

#[cfg(test)]
impl Output {
    /// A test's output: one stream from `source` encoded with `codec` and no options, required,
    /// with no duration bound.
    pub fn encoded(name: &str, kind: OutputKind, source: Pad, codec: &str) -> Self {
        Self {
            name: name.into(),
            kind,
            streams: vec![OutputStream {
                source,
                codec: Codec::encode(codec),
                metadata: vec![],
            }],
            metadata: vec![],
            muxer_options: vec![],
            duration_s: None,
            optional: false,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Output {
    /// The output's role ("main", "poster", "720p", ...): a plain name, never a path.
    pub name: String,
    pub kind: OutputKind,
    pub streams: Vec<OutputStream>,
    pub metadata: Vec<Tag>,
    pub muxer_options: Vec<OptionValue>,
    pub duration_s: Option<f64>,
    /// An optional output may fail without failing the job, which then ends `partial`.
    #[serde(default)]
    pub optional: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Step {
    pub name: String,
    pub inputs: Vec<StepInput>,
    pub graph: Vec<FilterNode>,
    pub outputs: Vec<Output>,
}

/// Work for the host before the next round: steps whose outputs are intermediates, then
/// analyses of inputs or intermediates.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoundWork {
    pub steps: Vec<Step>,
    pub analyses: Vec<AnalysisRequest>,
}

/// An audio rendition of an HLS package, in the package's audio group.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HlsAudio {
    pub output: String,
    pub label: String,
    pub language: Option<String>,
}

/// HLS renditions under one master playlist, which the host writes last from measurements.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HlsPackage {
    pub name: String,
    pub variants: Vec<String>,
    pub audio: Vec<HlsAudio>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum DocumentFormat {
    Webvtt,
    Json,
}

/// A small text document the preset writes, which may name other outputs by role.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Document {
    pub name: String,
    pub format: DocumentFormat,
    pub body: String,
    pub optional: bool,
}

/// The last round: these steps' outputs, packages and documents are the job's outputs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finish {
    pub steps: Vec<Step>,
    #[serde(default)]
    pub packages: Vec<HlsPackage>,
    #[serde(default)]
    pub documents: Vec<Document>,
    pub report: Vec<OptionValue>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Decision {
    Next(RoundWork),
    Finish(Finish),
}
