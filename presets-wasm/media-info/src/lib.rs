//! media-info: what a file is, for a pipeline that records metadata the way a media library
//! does. No media out: the report and a JSON document (`info`) carry the container (format,
//! duration, size, bit rate, tags), every video stream (codec and profile, coded and displayed
//! size, rotation, frame rate, bit rate, pixel format, colour, field order, tags) and every
//! audio stream (codec and profile, sample rate, channels and layout, bit rate, language,
//! tags), as ffprobe saw them. Nothing runs but the host's probe.

use preset_sdk::*;
use video_source::{Json, Source, rational_text};

struct MediaInfoPreset;

impl Preset for MediaInfoPreset {
    fn describe() -> Descriptor {
        Descriptor::new(
            env!("CARGO_PKG_NAME"),
            env!("CARGO_PKG_VERSION"),
            "Describes a media file (container, video and audio streams, colour, rotation, tags) in the report and a JSON document; writes no media.",
        )
        .input("main", "Any audio or video file.")
    }

    fn plan(request: &PlanRequest) -> Result<Decision, Refusal> {
        let info = request.input("main")?;
        let video: Vec<Json> = info
            .streams
            .iter()
            .filter_map(|s| Some(video_stream(s, s.video()?)))
            .collect();
        let audio: Vec<Json> = info
            .audio_streams()
            .map(|a| audio_stream(a.stream, a.audio))
            .collect();
        let container = &info.container;
        let document = Json::object([
            (
                "container",
                Json::object([
                    ("format", Json::from(container.format_names.join(","))),
                    ("duration_s", Json::or_null(container.duration_s)),
                    ("size_bytes", container.size_bytes.into()),
                    ("bit_rate", Json::or_null(container.bit_rate)),
                    ("tags", tags(&container.tags)),
                ]),
            ),
            ("video", Json::Array(video)),
            ("audio", Json::Array(audio)),
        ]);

        let mut finish = Finish::new()
            .document(Document::json("info", document.text()))
            .report("format", container.format_names.join(","))
            .report("size_bytes", container.size_bytes as i64);
        if let Some(d) = container.duration_s {
            finish = finish.report("duration_s", video_source::round_to(d, 3));
        }
        if let Ok(source) = Source::of(request, "main") {
            let display = source.display();
            finish = finish
                .report("width", display.width)
                .report("height", display.height)
                .report("video_codec", source.stream.codec.as_str());
            if let Some(r) = source.frame_rate() {
                finish = finish.report("frame_rate", rational_text(r));
            }
        }
        if let Some(audio) = info.best_audio() {
            finish = finish
                .report("audio_codec", audio.codec())
                .report("channels", audio.channels());
        }
        Ok(finish.into())
    }
}

fn tags(tags: &[Tag]) -> Json {
    Json::object(tags.iter().map(|t| (t.key.clone(), Json::from(&t.value))))
}

fn video_stream(stream: &StreamInfo, video: &VideoInfo) -> Json {
    let rotation = video.rotation_degrees.rem_euclid(360);
    let (display_width, display_height) = if rotation % 180 == 90 {
        (video.height, video.width)
    } else {
        (video.width, video.height)
    };
    let color = &video.color;
    Json::object([
        ("index", Json::from(stream.index)),
        ("codec", (&stream.codec).into()),
        ("profile", Json::or_null(stream.profile.as_deref())),
        ("width", video.width.into()),
        ("height", video.height.into()),
        ("display_width", display_width.into()),
        ("display_height", display_height.into()),
        ("rotation", rotation.into()),
        (
            "frame_rate",
            Json::or_null(video.frame_rate.map(rational_text)),
        ),
        (
            "average_frame_rate",
            Json::or_null(video.average_frame_rate.map(rational_text)),
        ),
        ("bit_rate", Json::or_null(stream.bit_rate)),
        ("duration_s", Json::or_null(stream.duration_s)),
        ("pixel_format", Json::or_null(video.pixel_format.as_deref())),
        (
            "sample_aspect_ratio",
            Json::or_null(video.sample_aspect_ratio.map(rational_text)),
        ),
        ("color_range", Json::or_null(color.range.as_deref())),
        ("color_space", Json::or_null(color.space.as_deref())),
        ("color_transfer", Json::or_null(color.transfer.as_deref())),
        ("color_primaries", Json::or_null(color.primaries.as_deref())),
        ("field_order", Json::or_null(video.field_order.as_deref())),
        ("attached_picture", stream.disposition.attached_pic.into()),
        ("tags", tags(&stream.tags)),
    ])
}

fn audio_stream(stream: &StreamInfo, audio: &AudioInfo) -> Json {
    Json::object([
        ("index", Json::from(stream.index)),
        ("codec", (&stream.codec).into()),
        ("profile", Json::or_null(stream.profile.as_deref())),
        ("sample_rate", audio.sample_rate.into()),
        ("channels", audio.channels.into()),
        (
            "channel_layout",
            Json::or_null(audio.channel_layout.as_deref()),
        ),
        (
            "sample_format",
            Json::or_null(audio.sample_format.as_deref()),
        ),
        ("bit_rate", Json::or_null(stream.bit_rate)),
        ("duration_s", Json::or_null(stream.duration_s)),
        ("language", Json::or_null(stream.language.as_deref())),
        ("default", stream.disposition.default.into()),
        ("tags", tags(&stream.tags)),
    ])
}

export_preset!(MediaInfoPreset);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_phone_video_is_described_upright_with_its_audio() {
        let mut video = StreamInfo::new_video(0, "h264", 1920, 1080);
        video.profile = Some("High".into());
        if let StreamDetail::Video(v) = &mut video.detail {
            v.rotation_degrees = -90;
            v.color.primaries = Some("bt709".into());
        }
        let mut audio = StreamInfo::new_audio(1, "aac", 48_000, 2);
        audio.language = Some("eng".into());
        let mut info = MediaInfo::new(&["mov", "mp4"])
            .with_stream(video)
            .with_stream(audio)
            .with_duration(12.5);
        info.container.tags.push(Tag {
            key: "title".into(),
            value: "A \"quoted\" title".into(),
        });
        let request = PlanRequest::new(1).with_input("main", info);
        let decision = MediaInfoPreset::plan(&request).unwrap();
        let finish = decision.as_finish().unwrap();
        assert!(finish.steps.is_empty(), "no media out");
        let body = &finish.documents[0].body;
        assert!(
            body.contains(r#""tags":{"title":"A \"quoted\" title"}"#),
            "{body}"
        );
        assert!(body.contains(r#""display_width":1080,"display_height":1920,"rotation":270"#));
        assert!(body.contains(r#""color_primaries":"bt709""#));
        assert!(body.contains(r#""language":"eng""#));
        assert_eq!(finish.report_value("width"), Some(&Value::Integer(1080)));
        assert_eq!(
            finish.report_value("duration_s"),
            Some(&Value::Number(12.5))
        );
        assert_eq!(
            finish.report_value("audio_codec").and_then(Value::as_str),
            Some("aac")
        );
    }

    #[test]
    fn describe_names_the_crate() {
        let d = MediaInfoPreset::describe();
        assert_eq!(
            (d.name.as_str(), d.version.as_str()),
            ("media-info", "1.0.0")
        );
    }
}
