//! Planning decisions, round by round, the way the host drives them.

use super::*;

fn voice() -> MediaInfo {
    MediaInfo::new(&["wav"])
        .with_duration(9.5)
        .with_stream(StreamInfo::new_audio(0, "pcm_s16le", 22_050, 1))
}

fn music() -> MediaInfo {
    MediaInfo::new(&["wav"])
        .with_duration(12.0)
        .with_stream(StreamInfo::new_audio(0, "pcm_s16le", 44_100, 2))
}

fn float_stereo() -> MediaInfo {
    MediaInfo::new(&["wav"]).with_stream(StreamInfo::new_audio(0, "pcm_f32le", 48_000, 2))
}

/// Round 1's request with the defaults the host fills in, overridden by `params`.
fn request(params: &[(&str, f64)]) -> PlanRequest {
    let mut request = PlanRequest::new(1)
        .with_input("voice", voice())
        .with_input("music", music())
        .with_param("codec", "wav");
    let defaults = [
        ("music_db", -12.0),
        ("duck_db", 12.0),
        ("attack_ms", 20.0),
        ("release_ms", 400.0),
        ("fade_in_s", 1.0),
        ("fade_out_s", 2.0),
        ("tail_s", 2.0),
        ("target_lufs", -16.0),
        ("true_peak_db", -1.5),
    ];
    for (name, value) in defaults {
        let value = params
            .iter()
            .find(|(n, _)| *n == name)
            .map_or(value, |(_, v)| *v);
        request = request.with_param(name, value);
    }
    request
}

/// Round 2's request: both conformed and measured.
fn conformed(request: PlanRequest) -> PlanRequest {
    let mut request = request
        .with_intermediate("voice-stereo", float_stereo())
        .with_intermediate("music-stereo", float_stereo())
        .with_analysis("voice", Loudness::new(-17.0, -2.0, 4.0))
        .with_analysis("music", Loudness::new(-25.0, -9.0, 2.0));
    request.round = 2;
    request
}

fn next(decision: &Result<Decision, Refusal>) -> &RoundWork {
    decision
        .as_ref()
        .expect("a plan")
        .as_next()
        .expect("more work")
}

fn node<'a>(step: &'a Step, filter: &str) -> &'a FilterNode {
    step.find_filter(filter)
        .unwrap_or_else(|| panic!("no {filter} in {step:?}"))
}

fn arg(step: &Step, filter: &str, name: &str) -> Value {
    node(step, filter).arg_value(name).cloned().unwrap()
}

#[test]
fn describe_declares_two_required_inputs() {
    let d = VoiceMusicMix::describe();
    assert_eq!(
        (d.name.as_str(), d.version.as_str()),
        ("voice-music-mix", "1.1.0")
    );
    let inputs: Vec<_> = d
        .inputs
        .iter()
        .map(|i| (i.name.as_str(), i.required))
        .collect();
    assert_eq!(inputs, [("voice", true), ("music", true)]);
    let names: Vec<_> = d.params.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "music_db",
            "duck_db",
            "attack_ms",
            "release_ms",
            "fade_in_s",
            "fade_out_s",
            "tail_s",
            "target_lufs",
            "true_peak_db",
            "codec"
        ]
    );
}

#[test]
fn round_one_conforms_both_inputs_to_stereo_at_the_output_length_and_measures_them() {
    let decision = VoiceMusicMix::plan(&request(&[]));
    let work = next(&decision);
    let [voice, music] = &work.steps[..] else {
        panic!("two conform steps: {work:?}");
    };
    assert_eq!(voice.inputs[0].source, MediaRef::input("voice"));
    // 22.05 kHz speech mixes at 48 kHz; mono is duplicated to both sides.
    assert_eq!(arg(voice, "aresample", "sample_rate"), Value::from(48_000));
    assert_eq!(arg(voice, "pan", "args"), Value::from("stereo|c0=c0|c1=c0"));
    assert!(music.find_filter("pan").is_none(), "stereo music is kept");
    assert_eq!(arg(music, "apad", "whole_dur"), Value::from(11.5));
    assert_eq!(arg(music, "atrim", "duration"), Value::from(11.5));
    let ids: Vec<_> = work.analyses.iter().map(|a| a.id.as_str()).collect();
    assert_eq!(ids, ["voice", "music"]);
    assert_eq!(work.analyses[1].source, MediaRef::produced("music-stereo"));
}

#[test]
fn round_two_balances_ducks_fades_and_mixes() {
    let decision = VoiceMusicMix::plan(&conformed(request(&[])));
    let work = next(&decision);
    let step = &work.steps[0];
    // (voice -17) - (music -25) + music_db -12 = -4 dB on the music.
    assert_eq!(arg(step, "volume", "volume"), Value::from("-4.00dB"));
    let duck = node(step, "sidechaincompress");
    assert_eq!(duck.inputs, [Pad::link("mgain"), Pad::link("key")]);
    assert_eq!(node(step, "asplit").outputs, ["vmix", "vkey"]);
    // The key is the voice brought to -20 LUFS: 3 dB down.
    assert_eq!(duck.arg_value("level_sc"), Some(&Value::from(0.7079)));
    assert_eq!(duck.arg_value("ratio"), Some(&Value::from(20.0)));
    assert_eq!(duck.arg_value("attack"), Some(&Value::from(20.0)));
    assert_eq!(duck.arg_value("release"), Some(&Value::from(400.0)));
    let fades: Vec<_> = step
        .graph
        .iter()
        .filter(|n| n.filter == "afade")
        .map(|n| {
            (
                n.arg_value("type").cloned(),
                n.arg_value("start_time").cloned(),
            )
        })
        .collect();
    assert_eq!(
        fades,
        [
            (Some(Value::from("in")), Some(Value::from(0.0))),
            (Some(Value::from("out")), Some(Value::from(9.5))),
        ]
    );
    assert_eq!(arg(step, "amix", "normalize"), Value::from(false));
    assert_eq!(
        node(step, "amix").inputs,
        [Pad::link("vpad"), Pad::link("bed")]
    );
    assert_eq!(arg(step, "atrim", "duration"), Value::from(11.5));
    assert_eq!(step.outputs[0].name, "mix");
    assert_eq!(
        work.analyses,
        [AnalysisRequest::loudness(
            "mix",
            MediaRef::produced("mix"),
            0
        )]
    );
}

#[test]
fn the_wet_share_turns_the_compressor_into_the_asked_depth() {
    for duck_db in [3.0, 12.0, 30.0] {
        let request = request(&[("duck_db", duck_db)]);
        let settings = Settings::read(&request).unwrap();
        let duck = settings.ducking(-23.0).unwrap();
        let own_gain = db_to_linear(-DUCK_THRESHOLD_BELOW_DB * (1.0 - 1.0 / DUCK_RATIO));
        let factor = (1.0 - duck.mix) + duck.mix * own_gain;
        assert!(
            (20.0 * factor.log10() + duck_db).abs() < 0.01,
            "{duck_db}: mix {}",
            duck.mix
        );
        assert_eq!(duck.level_sc, 1.4125, "a -23 LUFS voice is keyed 3 dB up");
    }
}

#[test]
fn no_ducking_means_no_split_and_no_compressor() {
    let decision =
        VoiceMusicMix::plan(&conformed(request(&[("duck_db", 0.0), ("fade_in_s", 0.0)])));
    let step = &next(&decision).steps[0];
    let filters: Vec<_> = step.graph.iter().map(|n| n.filter.as_str()).collect();
    assert_eq!(filters, ["volume", "afade", "apad", "amix", "atrim"]);
}

#[test]
fn the_measured_mix_is_normalized_and_encoded_in_stereo() {
    let mut request = conformed(request(&[("target_lufs", -23.0)]))
        .with_intermediate("mix", float_stereo())
        .with_analysis("mix", Loudness::new(-15.0, -6.0, 3.0));
    request.round = 3;
    let decision = VoiceMusicMix::plan(&request).unwrap();
    let finish = decision.as_finish().expect("finished with plain gain");
    let step = &finish.steps[0];
    assert_eq!(step.inputs[0].source, MediaRef::produced("mix"));
    assert_eq!(arg(step, "volume", "volume"), Value::from("-8.00dB"));
    assert_eq!(step.outputs[0].container(), Some("wav"));
    assert_eq!(
        finish.report_value("music_gain_db"),
        Some(&Value::Number(-4.0))
    );
    assert_eq!(
        finish.report_value("duration_s"),
        Some(&Value::Number(11.5))
    );
    assert_eq!(
        finish.report_value("duck_ratio"),
        Some(&Value::Number(20.0))
    );

    // A hot mix for a loud target needs a limiter pass on the mix.
    let mut request = conformed(self::request(&[("target_lufs", -10.0)]))
        .with_intermediate("mix", float_stereo())
        .with_analysis("mix", Loudness::new(-15.0, -6.0, 3.0));
    request.round = 3;
    let decision = VoiceMusicMix::plan(&request);
    let work = next(&decision);
    assert_eq!(work.steps[0].name, "pass1");
    assert_eq!(work.steps[0].inputs[0].source, MediaRef::produced("mix"));
}

#[test]
fn a_silent_music_bed_is_refused() {
    let mut request = conformed(request(&[]));
    request.analyses.retain(|a| a.id != "music");
    let request = request.with_analysis("music", Loudness::new(-120.7, -90.0, 0.0));
    let refusal = VoiceMusicMix::plan(&request).unwrap_err();
    assert_eq!(refusal.code, "SILENT_INPUT");
    assert!(refusal.message.contains("'music'"), "{}", refusal.message);
}
