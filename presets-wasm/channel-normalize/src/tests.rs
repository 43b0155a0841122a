//! Planning decisions on hand-made ffprobe views.

use super::*;

fn stream(channels: u32, layout: Option<&str>) -> StreamInfo {
    let mut s = StreamInfo::new_audio(0, "pcm_s16le", 48_000, channels).with_sample_format("s16");
    if let StreamDetail::Audio(a) = &mut s.detail {
        a.channel_layout = layout.map(str::to_owned);
    }
    s
}

/// Round 1 with the defaults the host fills in.
fn request(channels: u32, layout: Option<&str>) -> PlanRequest {
    PlanRequest::new(1)
        .with_input(
            "main",
            MediaInfo::new(&["wav"]).with_stream(stream(channels, layout)),
        )
        .with_param("channels", 2)
        .with_param("downmix", "average")
        .with_param("bit_depth", "16")
        .with_param("codec", "wav")
}

fn plan(request: &PlanRequest) -> Finish {
    ChannelNormalize::plan(request)
        .expect("a plan")
        .as_finish()
        .expect("one round")
        .clone()
}

fn pan(finish: &Finish) -> Option<String> {
    finish.steps[0]
        .find_filter("pan")
        .and_then(|n| n.arg_value("args"))
        .and_then(Value::as_str)
        .map(str::to_owned)
}

fn report_text(finish: &Finish, name: &str) -> String {
    finish
        .report_value(name)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("no text '{name}' in the report"))
        .to_owned()
}

#[test]
fn describe_matches_the_manifest() {
    let d = ChannelNormalize::describe();
    let manifest = include_str!("../Cargo.toml");
    assert!(manifest.contains(&format!("name = \"{}\"", d.name)));
    assert!(manifest.contains(&format!("version = \"{}\"", d.version)));
    let names: Vec<_> = d.params.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(
        names,
        ["channels", "downmix", "sample_rate", "bit_depth", "codec"]
    );
}

#[test]
fn mono_to_stereo_duplicates_the_channel() {
    let finish = plan(&request(1, Some("mono")));
    assert_eq!(pan(&finish).as_deref(), Some("stereo|FL=FC|FR=FC"));
    assert_eq!(report_text(&finish, "layout"), "stereo");
    assert!(finish.report_value("downmix").is_none());
    // Without a layout, by position.
    let finish = plan(&request(1, None));
    assert_eq!(pan(&finish).as_deref(), Some("stereo|FL=c0|FR=c0"));
}

#[test]
fn stereo_to_mono_follows_the_downmix_choice() {
    let cases = [
        ("average", "mono|FC=0.5*FL+0.5*FR"),
        ("left", "mono|FC=FL"),
        ("right", "mono|FC=FR"),
    ];
    for (downmix, formula) in cases {
        let finish = plan(
            &request(2, Some("stereo"))
                .with_param("channels", 1)
                .with_param("downmix", downmix),
        );
        assert_eq!(pan(&finish).as_deref(), Some(formula), "{downmix}");
        assert_eq!(report_text(&finish, "pan_formula"), formula);
        assert_eq!(report_text(&finish, "downmix"), downmix);
        assert_eq!(report_text(&finish, "layout"), "mono");
    }
}

#[test]
fn surround_to_stereo_uses_itu_coefficients_for_both_5_1_layouts() {
    let finish = plan(&request(6, Some("5.1")));
    assert_eq!(
        pan(&finish).as_deref(),
        Some("stereo|FL=FL+0.707*FC+0.707*BL|FR=FR+0.707*FC+0.707*BR")
    );
    let finish = plan(&request(6, Some("5.1(side)")));
    assert_eq!(
        pan(&finish).as_deref(),
        Some("stereo|FL=FL+0.707*FC+0.707*SL|FR=FR+0.707*FC+0.707*SR")
    );
    let finish = plan(&request(6, None));
    assert_eq!(
        pan(&finish).as_deref(),
        Some("stereo|FL=c0+0.707*c2+0.707*c4|FR=c1+0.707*c2+0.707*c5")
    );
    // The mix runs in float, before the layout is named.
    let filters: Vec<_> = finish.steps[0]
        .graph
        .iter()
        .map(|n| n.filter.as_str())
        .collect();
    assert_eq!(filters, ["aformat", "pan", "aformat"]);
}

#[test]
fn surround_to_mono_averages_the_itu_stereo_downmix() {
    let finish = plan(&request(6, Some("5.1(side)")).with_param("channels", 1));
    assert_eq!(
        pan(&finish).as_deref(),
        Some("mono|FC=0.5*FL+0.707*FC+0.3535*SL+0.5*FR+0.3535*SR")
    );
    let finish = plan(
        &request(6, Some("5.1"))
            .with_param("channels", 1)
            .with_param("downmix", "left"),
    );
    assert_eq!(
        pan(&finish).as_deref(),
        Some("mono|FC=FL+0.707*FC+0.707*BL")
    );
}

#[test]
fn same_channel_count_has_no_pan_and_other_layouts_use_ffmpeg_default() {
    let finish = plan(&request(2, Some("stereo")));
    assert_eq!(pan(&finish), None);
    assert_eq!(report_text(&finish, "pan_formula"), "none");
    let filters: Vec<_> = finish.steps[0]
        .graph
        .iter()
        .map(|n| n.filter.as_str())
        .collect();
    assert_eq!(filters, ["aformat"]);

    let finish = plan(&request(8, Some("7.1")));
    assert_eq!(pan(&finish), None);
    assert_eq!(
        report_text(&finish, "pan_formula"),
        "ffmpeg default downmix"
    );
}

#[test]
fn sample_rate_and_bit_depth_pick_the_encoder() {
    let finish = plan(&request(2, Some("stereo")).with_param("sample_rate", 44_100));
    let resample = finish.steps[0]
        .find_filter("aresample")
        .expect("a resampler");
    assert_eq!(
        resample.arg_value("sample_rate"),
        Some(&Value::Integer(44_100))
    );
    assert_eq!(
        finish.report_value("sample_rate"),
        Some(&Value::Integer(44_100))
    );
    // The input's own rate needs no resampler.
    let finish = plan(&request(2, Some("stereo")).with_param("sample_rate", 48_000));
    assert!(finish.steps[0].find_filter("aresample").is_none());

    let cases = [
        ("wav", "16", "pcm_s16le", None),
        ("wav", "24", "pcm_s24le", None),
        ("wav", "32f", "pcm_f32le", None),
        ("flac", "16", "flac", Some("s16")),
        ("flac", "24", "flac", Some("s32")),
    ];
    for (codec, depth, encoder, sample_format) in cases {
        let finish = plan(
            &request(2, Some("stereo"))
                .with_param("codec", codec)
                .with_param("bit_depth", depth),
        );
        let output = &finish.steps[0].outputs[0];
        let e = output.encoder().unwrap();
        assert_eq!(output.container(), Some(codec));
        assert_eq!(
            (e.codec.as_str(), e.sample_format.as_deref()),
            (encoder, sample_format),
            "{codec} {depth}"
        );
    }
    let refusal = ChannelNormalize::plan(
        &request(2, Some("stereo"))
            .with_param("codec", "flac")
            .with_param("bit_depth", "32f"),
    )
    .unwrap_err();
    assert_eq!(refusal.code, "UNSUPPORTED_BIT_DEPTH");
}

#[test]
fn no_audio_is_refused() {
    let mut video = StreamInfo::new_audio(0, "h264", 0, 0);
    video.kind = StreamKind::Video;
    video.detail = StreamDetail::Other;
    let request = PlanRequest::new(1)
        .with_input("main", MediaInfo::new(&["mp4"]).with_stream(video))
        .with_param("channels", 2)
        .with_param("downmix", "average")
        .with_param("bit_depth", "16")
        .with_param("codec", "wav");
    assert_eq!(
        ChannelNormalize::plan(&request).unwrap_err().code,
        "NO_AUDIO"
    );
}
