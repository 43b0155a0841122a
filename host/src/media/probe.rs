//! ffprobe's JSON turned into the typed media info presets receive, with the media's real length.
//!
//! A container's duration is the file's own claim: an MKV can claim 40,000,000 s. Time limits
//! and output bounds are derived from the duration found here, so it is measured with a
//! demux-only pass (no decoding) bounded by the file's size, and replaces a larger claim. Tags
//! are the file's own text too: they are cut to a bounded number and length, so a 1 MiB tag
//! cannot swell a job record or a preset request.
//!
//! An image input's EXIF orientation is not in ffprobe's view (it reports the stored size and no
//! rotation, while ffmpeg's mjpeg decoder turns the pixels by it): the probe reads it from the
//! file and reports it as the video stream's [`EXIF_ORIENTATION_TAG`], which also tells the
//! renderer to decode that input as stored, so that the plan's own turns are the only ones.
//!
//! Not here: decoding measurements such as loudness (that is [`super::analysis`]).

use std::path::Path;
use std::time::Duration;

use serde_json::Value;

use crate::error::ErrorCode;
use crate::ffmpeg::{self, Tools};
use crate::media::image_meta;
use crate::model;

/// Why a file could not be probed: the reason is ffprobe's own words.
/// Why a file could not be probed: the media (the caller's code applies), or ffprobe/ffmpeg
/// stopped for a reason of the host's (a signal, no free process or descriptor, a timeout), which
/// keeps its own code so a retryable fault is not recorded as bad media.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error("{0}")]
    Media(String),
    #[error("{0}: {1}")]
    Run(&'static str, ffmpeg::RunError),
}

impl ProbeError {
    /// The error code for this failure: `otherwise` when the media is at fault.
    pub fn code(&self, otherwise: ErrorCode) -> ErrorCode {
        match self {
            Self::Media(_) => otherwise,
            Self::Run(_, e) => e.code(otherwise),
        }
    }
}

/// The most tags kept per container or stream, and the most bytes kept of a key or a value.
pub const MAX_TAGS: usize = 64;
pub const MAX_TAG_KEY_BYTES: usize = 128;
pub const MAX_TAG_VALUE_BYTES: usize = 1024;
/// A container tag the host adds when it replaced the duration the file claimed with the one it
/// measured; its value is the claim, in seconds.
pub const CLAIMED_DURATION_TAG: &str = "mediahost_claimed_duration_s";
/// The video stream tag of an image input whose file carries an EXIF orientation: "1" to "8".
/// The host's own: a file's tag of this name is dropped.
pub const EXIF_ORIENTATION_TAG: &str = "exif_orientation";
/// The containers ffprobe names an image file by (an input has no extension to go by).
const IMAGE_CONTAINERS: &[&str] = &["jpeg_pipe", "png_pipe", "webp_pipe", "tiff_pipe"];
/// How far a claim may exceed the measured length before the measurement replaces it: the last
/// packet's own duration, and containers that round.
const CLAIM_TOLERANCE_S: f64 = 1.0;

/// Probes media the host did not write (an input): ffprobe, then a measure of its real length,
/// because its claimed duration is the file's word.
pub async fn probe(tools: &Tools, file: &Path) -> Result<model::MediaInfo, ProbeError> {
    let mut info = probe_written(tools, file).await?;
    let timed = info
        .streams
        .iter()
        .any(|s| matches!(s.kind, model::StreamKind::Audio | model::StreamKind::Video));
    if timed {
        let size = std::fs::metadata(file).map(|m| m.len()).unwrap_or(0);
        let measured = measure(tools, file, size).await?;
        apply_measured(&mut info, measured);
    }
    if info
        .container
        .format_names
        .iter()
        .any(|f| IMAGE_CONTAINERS.contains(&f.as_str()))
    {
        let orientation = std::fs::File::open(file)
            .and_then(|mut f| image_meta::read_exif(&mut f))
            .ok()
            .flatten()
            .and_then(|exif| image_meta::orientation(&exif));
        tag_orientation(&mut info, orientation);
    }
    Ok(info)
}

/// Reports an image's EXIF orientation (1 to 8; another value is no orientation) on its video
/// stream.
pub fn tag_orientation(info: &mut model::MediaInfo, orientation: Option<u16>) {
    let Some(orientation) = orientation.filter(|o| (1..=8).contains(o)) else {
        return;
    };
    if let Some(video) = info
        .streams
        .iter_mut()
        .find(|s| s.kind == model::StreamKind::Video)
    {
        video.tags.push(model::Tag {
            key: EXIF_ORIENTATION_TAG.into(),
            value: orientation.to_string(),
        });
    }
}

/// The EXIF orientation the probe found in an image input (see [`EXIF_ORIENTATION_TAG`]).
pub fn exif_orientation(info: &model::MediaInfo) -> Option<u16> {
    info.streams
        .iter()
        .flat_map(|s| &s.tags)
        .find(|t| t.key == EXIF_ORIENTATION_TAG)
        .and_then(|t| t.value.parse().ok())
}

/// Probes a file ffmpeg wrote for this job under the host's own `-t` bound: its duration is
/// ffmpeg's, so it is not measured again. Runs ffprobe restricted to local files and
/// allowlisted demuxers and decoders.
pub async fn probe_written(tools: &Tools, file: &Path) -> Result<model::MediaInfo, ProbeError> {
    let mut args: Vec<std::ffi::OsString> = ["-v", "error", "-hide_banner"]
        .iter()
        .map(Into::into)
        .collect();
    args.extend(ffmpeg::input_guard_args());
    // Images the host named are read by their pipe demuxer: the image2 demuxer, which would
    // claim them by extension, expands file name patterns and is not allowlisted.
    let image_demuxer = match file.extension().and_then(|e| e.to_str()) {
        Some("jpg") => Some("jpeg_pipe"),
        Some("png") => Some("png_pipe"),
        Some("webp") => Some("webp_pipe"),
        _ => None,
    };
    if let Some(demuxer) = image_demuxer {
        args.extend(["-f".into(), demuxer.into()]);
    }
    args.extend(
        ["-show_format", "-show_streams", "-of", "json"]
            .iter()
            .map(Into::into),
    );
    args.push(file.as_os_str().to_owned());
    let out = ffmpeg::capture(
        &tools.ffprobe,
        &args,
        Duration::from_secs(60),
        tools,
        file.parent(),
    )
    .await
    .map_err(|e| ProbeError::Run("ffprobe", e))?;
    if !out.success {
        let reason = last_line(&out.stderr).replace(&file.display().to_string(), "input");
        return Err(ProbeError::Media(if reason.is_empty() {
            "ffprobe could not read the file".into()
        } else {
            format!("ffprobe: {reason}")
        }));
    }
    let json: Value = serde_json::from_slice(&out.stdout)
        .map_err(|e| ProbeError::Media(format!("ffprobe gave unreadable JSON: {e}")))?;
    let info = from_json(&json);
    if info.streams.is_empty() {
        return Err(ProbeError::Media(
            "ffprobe found no streams in the file".into(),
        ));
    }
    Ok(info)
}

/// The wall-clock limit of the measuring pass: demuxing reads at disk speed, so a generous rate
/// over the file's size (never its claimed duration).
fn measure_limit(size_bytes: u64) -> Duration {
    Duration::from_secs(10 + size_bytes / (16 << 20))
}

/// The real length in seconds: how far a demux-only copy of the audio and video to nowhere gets.
async fn measure(tools: &Tools, file: &Path, size_bytes: u64) -> Result<f64, ProbeError> {
    let mut args = ffmpeg::guarded_input_argv(
        &["-hide_banner", "-nostdin", "-nostats", "-v", "error"],
        file,
    );
    args.extend(
        [
            "-map",
            "0:v?",
            "-map",
            "0:a?",
            "-c",
            "copy",
            "-f",
            "null",
            "-progress",
            "pipe:1",
            "-",
        ]
        .iter()
        .map(Into::into),
    );
    let limit = measure_limit(size_bytes);
    let out = ffmpeg::capture(&tools.ffmpeg, &args, limit, tools, file.parent())
        .await
        .map_err(|e| ProbeError::Run("measuring the real length", e))?;
    let measured = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.strip_prefix("out_time_us="))
        .filter_map(|us| us.trim().parse::<i64>().ok())
        .next_back();
    match measured {
        Some(us) if out.success => Ok(us.max(0) as f64 / 1e6),
        _ => {
            let reason = last_line(&out.stderr).replace(&file.display().to_string(), "input");
            Err(ProbeError::Media(format!(
                "ffmpeg could not read the file through to measure its length: {reason}"
            )))
        }
    }
}

/// Puts the measured length where the claim was when the claim is missing or larger, and says so
/// in a container tag.
pub fn apply_measured(info: &mut model::MediaInfo, measured_s: f64) {
    let lies = |claim: Option<f64>| {
        claim.is_none_or(|c| !c.is_finite() || c > measured_s * 1.01 + CLAIM_TOLERANCE_S)
    };
    if lies(info.container.duration_s) {
        if let Some(claim) = info.container.duration_s {
            info.container.tags.push(model::Tag {
                key: CLAIMED_DURATION_TAG.into(),
                value: claim.to_string(),
            });
        }
        info.container.duration_s = Some(measured_s);
    }
    for stream in &mut info.streams {
        if stream.duration_s.is_some() && lies(stream.duration_s) {
            stream.duration_s = Some(measured_s);
        }
    }
}

fn last_line(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes)
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim()
        .to_owned()
}

fn num<T: std::str::FromStr>(v: &Value) -> Option<T> {
    match v {
        Value::String(s) => s.parse().ok(),
        Value::Number(n) => n.to_string().parse().ok(),
        _ => None,
    }
}

fn text(v: &Value) -> Option<String> {
    v.as_str()
        .filter(|s| !s.is_empty() && *s != "unknown")
        .map(str::to_owned)
}

fn rational(v: &Value) -> Option<model::Rational> {
    let (a, b) = v.as_str()?.split_once(['/', ':'])?;
    let r = model::Rational {
        num: a.parse().ok()?,
        den: b.parse().ok()?,
    };
    (r.num > 0 && r.den > 0).then_some(r)
}

/// The first `max` bytes of `s`, cut at a character boundary, with `…` when something was cut.
fn cut(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

fn tags(v: &Value) -> Vec<model::Tag> {
    v.as_object()
        .map(|m| {
            m.iter()
                .filter(|(k, _)| *k != EXIF_ORIENTATION_TAG)
                .filter_map(|(k, v)| {
                    Some(model::Tag {
                        key: cut(k, MAX_TAG_KEY_BYTES),
                        value: cut(v.as_str()?, MAX_TAG_VALUE_BYTES),
                    })
                })
                .take(MAX_TAGS)
                .collect()
        })
        .unwrap_or_default()
}

fn flag(v: &Value, key: &str) -> bool {
    v.get(key).and_then(Value::as_i64) == Some(1)
}

/// Builds media info from ffprobe's `-show_format -show_streams` JSON.
pub fn from_json(json: &Value) -> model::MediaInfo {
    let format = &json["format"];
    let container = model::Container {
        format_names: format["format_name"]
            .as_str()
            .unwrap_or("")
            .split(',')
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect(),
        duration_s: num(&format["duration"]),
        size_bytes: num(&format["size"]).unwrap_or(0),
        bit_rate: num(&format["bit_rate"]),
        tags: tags(&format["tags"]),
    };
    let streams = json["streams"]
        .as_array()
        .map(|a| a.iter().map(stream).collect())
        .unwrap_or_default();
    model::MediaInfo { container, streams }
}

fn stream(s: &Value) -> model::StreamInfo {
    let kind = match s["codec_type"].as_str() {
        Some("audio") => model::StreamKind::Audio,
        Some("video") => model::StreamKind::Video,
        Some("subtitle") => model::StreamKind::Subtitle,
        Some("data") => model::StreamKind::Data,
        Some("attachment") => model::StreamKind::Attachment,
        _ => model::StreamKind::Unknown,
    };
    let d = &s["disposition"];
    let detail = match kind {
        model::StreamKind::Audio => model::StreamDetail::Audio(model::AudioInfo {
            sample_rate: num(&s["sample_rate"]).unwrap_or(0),
            channels: num(&s["channels"]).unwrap_or(0),
            channel_layout: text(&s["channel_layout"]),
            sample_format: text(&s["sample_fmt"]),
            bits_per_sample: num(&s["bits_per_raw_sample"])
                .or_else(|| num(&s["bits_per_sample"]))
                .filter(|b| *b > 0),
        }),
        model::StreamKind::Video => model::StreamDetail::Video(model::VideoInfo {
            width: num(&s["width"]).unwrap_or(0),
            height: num(&s["height"]).unwrap_or(0),
            frame_rate: rational(&s["r_frame_rate"]),
            average_frame_rate: rational(&s["avg_frame_rate"]),
            pixel_format: text(&s["pix_fmt"]),
            sample_aspect_ratio: rational(&s["sample_aspect_ratio"]),
            color: model::ColorInfo {
                range: text(&s["color_range"]),
                space: text(&s["color_space"]),
                transfer: text(&s["color_transfer"]),
                primaries: text(&s["color_primaries"]),
            },
            rotation_degrees: rotation(s),
            field_order: text(&s["field_order"]),
        }),
        _ => model::StreamDetail::Other,
    };
    model::StreamInfo {
        index: num(&s["index"]).unwrap_or(0),
        kind,
        codec: text(&s["codec_name"]).unwrap_or_else(|| "unknown".into()),
        profile: text(&s["profile"]),
        bit_rate: num(&s["bit_rate"]),
        duration_s: num(&s["duration"]),
        language: text(&s["tags"]["language"])
            .filter(|l| l != "und")
            .map(|l| cut(&l, MAX_TAG_KEY_BYTES)),
        disposition: model::Disposition {
            default: flag(d, "default"),
            forced: flag(d, "forced"),
            attached_pic: flag(d, "attached_pic"),
            hearing_impaired: flag(d, "hearing_impaired"),
            visual_impaired: flag(d, "visual_impaired"),
            comment: flag(d, "comment"),
            original: flag(d, "original"),
            dub: flag(d, "dub"),
        },
        tags: tags(&s["tags"]),
        detail,
    }
}

fn rotation(s: &Value) -> i32 {
    let from_side_data = s["side_data_list"].as_array().and_then(|list| {
        list.iter()
            .find_map(|sd| sd.get("rotation").and_then(num::<f64>))
    });
    let degrees = from_side_data.or_else(|| num::<f64>(&s["tags"]["rotate"]).map(|r| -r));
    degrees.map(|d| d.round() as i32).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_probe_stopped_by_the_host_keeps_its_retryable_code() {
        let interrupted = ProbeError::Run(
            "ffprobe",
            ffmpeg::RunError::Interrupted {
                program: "ffprobe".into(),
                signal: 15,
            },
        );
        assert_eq!(
            interrupted.code(ErrorCode::InputUnreadable),
            ErrorCode::FfmpegInterrupted
        );
        let bad = ProbeError::Media("ffprobe found no streams in the file".into());
        assert_eq!(
            bad.code(ErrorCode::InputUnreadable),
            ErrorCode::InputUnreadable
        );
    }
    use serde_json::json;

    #[test]
    fn reads_audio_and_video_streams() {
        let json = json!({
            "format": {"format_name": "mov,mp4,m4a", "duration": "1.5", "size": "1000", "bit_rate": "5333"},
            "streams": [
                {"index": 0, "codec_type": "video", "codec_name": "h264", "width": 64, "height": 48,
                 "r_frame_rate": "30000/1001", "avg_frame_rate": "0/0", "pix_fmt": "yuv420p",
                 "side_data_list": [{"rotation": -90}], "disposition": {"default": 1}},
                {"index": 1, "codec_type": "audio", "codec_name": "aac", "sample_rate": "48000",
                 "channels": 2, "channel_layout": "stereo", "tags": {"language": "eng"}}
            ]
        });
        let info = from_json(&json);
        assert_eq!(info.container.format_names, ["mov", "mp4", "m4a"]);
        assert_eq!(info.container.duration_s, Some(1.5));
        let model::StreamDetail::Video(v) = &info.streams[0].detail else {
            panic!("not video")
        };
        assert_eq!(
            v.frame_rate,
            Some(model::Rational {
                num: 30000,
                den: 1001
            })
        );
        assert_eq!(v.average_frame_rate, None);
        assert_eq!(v.rotation_degrees, -90);
        assert!(info.streams[0].disposition.default);
        let model::StreamDetail::Audio(a) = &info.streams[1].detail else {
            panic!("not audio")
        };
        assert_eq!((a.sample_rate, a.channels), (48000, 2));
        assert_eq!(info.streams[1].language.as_deref(), Some("eng"));
    }

    #[test]
    fn long_and_many_tags_are_cut() {
        let many: serde_json::Map<String, Value> = (0..1000)
            .map(|i| (format!("k{i:04}"), json!("v")))
            .collect();
        let json = json!({
            "format": {"format_name": "matroska", "tags": {"comment": "é".repeat(1 << 20),
                        "k".repeat(4096): "x"}},
            "streams": [{"index": 0, "codec_type": "audio", "tags": many,
                         "codec_name": "flac"}]
        });
        let info = from_json(&json);
        let comment = info
            .container
            .tags
            .iter()
            .find(|t| t.key == "comment")
            .unwrap();
        assert!(comment.value.len() <= MAX_TAG_VALUE_BYTES + '…'.len_utf8());
        assert!(comment.value.ends_with('…'));
        assert!(
            info.container
                .tags
                .iter()
                .all(|t| t.key.len() <= MAX_TAG_KEY_BYTES + 3)
        );
        assert_eq!(info.streams[0].tags.len(), MAX_TAGS);
    }

    #[test]
    fn a_claim_beyond_the_measured_length_is_replaced_and_noted() {
        let json = json!({
            "format": {"format_name": "matroska", "duration": "40000000.0"},
            "streams": [{"index": 0, "codec_type": "audio", "duration": "40000000.0"}]
        });
        let mut info = from_json(&json);
        apply_measured(&mut info, 1.0);
        assert_eq!(info.container.duration_s, Some(1.0));
        assert_eq!(info.streams[0].duration_s, Some(1.0));
        let noted = info
            .container
            .tags
            .iter()
            .find(|t| t.key == CLAIMED_DURATION_TAG);
        assert_eq!(noted.map(|t| t.value.as_str()), Some("40000000"));
    }

    #[test]
    fn an_honest_claim_is_kept_and_a_missing_one_filled() {
        let mut info = from_json(&json!({
            "format": {"format_name": "wav", "duration": "2.0"},
            "streams": [{"index": 0, "codec_type": "audio"}]
        }));
        apply_measured(&mut info, 1.98);
        assert_eq!(info.container.duration_s, Some(2.0));
        assert!(info.container.tags.is_empty());
        info.container.duration_s = None;
        apply_measured(&mut info, 1.98);
        assert_eq!(info.container.duration_s, Some(1.98));
    }

    #[test]
    fn an_orientation_is_the_hosts_tag_on_the_video_stream() {
        // A file's own tag of that name is not taken for the host's.
        let mut info = from_json(&json!({
            "format": {"format_name": "image2,jpeg_pipe"},
            "streams": [
                {"index": 0, "codec_type": "video", "codec_name": "mjpeg",
                 "tags": {"exif_orientation": "6", "comment": "x"}}
            ]
        }));
        assert_eq!(exif_orientation(&info), None);
        assert_eq!(info.streams[0].tags.len(), 1);
        tag_orientation(&mut info, Some(9));
        assert_eq!(exif_orientation(&info), None, "not an orientation");
        tag_orientation(&mut info, Some(8));
        assert_eq!(exif_orientation(&info), Some(8));
        assert!(
            info.streams[0]
                .tags
                .iter()
                .any(|t| t.key == EXIF_ORIENTATION_TAG && t.value == "8")
        );
    }

    /// A JPEG or PNG input (named without an extension, as inputs are) with EXIF orientation 6:
    /// ffprobe reports its stored 320x240 and nothing of the orientation; the probe adds it.
    #[tokio::test]
    async fn an_image_inputs_exif_orientation_is_probed() {
        let (tools, _) = Tools::detect().await;
        let dir = tempfile::tempdir().unwrap();
        let tiff = b"MM\0*\0\0\0\x08\0\x01\x01\x12\0\x03\0\0\0\x01\0\x06\0\0\0\0\0\0";
        let meta = image_meta::Metadata {
            exif: Some(tiff.to_vec()),
            ..Default::default()
        };
        for (ext, format) in [
            ("jpg", model::ImageFormat::Jpeg),
            ("png", model::ImageFormat::Png),
            ("webp", model::ImageFormat::Webp),
        ] {
            let plain = dir.path().join(format!("plain.{ext}"));
            let made = std::process::Command::new("ffmpeg")
                .args(["-v", "error", "-f", "lavfi", "-i", "testsrc2=size=320x240"])
                .args(["-frames:v", "1"])
                .arg(&plain)
                .status()
                .unwrap();
            assert!(made.success());
            let bytes = std::fs::read(&plain).unwrap();
            let plain_input = dir.path().join(format!("{ext}-plain"));
            std::fs::write(&plain_input, &bytes).unwrap();
            let oriented = dir.path().join(format!("{ext}-oriented"));
            std::fs::write(
                &oriented,
                image_meta::write(&bytes, format, &meta, false).unwrap(),
            )
            .unwrap();

            let info = probe(&tools, &oriented).await.unwrap();
            assert_eq!(exif_orientation(&info), Some(6), "{ext}");
            let video = &info.streams[0];
            let model::StreamDetail::Video(v) = &video.detail else {
                panic!("{ext}: not video")
            };
            assert_eq!(
                (v.width, v.height, v.rotation_degrees),
                (320, 240, 0),
                "{ext}"
            );
            assert!(
                video
                    .tags
                    .iter()
                    .any(|t| t.key == EXIF_ORIENTATION_TAG && t.value == "6"),
                "{ext}: {:?}",
                video.tags
            );
            let info = probe(&tools, &plain_input).await.unwrap();
            assert_eq!(exif_orientation(&info), None, "{ext}");
        }
    }

    #[test]
    fn the_measuring_pass_is_bounded_by_size_not_claims() {
        assert_eq!(measure_limit(0), Duration::from_secs(10));
        assert_eq!(measure_limit(1 << 30), Duration::from_secs(74));
    }
}
