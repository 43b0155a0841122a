//! Which audio stream is normalized, and with `stream` set, which other streams are copied
//! beside it and into what container.

use preset_sdk::{AudioStream, MediaInfo, Refusal, StreamKind, refuse};

use measured_loudness::OutputFormat;

/// Subtitle codecs Matroska carries; others (MP4's mov_text, ...) are left out of an MKV.
const MKV_SUBTITLES: [&str; 7] = [
    "subrip",
    "ass",
    "ssa",
    "webvtt",
    "hdmv_pgs_subtitle",
    "dvd_subtitle",
    "dvb_subtitle",
];

/// The audio stream `index` (which must exist and be audio), or the best audio stream.
pub fn audio_stream(info: &MediaInfo, index: Option<i64>) -> Result<AudioStream<'_>, Refusal> {
    let Some(index) = index else {
        return info
            .best_audio()
            .ok_or_else(|| refuse("NO_AUDIO", "input 'main' has no audio stream"));
    };
    let audio: Vec<String> = info
        .audio_streams()
        .map(|a| a.index().to_string())
        .collect();
    let audio = if audio.is_empty() {
        "none".to_owned()
    } else {
        audio.join(", ")
    };
    let stream = u32::try_from(index)
        .ok()
        .and_then(|i| info.stream(i))
        .ok_or_else(|| {
            refuse(
                "STREAM_NOT_FOUND",
                format!("input 'main' has no stream {index}; its audio streams are {audio}"),
            )
        })?;
    info.audio_streams()
        .find(|a| a.index() == stream.index)
        .ok_or_else(|| {
            refuse(
                "NOT_AUDIO",
                format!(
                    "stream {index} of input 'main' is not audio ({}); its audio streams are {audio}",
                    stream.codec
                ),
            )
        })
}

/// The output when other streams are kept: container and the input streams in it, in order.
#[derive(Clone, Debug, PartialEq)]
pub struct Kept {
    pub container: &'static str,
    /// Absolute indexes of the input streams written, the normalized one among them.
    pub order: Vec<u32>,
}

impl Kept {
    /// MP4-family inputs stay MP4 (M4A without video) when the normalized audio is AAC;
    /// everything else goes to Matroska, which takes any audio codec the preset writes.
    /// Audio, video and subtitle streams are kept; data and attachments are not.
    pub fn choose(info: &MediaInfo, normalized: u32, format: &OutputFormat) -> Kept {
        let mp4 = ["mov", "mp4", "m4a"].iter().any(|f| info.has_format(f));
        let has_video = info.streams.iter().any(|s| s.kind == StreamKind::Video);
        let container = match (mp4 && format.encoder.codec == "aac", has_video) {
            (true, true) => "mp4",
            (true, false) => "m4a",
            (false, _) => "mkv",
        };
        let order = info
            .streams
            .iter()
            .filter(|s| {
                s.index == normalized
                    || match s.kind {
                        StreamKind::Audio | StreamKind::Video => true,
                        StreamKind::Subtitle => match container {
                            "mkv" => MKV_SUBTITLES.contains(&s.codec.as_str()),
                            _ => s.codec == "mov_text",
                        },
                        _ => false,
                    }
            })
            .map(|s| s.index)
            .collect();
        Kept { container, order }
    }

    /// "0,2": the copied streams' indexes.
    pub fn copied_list(&self, normalized: u32) -> String {
        let copied: Vec<String> = self
            .order
            .iter()
            .filter(|&&i| i != normalized)
            .map(u32::to_string)
            .collect();
        copied.join(",")
    }
}
