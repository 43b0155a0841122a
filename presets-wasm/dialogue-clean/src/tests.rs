//! Planning decisions, round by round, the way the host drives them.

use super::*;

fn wav(channels: u32) -> MediaInfo {
    MediaInfo::new(&["wav"])
        .with_duration(14.4)
        .with_stream(StreamInfo::new_audio(0, "pcm_s16le", 22_050, channels))
}

/// Round 1's request with the defaults the host fills in, overridden by `params`.
fn request(channels: u32, params: &[(&str, ParamValue)]) -> PlanRequest {
    let mut request = PlanRequest::new(1).with_input("main", wav(channels));
    let defaults: [(&str, ParamValue); 7] = [
        ("highpass_hz", 80.0.into()),
        ("denoise", "medium".into()),
        ("compression", "gentle".into()),
        ("target_lufs", (-16.0).into()),
        ("true_peak_db", (-1.5).into()),
        ("channels", "mono".into()),
        ("codec", "wav".into()),
    ];
    for (name, value) in defaults {
        let value = params
            .iter()
            .find(|(n, _)| *n == name)
            .map_or(value, |(_, v)| v.clone());
        request = request.with_param(name, value);
    }
    request
}

fn next(decision: &Result<Decision, Refusal>) -> &RoundWork {
    decision
        .as_ref()
        .expect("a plan")
        .as_next()
        .expect("more work")
}

fn filters(step: &Step) -> Vec<&str> {
    step.graph.iter().map(|n| n.filter.as_str()).collect()
}

/// The request for round 3: the input measured at `input`, the clean-up measured at `clean`.
fn measured(request: PlanRequest, input: Loudness, clean: Loudness) -> PlanRequest {
    let mut request = request
        .with_analysis("input", input)
        .with_intermediate(
            "clean",
            MediaInfo::new(&["wav"]).with_stream(StreamInfo::new_audio(0, "pcm_f32le", 22_050, 1)),
        )
        .with_analysis("clean", clean);
    request.round = 3;
    request
}

#[test]
fn describe_declares_the_speech_params() {
    let d = DialogueClean::describe();
    assert_eq!(
        (d.name.as_str(), d.version.as_str()),
        ("dialogue-clean", "1.1.0")
    );
    let names: Vec<_> = d.params.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "highpass_hz",
            "denoise",
            "compression",
            "target_lufs",
            "true_peak_db",
            "channels",
            "codec"
        ]
    );
    assert!(matches!(
        d.param_spec("target_lufs").unwrap().kind,
        ParamKind::Number(NumberSpec {
            min: Some(-40.0),
            max: Some(-10.0),
            default: Some(-16.0)
        })
    ));
    assert!(d.params.iter().all(|p| !p.required));
}

#[test]
fn round_one_measures_the_input() {
    let decision = DialogueClean::plan(&request(1, &[]));
    let work = next(&decision);
    assert!(work.steps.is_empty());
    assert_eq!(
        work.analyses,
        [AnalysisRequest::loudness(
            "input",
            MediaRef::input("main"),
            0
        )]
    );
}

#[test]
fn round_two_cleans_stereo_into_mono_at_the_working_level() {
    let mut request = request(2, &[]).with_analysis("input", Loudness::new(-40.0, -20.0, 3.0));
    request.round = 2;
    let decision = DialogueClean::plan(&request);
    let work = next(&decision);
    let step = &work.steps[0];
    assert_eq!(
        filters(step),
        ["pan", "volume", "highpass", "afftdn", "acompressor"]
    );
    let arg = |filter: &str, name: &str| step.find_filter(filter).unwrap().arg_value(name).cloned();
    assert_eq!(
        arg("pan", "args"),
        Some(Value::from("mono|c0=0.5*c0+0.5*c1"))
    );
    assert_eq!(arg("volume", "volume"), Some(Value::from("20.00dB")));
    assert_eq!(arg("highpass", "frequency"), Some(Value::from(80.0)));
    assert_eq!(arg("afftdn", "nr"), Some(Value::from(12.0)));
    assert_eq!(arg("acompressor", "ratio"), Some(Value::from(2.0)));
    assert_eq!(step.outputs[0].name, "clean");
    assert_eq!(step.outputs[0].encoder().unwrap().codec, "pcm_f32le");
    assert_eq!(
        work.analyses,
        [AnalysisRequest::loudness(
            "clean",
            MediaRef::produced("clean"),
            0
        )]
    );
}

#[test]
fn stereo_from_mono_duplicates_and_off_leaves_out_the_nodes() {
    let mut request = request(
        1,
        &[
            ("channels", "stereo".into()),
            ("denoise", "off".into()),
            ("compression", "off".into()),
            ("highpass_hz", 120.0.into()),
        ],
    )
    .with_analysis("input", Loudness::new(-8.0, 0.5, 3.0));
    request.round = 2;
    let decision = DialogueClean::plan(&request);
    let step = &next(&decision).steps[0];
    assert_eq!(filters(step), ["pan", "volume", "highpass"]);
    assert_eq!(
        step.find_filter("pan").unwrap().arg_value("args"),
        Some(&Value::from("stereo|c0=c0|c1=c0"))
    );
    assert_eq!(
        step.find_filter("volume").unwrap().arg_value("volume"),
        Some(&Value::from("-12.00dB"))
    );
}

#[test]
fn channel_mix_averages_any_count_and_keeps_what_is_already_right() {
    assert_eq!(channel_mix(1, false), None);
    assert_eq!(channel_mix(2, true), None);
    let six = channel_mix(6, false).unwrap();
    assert_eq!(
        six.arg_value("args"),
        Some(&Value::from(
            "mono|c0=0.166667*c0+0.166667*c1+0.166667*c2+0.166667*c3+0.166667*c4+0.166667*c5"
        ))
    );
    assert_eq!(channel_mix(6, true).unwrap().filter, "aformat");
    assert_eq!(channel_mix(12, false).unwrap().filter, "aformat");
}

#[test]
fn cleaned_audio_with_room_under_the_ceiling_gets_plain_gain() {
    let request = measured(
        request(
            1,
            &[("codec", "flac".into()), ("target_lufs", (-23.0).into())],
        ),
        Loudness::new(-30.0, -10.0, 5.0),
        Loudness::new(-21.0, -6.0, 3.0),
    );
    let decision = DialogueClean::plan(&request).unwrap();
    let finish = decision.as_finish().expect("finished");
    let step = &finish.steps[0];
    assert_eq!(step.inputs[0].source, MediaRef::produced("clean"));
    assert_eq!(
        step.find_filter("volume").unwrap().arg_value("volume"),
        Some(&Value::from("-2.00dB"))
    );
    assert_eq!(step.outputs[0].container(), Some("flac"));
    assert_eq!(finish.report_value("limited"), Some(&Value::Boolean(false)));
    assert_eq!(
        finish.report_value("working_gain_db"),
        Some(&Value::Number(10.0))
    );
    assert_eq!(finish.report_value("channels"), Some(&Value::Integer(1)));
}

#[test]
fn a_hot_peak_goes_through_measured_limiter_passes() {
    let mut request = measured(
        request(
            1,
            &[("target_lufs", (-14.0).into()), ("codec", "mp3".into())],
        ),
        Loudness::new(-8.0, 0.6, 5.0),
        Loudness::new(-22.0, -4.0, 3.0),
    );
    // Pass 1 lands 0.6 LU short (the limiter ate loudness), pass 2 lands.
    let results = [
        Loudness::new(-14.6, -2.5, 3.0),
        Loudness::new(-14.1, -2.5, 3.0),
    ];
    for (i, result) in results.iter().enumerate() {
        let decision = DialogueClean::plan(&request);
        let work = next(&decision);
        let name = format!("pass{}", i + 1);
        assert_eq!(work.steps[0].name, name);
        assert_eq!(work.steps[0].inputs[0].source, MediaRef::produced("clean"));
        request = request
            .with_intermediate(
                name.clone(),
                MediaInfo::new(&["wav"]).with_stream(StreamInfo::new_audio(
                    0,
                    "pcm_f32le",
                    22_050,
                    1,
                )),
            )
            .with_analysis(name, *result);
        request.round += 1;
    }
    let decision = DialogueClean::plan(&request).unwrap();
    let finish = decision.as_finish().expect("finished after two passes");
    assert_eq!(
        finish.steps[0].inputs[0].source,
        MediaRef::produced("pass2")
    );
    assert_eq!(finish.steps[0].outputs[0].container(), Some("mp3"));
    assert_eq!(finish.report_value("passes"), Some(&Value::Integer(2)));
    assert_eq!(
        finish.report_value("output_integrated_lufs"),
        Some(&Value::Number(-14.1))
    );
}

#[test]
fn silence_is_refused() {
    let mut request = request(1, &[]).with_analysis("input", Loudness::new(-120.7, -90.0, 0.0));
    request.round = 2;
    assert_eq!(
        DialogueClean::plan(&request).unwrap_err().code,
        "SILENT_INPUT"
    );
}
