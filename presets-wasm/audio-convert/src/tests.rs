use super::*;

fn input(codec: &str, rate: u32, channels: u32) -> MediaInfo {
    MediaInfo::new(&["x"]).with_stream(StreamInfo::new_audio(0, codec, rate, channels))
}

fn request(codec: &str, info: MediaInfo) -> PlanRequest {
    PlanRequest::new(1)
        .with_input("main", info)
        .with_param("codec", codec)
}

/// The single output's encoder and container, and the report.
fn plan(request: PlanRequest) -> Result<(String, Encoder, Finish), Refusal> {
    let decision = AudioConvert::plan(&request)?;
    let finish = decision.as_finish().expect("one round").clone();
    let output = finish.steps[0]
        .find_output("main")
        .expect("output main")
        .clone();
    Ok((
        output.container().unwrap().to_owned(),
        output.encoder().expect("encoded").clone(),
        finish,
    ))
}

#[test]
fn describe_declares_codec_default_and_optional_ranges() {
    let d = AudioConvert::describe();
    assert_eq!(
        (d.name.as_str(), d.version.as_str()),
        ("audio-convert", "1.1.0")
    );
    assert!(
        matches!(&d.param_spec("codec").unwrap().kind, ParamKind::Choice(c) if c.default.as_deref() == Some("flac") && c.options.len() == 5)
    );
    for (name, min, max) in [
        ("bitrate_kbps", 8, 512),
        ("sample_rate", 8000, 192_000),
        ("channels", 1, 8),
    ] {
        let spec = d.param_spec(name).unwrap();
        assert!(!spec.required);
        assert_eq!(
            spec.kind,
            ParamKind::Integer(IntegerSpec {
                min: Some(min),
                max: Some(max),
                default: None
            }),
            "{name}"
        );
    }
}

#[test]
fn each_codec_lands_in_its_container_with_its_encoder() {
    let cases = [
        ("wav", "wav", "pcm_s16le", None),
        ("flac", "flac", "flac", None),
        ("mp3", "mp3", "libmp3lame", Some(192_000)),
        ("aac", "m4a", "aac", Some(192_000)),
        ("opus", "opus", "libopus", Some(128_000)),
    ];
    for (codec, container, encoder, bit_rate) in cases {
        let (c, e, finish) = plan(request(codec, input("pcm_s16le", 48_000, 2))).unwrap();
        assert_eq!(
            (c.as_str(), e.codec.as_str(), e.bit_rate),
            (container, encoder, bit_rate),
            "{codec}"
        );
        assert_eq!(finish.report_value("codec"), Some(&Value::from(codec)));
        assert_eq!(
            finish.report_value("sample_rate"),
            Some(&Value::from(48_000))
        );
        assert_eq!(finish.report_value("channels"), Some(&Value::from(2)));
    }
}

#[test]
fn picks_the_best_audio_stream() {
    let info = MediaInfo::new(&["matroska"])
        .with_stream(StreamInfo::new_audio(1, "aac", 48_000, 2))
        .with_stream(StreamInfo::new_audio(2, "ac3", 48_000, 6));
    let decision = AudioConvert::plan(&request("flac", info)).unwrap();
    let step = &decision.as_finish().unwrap().steps[0];
    assert_eq!(step.outputs[0].streams[0].source, Pad::stream(0, 2));
    assert_eq!(step.inputs, [StepInput::new(MediaRef::input("main"))]);
}

#[test]
fn no_audio_is_refused() {
    let refusal = plan(request("flac", MediaInfo::new(&["mp4"]))).unwrap_err();
    assert_eq!(refusal.code, "NO_AUDIO");
}

#[test]
fn params_set_rate_channels_and_bit_rate() {
    let r = request("mp3", input("flac", 96_000, 2))
        .with_param("sample_rate", 22_050)
        .with_param("channels", 1)
        .with_param("bitrate_kbps", 64);
    let (_, e, finish) = plan(r).unwrap();
    assert_eq!(
        (e.sample_rate, e.channels, e.bit_rate),
        (Some(22_050), Some(1), Some(64_000))
    );
    assert_eq!(finish.report_value("bitrate_kbps"), Some(&Value::from(64)));
}

#[test]
fn lossless_ignores_bit_rate() {
    let (_, e, finish) =
        plan(request("flac", input("flac", 44_100, 2)).with_param("bitrate_kbps", 64)).unwrap();
    assert_eq!(e.bit_rate, None);
    assert_eq!(finish.report_value("bitrate_kbps"), None);
}

#[test]
fn opus_refuses_rates_it_cannot_encode_and_resamples_inputs_to_48k() {
    let refusal = plan(request("opus", input("flac", 48_000, 2)).with_param("sample_rate", 44_100))
        .unwrap_err();
    assert_eq!(refusal.code, "UNSUPPORTED_SAMPLE_RATE");
    assert!(refusal.message.contains("44100"), "{}", refusal.message);
    assert_eq!(
        plan(request("opus", input("flac", 44_100, 2)))
            .unwrap()
            .1
            .sample_rate,
        Some(48_000)
    );
    assert_eq!(
        plan(request("opus", input("flac", 16_000, 1)))
            .unwrap()
            .1
            .sample_rate,
        Some(16_000)
    );
    let ok =
        plan(request("opus", input("flac", 44_100, 2)).with_param("sample_rate", 24_000)).unwrap();
    assert_eq!(ok.1.sample_rate, Some(24_000));
}

#[test]
fn mp3_refuses_surround_and_non_mpeg_rates() {
    let refusal =
        plan(request("mp3", input("flac", 48_000, 2)).with_param("channels", 6)).unwrap_err();
    assert_eq!(refusal.code, "UNSUPPORTED_CHANNELS");
    let refusal = plan(request("mp3", input("flac", 48_000, 2)).with_param("sample_rate", 96_000))
        .unwrap_err();
    assert_eq!(refusal.code, "UNSUPPORTED_SAMPLE_RATE");
    // Unasked, a 5.1 96 kHz input is simply made encodable.
    let (_, e, _) = plan(request("mp3", input("flac", 96_000, 6))).unwrap();
    assert_eq!((e.sample_rate, e.channels), (Some(48_000), Some(2)));
    let (_, e, _) = plan(request("mp3", input("flac", 88_200, 2))).unwrap();
    assert_eq!(e.sample_rate, Some(44_100));
}

#[test]
fn mp3_bit_rate_stops_at_320() {
    let refusal =
        plan(request("mp3", input("flac", 48_000, 2)).with_param("bitrate_kbps", 384)).unwrap_err();
    assert_eq!(refusal.code, "UNSUPPORTED_BITRATE");
    assert!(plan(request("aac", input("flac", 48_000, 2)).with_param("bitrate_kbps", 384)).is_ok());
}

#[test]
fn aac_caps_the_rate_at_96k() {
    let refusal = plan(request("aac", input("flac", 48_000, 2)).with_param("sample_rate", 192_000))
        .unwrap_err();
    assert_eq!(refusal.code, "UNSUPPORTED_SAMPLE_RATE");
    assert_eq!(
        plan(request("aac", input("flac", 192_000, 2)))
            .unwrap()
            .1
            .sample_rate,
        Some(48_000)
    );
    assert_eq!(
        plan(request("wav", input("flac", 192_000, 2)))
            .unwrap()
            .1
            .sample_rate,
        Some(192_000)
    );
}
