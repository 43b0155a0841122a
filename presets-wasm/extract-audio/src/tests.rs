//! Planning decisions on hand-made ffprobe views.

use super::*;

fn video(index: u32) -> StreamInfo {
    let mut s = StreamInfo::new_audio(index, "h264", 0, 0);
    s.kind = StreamKind::Video;
    s.detail = StreamDetail::Other;
    s
}

fn audio(index: u32, codec: &str, language: Option<&str>) -> StreamInfo {
    let mut s = StreamInfo::new_audio(index, codec, 48_000, 2).with_sample_format("fltp");
    s.language = language.map(str::to_owned);
    s
}

/// A film: video, English AAC, German AC-3 5.1 (default), English commentary in Opus.
fn film() -> MediaInfo {
    let mut ac3 = audio(2, "ac3", Some("ger")).with_default();
    if let StreamDetail::Audio(a) = &mut ac3.detail {
        a.channels = 6;
        a.channel_layout = Some("5.1(side)".into());
    }
    MediaInfo::new(&["matroska", "webm"])
        .with_stream(video(0))
        .with_stream(audio(1, "aac", Some("eng")))
        .with_stream(ac3)
        .with_stream(audio(3, "opus", Some("eng")))
}

fn request(info: MediaInfo) -> PlanRequest {
    PlanRequest::new(1)
        .with_input("main", info)
        .with_param("codec", "auto")
}

fn plan(request: &PlanRequest) -> Finish {
    ExtractAudio::plan(request)
        .expect("a plan")
        .as_finish()
        .expect("one round")
        .clone()
}

/// (stream index, container, copied) of a finished plan.
fn outcome(finish: &Finish) -> (u32, String, bool) {
    let output = &finish.steps[0].outputs[0];
    let Pad::Stream(source) = &output.streams[0].source else {
        panic!("the output reads an input stream directly");
    };
    (
        source.stream,
        output.container().unwrap().to_owned(),
        output.streams[0].codec == Codec::Copy,
    )
}

#[test]
fn describe_matches_the_manifest() {
    let d = ExtractAudio::describe();
    let manifest = include_str!("../Cargo.toml");
    assert!(manifest.contains(&format!("name = \"{}\"", d.name)));
    assert!(manifest.contains(&format!("version = \"{}\"", d.version)));
    let names: Vec<_> = d.params.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["stream", "language", "codec"]);
    assert!(d.params.iter().all(|p| !p.required));
}

#[test]
fn default_is_the_best_audio_stream_copied() {
    let finish = plan(&request(film()));
    assert_eq!(outcome(&finish), (2, "mkv".into(), true));
    assert_eq!(finish.report_value("copied"), Some(&Value::Boolean(true)));
    assert_eq!(finish.report_value("codec"), Some(&Value::from("ac3")));
    assert_eq!(finish.report_value("stream"), Some(&Value::Integer(2)));
}

#[test]
fn stream_index_wins_over_language() {
    let finish = plan(
        &request(film())
            .with_param("stream", 3)
            .with_param("language", "deu"),
    );
    assert_eq!(outcome(&finish), (3, "opus".into(), true));
}

#[test]
fn language_matches_any_iso_639_form() {
    for code in ["de", "ger", "deu", "DEU"] {
        let finish = plan(&request(film()).with_param("language", code));
        assert_eq!(outcome(&finish).0, 2, "{code}");
    }
    // Two English streams: the better one (more channels, then the lower index).
    let finish = plan(&request(film()).with_param("language", "en"));
    assert_eq!(outcome(&finish), (1, "m4a".into(), true));
}

#[test]
fn refusals_name_what_is_there() {
    let refusal = |r: PlanRequest| ExtractAudio::plan(&r).unwrap_err();

    let r = refusal(request(film()).with_param("stream", 7));
    assert_eq!(r.code, "STREAM_NOT_FOUND");
    assert!(r.message.contains("1 audio (aac, eng)"), "{}", r.message);

    let r = refusal(request(film()).with_param("stream", 0));
    assert_eq!(r.code, "NOT_AUDIO");
    assert!(r.message.contains("video (h264)"), "{}", r.message);

    let r = refusal(request(film()).with_param("language", "fra"));
    assert_eq!(r.code, "LANGUAGE_NOT_FOUND");
    assert!(r.message.contains("2: ger"), "{}", r.message);

    let r = refusal(request(film()).with_param("language", "english"));
    assert_eq!(r.code, "LANGUAGE_INVALID");

    let r = refusal(request(MediaInfo::new(&["mp4"]).with_stream(video(0))));
    assert_eq!(r.code, "NO_AUDIO");
    let r = refusal(
        request(MediaInfo::new(&["mp4"]).with_stream(video(0))).with_param("language", "en"),
    );
    assert_eq!(r.code, "NO_AUDIO");
}

#[test]
fn auto_picks_a_container_for_each_codec() {
    let cases = [
        ("aac", "m4a"),
        ("mp3", "mp3"),
        ("opus", "opus"),
        ("flac", "flac"),
        ("vorbis", "ogg"),
        ("pcm_s16le", "wav"),
        ("pcm_s24le", "wav"),
        ("pcm_s16be", "mkv"),
        ("ac3", "mkv"),
        ("eac3", "mkv"),
        ("dts", "mkv"),
    ];
    for (codec, container) in cases {
        let info = MediaInfo::new(&["x"]).with_stream(audio(0, codec, None));
        assert_eq!(
            outcome(&plan(&request(info))),
            (0, container.into(), true),
            "{codec}"
        );
    }
}

#[test]
fn an_explicit_codec_copies_when_the_stream_already_has_it() {
    let finish = plan(
        &request(film())
            .with_param("stream", 1)
            .with_param("codec", "aac"),
    );
    assert_eq!(outcome(&finish), (1, "m4a".into(), true));

    let finish = plan(
        &request(film())
            .with_param("stream", 1)
            .with_param("codec", "flac"),
    );
    assert_eq!(outcome(&finish), (1, "flac".into(), false));
    assert_eq!(finish.report_value("codec"), Some(&Value::from("flac")));
    assert_eq!(finish.report_value("copied"), Some(&Value::Boolean(false)));
    let encoder = finish.steps[0].outputs[0].encoder().unwrap();
    assert_eq!(
        (encoder.codec.as_str(), encoder.sample_format.as_deref()),
        ("flac", None)
    );

    let wav = MediaInfo::new(&["wav"]).with_stream(audio(0, "pcm_s16le", None));
    let finish = plan(&request(wav).with_param("codec", "wav"));
    assert_eq!(outcome(&finish), (0, "wav".into(), true));
}

#[test]
fn re_encodes_fit_the_encoder() {
    // 5.1(side) AC-3 to MP3: stereo; to Opus: stereo too (libopus wants Vorbis order).
    let finish = plan(&request(film()).with_param("codec", "mp3"));
    let encoder = finish.steps[0].outputs[0].encoder().unwrap().clone();
    assert_eq!(
        (encoder.codec.as_str(), encoder.channels),
        ("libmp3lame", Some(2))
    );
    let finish = plan(&request(film()).with_param("codec", "opus"));
    let encoder = finish.steps[0].outputs[0].encoder().unwrap().clone();
    assert_eq!(
        (
            encoder.codec.as_str(),
            encoder.channels,
            encoder.sample_rate
        ),
        ("libopus", Some(2), Some(48_000))
    );
    assert_eq!(finish.report_value("codec"), Some(&Value::from("opus")));
}
