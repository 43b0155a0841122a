//! ffprobe's JSON turned into the typed media info presets receive.

use std::path::Path;
use std::time::Duration;

use serde_json::Value;

use crate::ffmpeg::{self, Tools};
use crate::preset::wit;

/// Why a file could not be probed: the reason is ffprobe's own words.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ProbeError(pub String);

/// Runs ffprobe on a local file (restricted to local files and allowlisted demuxers).
pub async fn probe(tools: &Tools, file: &Path) -> Result<wit::MediaInfo, ProbeError> {
    let mut args: Vec<std::ffi::OsString> = ["-v", "error", "-hide_banner"]
        .iter()
        .map(Into::into)
        .collect();
    args.extend(ffmpeg::input_guard_args());
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
    .map_err(|e| ProbeError(e.to_string()))?;
    if !out.success {
        let reason = last_line(&out.stderr).replace(&file.display().to_string(), "input");
        return Err(ProbeError(if reason.is_empty() {
            "ffprobe could not read the file".into()
        } else {
            format!("ffprobe: {reason}")
        }));
    }
    let json: Value = serde_json::from_slice(&out.stdout)
        .map_err(|e| ProbeError(format!("ffprobe gave unreadable JSON: {e}")))?;
    let info = from_json(&json);
    if info.streams.is_empty() {
        return Err(ProbeError("ffprobe found no streams in the file".into()));
    }
    Ok(info)
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

fn rational(v: &Value) -> Option<wit::Rational> {
    let (a, b) = v.as_str()?.split_once(['/', ':'])?;
    let r = wit::Rational {
        num: a.parse().ok()?,
        den: b.parse().ok()?,
    };
    (r.num > 0 && r.den > 0).then_some(r)
}

fn tags(v: &Value) -> Vec<wit::Tag> {
    v.as_object()
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| {
                    Some(wit::Tag {
                        key: k.clone(),
                        value: v.as_str()?.to_owned(),
                    })
                })
                .collect()
        })
        .unwrap_or_default()
}

fn flag(v: &Value, key: &str) -> bool {
    v.get(key).and_then(Value::as_i64) == Some(1)
}

/// Builds media info from ffprobe's `-show_format -show_streams` JSON.
pub fn from_json(json: &Value) -> wit::MediaInfo {
    let format = &json["format"];
    let container = wit::Container {
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
    wit::MediaInfo { container, streams }
}

fn stream(s: &Value) -> wit::StreamInfo {
    let kind = match s["codec_type"].as_str() {
        Some("audio") => wit::StreamKind::Audio,
        Some("video") => wit::StreamKind::Video,
        Some("subtitle") => wit::StreamKind::Subtitle,
        Some("data") => wit::StreamKind::Data,
        Some("attachment") => wit::StreamKind::Attachment,
        _ => wit::StreamKind::Unknown,
    };
    let d = &s["disposition"];
    let detail = match kind {
        wit::StreamKind::Audio => wit::StreamDetail::Audio(wit::AudioInfo {
            sample_rate: num(&s["sample_rate"]).unwrap_or(0),
            channels: num(&s["channels"]).unwrap_or(0),
            channel_layout: text(&s["channel_layout"]),
            sample_format: text(&s["sample_fmt"]),
            bits_per_sample: num(&s["bits_per_raw_sample"])
                .or_else(|| num(&s["bits_per_sample"]))
                .filter(|b| *b > 0),
        }),
        wit::StreamKind::Video => wit::StreamDetail::Video(wit::VideoInfo {
            width: num(&s["width"]).unwrap_or(0),
            height: num(&s["height"]).unwrap_or(0),
            frame_rate: rational(&s["r_frame_rate"]),
            average_frame_rate: rational(&s["avg_frame_rate"]),
            pixel_format: text(&s["pix_fmt"]),
            sample_aspect_ratio: rational(&s["sample_aspect_ratio"]),
            color: wit::ColorInfo {
                range: text(&s["color_range"]),
                space: text(&s["color_space"]),
                transfer: text(&s["color_transfer"]),
                primaries: text(&s["color_primaries"]),
            },
            rotation_degrees: rotation(s),
            field_order: text(&s["field_order"]),
        }),
        _ => wit::StreamDetail::Other,
    };
    wit::StreamInfo {
        index: num(&s["index"]).unwrap_or(0),
        kind,
        codec: text(&s["codec_name"]).unwrap_or_else(|| "unknown".into()),
        profile: text(&s["profile"]),
        bit_rate: num(&s["bit_rate"]),
        duration_s: num(&s["duration"]),
        language: text(&s["tags"]["language"]).filter(|l| l != "und"),
        disposition: wit::Disposition {
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
        let wit::StreamDetail::Video(v) = &info.streams[0].detail else {
            panic!("not video")
        };
        assert_eq!(
            v.frame_rate,
            Some(wit::Rational {
                num: 30000,
                den: 1001
            })
        );
        assert_eq!(v.average_frame_rate, None);
        assert_eq!(v.rotation_degrees, -90);
        assert!(info.streams[0].disposition.default);
        let wit::StreamDetail::Audio(a) = &info.streams[1].detail else {
            panic!("not audio")
        };
        assert_eq!((a.sample_rate, a.channels), (48000, 2));
        assert_eq!(info.streams[1].language.as_deref(), Some("eng"));
    }
}
