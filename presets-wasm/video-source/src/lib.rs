//! video-source: what every video preset needs to know about its source before it plans, and
//! the picture decisions they share.
//!
//! - [`Source`]: the best video stream of an input, with the size it is *displayed* at (ffmpeg
//!   autorotates, so a phone's 1280x720 picture with a 90° display matrix comes out 720x1280,
//!   upright, with no matrix left; non-square pixels are made square), its frame rate, length
//!   and the bits its video carries.
//! - [`scan_analysis`] and [`Scan`]: round 1 asks for the interlacing analysis; round 2 adds a
//!   deinterlacer when the analysis found fields.
//! - [`fit`]: the size a picture is scaled to for a height limit, never upscaled unless asked.
//!   A height means the picture's shorter side, so a portrait video's "720p" is 720 wide.
//!
//! - [`Json`]: the documents presets write.
//!
//! Not here: encoders, containers and outputs, which are each preset's own decisions.

mod json;
mod scan;
mod size;

pub use json::Json;

pub use scan::{SCAN_ID, Scan, scan_analysis, scan_result};
pub use size::{Size, fit, fit_width};

use preset_sdk::*;

/// x264's and x265's speed presets, fastest first: the `speed` param of every video preset.
pub const SPEEDS: [&str; 9] = [
    "ultrafast",
    "superfast",
    "veryfast",
    "faster",
    "fast",
    "medium",
    "slow",
    "slower",
    "veryslow",
];

/// The `speed` param: the encoder's speed preset, slower is smaller for the same quality.
pub fn speed_param(default: &str) -> ChoiceParam {
    ParamSpec::choice(
        "speed",
        "Encoder speed preset (x264/x265): slower presets make smaller files of the same quality and take longer.",
        SPEEDS,
    )
    .default(default)
}

/// The best video stream of an input, as the presets plan with it.
pub struct Source<'a> {
    pub info: &'a MediaInfo,
    pub stream: &'a StreamInfo,
    pub video: &'a VideoInfo,
}

impl<'a> Source<'a> {
    /// The best video stream of input `name`; `NO_VIDEO` when it has none (cover art is not
    /// a video).
    pub fn of(request: &'a PlanRequest, name: &str) -> Result<Source<'a>, Refusal> {
        let info = request.input(name)?;
        let stream = info
            .best_video()
            .filter(|s| !s.disposition.attached_pic)
            .ok_or_else(|| {
                refuse(
                    "NO_VIDEO",
                    format!("input '{name}' has no video stream (only cover art or none at all)"),
                )
            })?;
        let video = stream.video().ok_or_else(|| {
            refuse(
                "NO_VIDEO",
                format!("input '{name}': ffprobe gave no picture size for its video stream"),
            )
        })?;
        if video.width == 0 || video.height == 0 {
            return Err(refuse(
                "NO_VIDEO",
                format!("input '{name}': its video stream has no picture size"),
            ));
        }
        Ok(Source {
            info,
            stream,
            video,
        })
    }

    /// The stream's absolute index, for [`Pad::stream`].
    pub fn index(&self) -> u32 {
        self.stream.index
    }

    /// A pad of this stream in a step whose first input is the source.
    pub fn pad(&self) -> Pad {
        Pad::stream(0, self.index())
    }

    /// Display rotation in whole quarter turns, as ffmpeg applies it (0, 90, 180, 270).
    pub fn rotation(&self) -> i32 {
        let degrees = self.video.rotation_degrees.rem_euclid(360);
        (degrees + 45) / 90 % 4 * 90
    }

    /// The picture as it is shown: rotated, with square pixels.
    pub fn display(&self) -> Size {
        let (mut width, height) = (f64::from(self.video.width), f64::from(self.video.height));
        if let Some(sar) = self.video.sample_aspect_ratio
            && sar.num > 0
            && sar.den > 0
        {
            width *= sar.num as f64 / sar.den as f64;
        }
        let (width, height) = (width.round() as u32, height as u32);
        if self.rotation() % 180 == 90 {
            Size::new(height, width)
        } else {
            Size::new(width, height)
        }
    }

    /// The frame rate: nominal, else average; `None` when ffprobe knows neither.
    pub fn frame_rate(&self) -> Option<Rational> {
        [self.video.frame_rate, self.video.average_frame_rate]
            .into_iter()
            .flatten()
            .find(|r| r.num > 0 && r.den > 0 && r.num as f64 / r.den as f64 <= 240.0)
    }

    /// Frames per second, 25 when unknown.
    pub fn fps(&self) -> f64 {
        self.frame_rate()
            .map_or(25.0, |r| r.num as f64 / r.den as f64)
    }

    /// The length in seconds: the container's, else the stream's.
    pub fn duration_s(&self) -> Option<f64> {
        self.info
            .container
            .duration_s
            .or(self.stream.duration_s)
            .filter(|d| d.is_finite() && *d > 0.0)
    }

    /// The latest time a still can be taken at: a frame is sure to be found before the last two
    /// frame durations. `None` when the length is unknown.
    pub fn last_still_s(&self) -> Option<f64> {
        self.duration_s().map(|d| (d - 2.0 / self.fps()).max(0.0))
    }

    /// Bits per second of the video: the stream's own figure, else the container's less its
    /// audio streams'.
    pub fn video_bit_rate(&self) -> Option<u64> {
        self.stream.bit_rate.filter(|b| *b > 0).or_else(|| {
            let total = self.info.container.bit_rate.filter(|b| *b > 0)?;
            let audio: u64 = self
                .info
                .audio_streams()
                .filter_map(|a| a.stream.bit_rate)
                .sum();
            total.checked_sub(audio).filter(|b| *b > 0)
        })
    }

    /// The best audio stream of the same input, if any.
    pub fn audio(&self) -> Option<AudioStream<'a>> {
        self.info.best_audio()
    }
}

/// `chain` scaled to `size`, with square pixels: how every picture a preset writes ends.
pub fn scaled(chain: Chain, size: Size) -> Chain {
    chain
        .then(
            FilterNode::new("scale")
                .arg("w", size.width)
                .arg("h", size.height),
        )
        .then(FilterNode::new("setsar").arg("sar", 1))
}

/// The source's picture (the step's first input), deinterlaced when the scan found fields,
/// scaled to `size`.
pub fn picture(source: &Source, scan: &Scan, size: Size) -> Chain {
    scaled(
        Chain::new(source.pad()).then_maybe(scan.deinterlacer()),
        size,
    )
}

/// A rational as ffmpeg writes it: `30000/1001`, `25/1`.
pub fn rational_text(r: Rational) -> String {
    format!("{}/{}", r.num, r.den)
}

/// Seconds as a WebVTT timestamp, `HH:MM:SS.mmm`.
///
/// ```
/// assert_eq!(video_source::vtt_time(3725.5), "01:02:05.500");
/// ```
pub fn vtt_time(seconds: f64) -> String {
    let millis = (seconds.max(0.0) * 1000.0).round() as u64;
    format!(
        "{:02}:{:02}:{:02}.{:03}",
        millis / 3_600_000,
        millis / 60_000 % 60,
        millis / 1000 % 60,
        millis % 1000
    )
}

/// `value` rounded to `decimals` places, for tidy reports.
pub fn round_to(value: f64, decimals: i32) -> f64 {
    let scale = 10f64.powi(decimals);
    (value * scale).round() / scale
}

#[cfg(test)]
mod tests;
