//! The quality-preset table: what each profile encodes by default.

/// Video codecs the profiles use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VideoCodec {
    H264,
    H265,
}

impl VideoCodec {
    pub fn encoder(self) -> &'static str {
        match self {
            VideoCodec::H264 => "libx264",
            VideoCodec::H265 => "libx265",
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            VideoCodec::H264 => "h264",
            VideoCodec::H265 => "hevc",
        }
    }

    /// Bits this codec needs for a picture, relative to H.264's.
    pub fn cost(self) -> f64 {
        match self {
            VideoCodec::H264 => 1.0,
            VideoCodec::H265 => 0.7,
        }
    }
}

/// Bits a source codec needed for its picture, relative to H.264's (older codecs need more,
/// newer ones fewer): how much of its bit rate the output can use.
pub fn source_cost(codec: &str) -> f64 {
    match codec {
        "mpeg2video" | "mpeg1video" | "mjpeg" | "prores" | "dnxhd" => 2.0,
        "mpeg4" | "msmpeg4v3" | "h263" | "vp8" => 1.4,
        "hevc" | "vp9" => 0.7,
        "av1" => 0.6,
        _ => 1.0,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Audio {
    Aac(u64),
    Flac,
}

/// One row of the table.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Profile {
    pub name: &'static str,
    pub codec: VideoCodec,
    /// The encoder profile ("high", "main10"); `None` lets the encoder follow the pixel format.
    pub codec_profile: Option<&'static str>,
    /// A 10-bit picture whatever the source.
    pub ten_bit: bool,
    /// Average bit rate; `None` for constant quality.
    pub bit_rate: Option<u64>,
    pub crf: Option<i64>,
    /// The highest picture (its shorter side); `None` keeps the source's.
    pub max_height: Option<u32>,
    pub audio: Audio,
    pub container: &'static str,
}

pub const NAMES: [&str; 4] = ["web-hd", "web-4k", "social", "archive"];

pub fn profile(name: &str) -> Option<Profile> {
    Some(match name {
        "web-hd" => Profile {
            name: "web-hd",
            codec: VideoCodec::H264,
            codec_profile: Some("high"),
            ten_bit: false,
            bit_rate: Some(4_000_000),
            crf: None,
            max_height: Some(1080),
            audio: Audio::Aac(128_000),
            container: "mp4",
        },
        "web-4k" => Profile {
            name: "web-4k",
            codec: VideoCodec::H265,
            codec_profile: Some("main10"),
            ten_bit: true,
            bit_rate: Some(15_000_000),
            crf: None,
            max_height: Some(2160),
            audio: Audio::Aac(192_000),
            container: "mp4",
        },
        "social" => Profile {
            name: "social",
            codec: VideoCodec::H264,
            codec_profile: Some("high"),
            ten_bit: false,
            bit_rate: Some(8_000_000),
            crf: None,
            max_height: Some(1080),
            audio: Audio::Aac(128_000),
            container: "mp4",
        },
        "archive" => Profile {
            name: "archive",
            codec: VideoCodec::H265,
            codec_profile: None,
            ten_bit: false,
            bit_rate: None,
            crf: Some(18),
            max_height: None,
            audio: Audio::Flac,
            container: "mkv",
        },
        _ => return None,
    })
}
