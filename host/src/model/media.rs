//! What ffprobe says about a file, as presets and the job record see it.

use serde::{Deserialize, Serialize};

/// An exact fraction, as ffprobe reports frame rates and aspect ratios.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Rational {
    pub num: i64,
    pub den: i64,
}

/// A free-form key/value pair: container and stream tags, output metadata.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tag {
    pub key: String,
    pub value: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum StreamKind {
    Audio,
    Video,
    Subtitle,
    Data,
    Attachment,
    Unknown,
}

impl StreamKind {
    /// The lower-case name the job record uses.
    pub fn name(self) -> &'static str {
        match self {
            Self::Audio => "audio",
            Self::Video => "video",
            Self::Subtitle => "subtitle",
            Self::Data => "data",
            Self::Attachment => "attachment",
            Self::Unknown => "unknown",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Disposition {
    pub default: bool,
    pub forced: bool,
    pub attached_pic: bool,
    pub hearing_impaired: bool,
    pub visual_impaired: bool,
    pub comment: bool,
    pub original: bool,
    pub dub: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AudioInfo {
    pub sample_rate: u32,
    pub channels: u32,
    /// ffmpeg's layout name ("mono", "stereo", "5.1(side)"), when known.
    pub channel_layout: Option<String>,
    pub sample_format: Option<String>,
    pub bits_per_sample: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ColorInfo {
    pub range: Option<String>,
    pub space: Option<String>,
    pub transfer: Option<String>,
    pub primaries: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VideoInfo {
    pub width: u32,
    pub height: u32,
    /// The stream's nominal frame rate (ffprobe's r_frame_rate).
    pub frame_rate: Option<Rational>,
    /// The average frame rate (ffprobe's avg_frame_rate).
    pub average_frame_rate: Option<Rational>,
    pub pixel_format: Option<String>,
    pub sample_aspect_ratio: Option<Rational>,
    pub color: ColorInfo,
    /// Display rotation in degrees, from the display matrix side data.
    pub rotation_degrees: i32,
    pub field_order: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum StreamDetail {
    Audio(AudioInfo),
    Video(VideoInfo),
    Other,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StreamInfo {
    /// ffprobe's absolute stream index within its file.
    pub index: u32,
    pub kind: StreamKind,
    pub codec: String,
    pub profile: Option<String>,
    pub bit_rate: Option<u64>,
    pub duration_s: Option<f64>,
    pub language: Option<String>,
    pub disposition: Disposition,
    pub tags: Vec<Tag>,
    pub detail: StreamDetail,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Container {
    /// ffprobe's format_name split at commas ("mov", "mp4", "m4a", ...).
    pub format_names: Vec<String>,
    pub duration_s: Option<f64>,
    pub size_bytes: u64,
    pub bit_rate: Option<u64>,
    pub tags: Vec<Tag>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MediaInfo {
    pub container: Container,
    pub streams: Vec<StreamInfo>,
}

/// Media a plan can read: a job input by the name the preset declared, or an intermediate
/// output produced by an earlier round, by its output name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum MediaRef {
    Input(String),
    Produced(String),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NamedMedia {
    pub source: MediaRef,
    pub info: MediaInfo,
}
