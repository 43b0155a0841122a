//! Planning decisions, driven round by round the way the host drives them.

use super::*;

/// 14 s of espeak-ng speech as ffmpeg 5.1 measured it: -20.3 LUFS, -1.6 dBTP.
fn speech() -> Loudness {
    Loudness::new(-20.3, -1.6, 1.2)
}

fn wav_input() -> MediaInfo {
    MediaInfo::new(&["wav"])
        .with_duration(14.4)
        .with_stream(StreamInfo::new_audio(0, "pcm_s16le", 22_050, 1).with_sample_format("s16"))
}

/// Round 1's request with the defaults the host fills in.
fn request(input: MediaInfo) -> PlanRequest {
    PlanRequest::new(1)
        .with_input("main", input)
        .with_param("target", "custom")
        .with_param("target_lufs", -16.0)
        .with_param("true_peak_db", -1.5)
        .with_param("codec", "auto")
        .with_param("lower_only", false)
        .with_param("mode", "correct")
}

fn finish(decision: &Decision) -> &Finish {
    decision.as_finish().expect("a finished plan")
}

fn report_f64(finish: &Finish, name: &str) -> f64 {
    finish
        .report_value(name)
        .and_then(Value::as_f64)
        .unwrap_or_else(|| panic!("report has no number '{name}'"))
}

/// A model of the limited chain: gain, then a limiter that pins peaks to its limit and costs
/// loudness growing with the square of the gain above its onset at first, and linearly with
/// half of it later (close to speech measured on ffmpeg 5.1: 0.9 LU at +4.3 dB, 1.8 at +6.3).
fn model_limiter(input: &Loudness, step: &Step) -> Loudness {
    let gain: f64 = step
        .find_filter("volume")
        .unwrap()
        .arg_value("volume")
        .unwrap()
        .as_str()
        .unwrap()
        .trim_end_matches("dB")
        .parse()
        .unwrap();
    let limit = step
        .find_filter("alimiter")
        .unwrap()
        .arg_value("limit")
        .unwrap()
        .as_f64()
        .unwrap();
    let limit_db = 20.0 * limit.log10();
    let above = (input.true_peak_dbtp + gain - limit_db).max(0.0);
    let loss = 0.5 * above * above / (above + 4.0);
    let integrated = input.integrated_lufs + gain - loss;
    Loudness::new(
        (integrated * 10.0).round() / 10.0,
        limit_db.min(input.true_peak_dbtp + gain),
        input.lra_lu,
    )
}

/// Plans rounds like the host: runs the analyses (input from `input`, passes through
/// `measure_pass`) until the preset finishes or refuses. Returns the outcome and the rounds used.
fn drive(
    mut request: PlanRequest,
    input: Loudness,
    mut measure_pass: impl FnMut(&Step) -> Loudness,
) -> (Result<Decision, Refusal>, u32) {
    loop {
        assert!(request.round <= 8, "the host stops after 8 rounds");
        let decision = LoudnessNormalize::plan(&request);
        let Ok(Decision::Next(work)) = &decision else {
            return (decision, request.round);
        };
        for step in &work.steps {
            let output = &step.outputs[0];
            let info = MediaInfo::new(&[output.container().unwrap()])
                .with_stream(StreamInfo::new_audio(0, "pcm_f32le", 22_050, 1));
            request = request.with_intermediate(output.name.clone(), info);
        }
        for analysis in &work.analyses {
            let value = match &analysis.source {
                MediaRef::Input(_) => input,
                MediaRef::Produced(name) => {
                    let step = work
                        .steps
                        .iter()
                        .find(|s| s.outputs[0].name == *name)
                        .expect("measured pass was produced");
                    measure_pass(step)
                }
            };
            request = request.with_analysis(analysis.id.clone(), value);
        }
        request.round += 1;
    }
}

#[test]
fn describe_matches_the_manifest_and_declares_the_params() {
    let d = LoudnessNormalize::describe();
    assert_eq!(
        (d.name.as_str(), d.version.as_str()),
        ("loudness-normalize", "1.2.0")
    );
    // build.sh names the dist file from [package.metadata.preset]: it must say the same.
    let manifest = include_str!("../Cargo.toml");
    let table = &manifest[manifest.find("[package.metadata.preset]").unwrap()..];
    assert!(table.contains("name = \"loudness-normalize\"\n"), "{table}");
    assert!(table.contains("version = \"1.2.0\"\n"), "{table}");
    assert_eq!(d.inputs.len(), 1);
    assert!(d.inputs[0].required);
    let names: Vec<_> = d.params.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "target",
            "target_lufs",
            "true_peak_db",
            "lra",
            "codec",
            "lower_only",
            "mode",
            "stream"
        ]
    );
    assert!(d.params.iter().all(|p| !p.required));
    assert!(matches!(
        d.param_spec("lra").unwrap().kind,
        ParamKind::Number(NumberSpec {
            default: None,
            min: Some(1.0),
            max: Some(50.0)
        })
    ));
}

#[test]
fn round_one_measures_the_best_audio_stream() {
    let input = MediaInfo::new(&["matroska", "webm"])
        .with_stream(StreamInfo::new_audio(0, "aac", 48_000, 2))
        .with_stream(StreamInfo::new_audio(1, "aac", 48_000, 6).with_default());
    let decision = LoudnessNormalize::plan(&request(input)).unwrap();
    let work = decision.as_next().expect("more work");
    assert!(work.steps.is_empty());
    assert_eq!(
        work.analyses,
        [AnalysisRequest::loudness(
            "input",
            MediaRef::input("main"),
            1
        )]
    );
}

#[test]
fn no_audio_is_refused() {
    let mut video = StreamInfo::new_audio(0, "h264", 0, 0);
    video.kind = StreamKind::Video;
    video.detail = StreamDetail::Other;
    let refusal =
        LoudnessNormalize::plan(&request(MediaInfo::new(&["mp4"]).with_stream(video))).unwrap_err();
    assert_eq!(
        refusal,
        refuse("NO_AUDIO", "input 'main' has no audio stream")
    );
}

#[test]
fn silence_is_refused() {
    let (outcome, _) = drive(
        request(wav_input()),
        Loudness::new(-70.5, -60.0, 0.0),
        |_| unreachable!(),
    );
    assert_eq!(outcome.unwrap_err().code, "SILENT_INPUT");
}

#[test]
fn quiet_input_with_headroom_gets_one_linear_gain() {
    // -40 LUFS speech (-21.3 dBTP) to -23: +17 dB puts the peak at -4.3 dBTP.
    let (outcome, rounds) = drive(
        request(wav_input()).with_param("target_lufs", -23.0),
        Loudness::new(-40.0, -21.3, 1.2),
        |_| unreachable!("no limiter pass"),
    );
    assert_eq!(rounds, 2);
    let decision = outcome.unwrap();
    let finish = finish(&decision);
    let step = &finish.steps[0];
    assert_eq!(
        step.find_filter("volume").unwrap().arg_value("volume"),
        Some(&Value::from("17.00dB"))
    );
    assert!(step.find_filter("alimiter").is_none());
    let output = step.find_output("main").unwrap();
    assert_eq!(
        (
            output.container().unwrap(),
            output.encoder().unwrap().codec.as_str()
        ),
        ("wav", "pcm_s16le")
    );
    assert_eq!(output.streams[0].source, Pad::link("normalized"));
    assert_eq!(finish.report_value("limited"), Some(&Value::Boolean(false)));
    assert_eq!(report_f64(finish, "gain_db"), 17.0);
    assert_eq!(report_f64(finish, "input_integrated_lufs"), -40.0);
    assert_eq!(report_f64(finish, "true_peak_ceiling_db"), -1.5);
}

#[test]
fn hot_clipped_input_is_turned_down_linearly() {
    let (outcome, _) = drive(
        request(wav_input()),
        Loudness::new(-8.2, 3.0, 0.9),
        |_| unreachable!(),
    );
    let decision = outcome.unwrap();
    let volume = finish(&decision).steps[0]
        .find_filter("volume")
        .unwrap()
        .arg_value("volume")
        .cloned();
    assert_eq!(volume, Some(Value::from("-7.80dB")));
}

#[test]
fn peaks_over_the_ceiling_start_a_limited_pass() {
    let request = request(wav_input()).with_analysis("input", speech());
    let mut request = request;
    request.round = 2;
    let decision = LoudnessNormalize::plan(&request).unwrap();
    let work = decision.as_next().expect("a limiter pass");
    assert_eq!(
        work.analyses,
        [AnalysisRequest::loudness(
            "pass1",
            MediaRef::produced("pass1"),
            0
        )]
    );
    let step = &work.steps[0];
    let filters: Vec<_> = step.graph.iter().map(|n| n.filter.as_str()).collect();
    assert_eq!(filters, ["volume", "aresample", "alimiter", "aresample"]);
    assert_eq!(
        step.graph[0].arg_value("volume"),
        Some(&Value::from("4.30dB"))
    );
    assert_eq!(
        step.graph[1].arg_value("sample_rate"),
        Some(&Value::from(88_200))
    );
    let limiter = &step.graph[2];
    assert_eq!(limiter.arg_value("level"), Some(&Value::Boolean(false)));
    // Lossless output: limit 0.1 dB under the -1.5 dBTP ceiling.
    assert_eq!(limiter.arg_value("limit"), Some(&Value::Number(0.83176)));
    assert_eq!(
        step.graph[3].arg_value("sample_rate"),
        Some(&Value::from(22_050))
    );
    let output = step.find_output("pass1").unwrap();
    assert_eq!(
        (
            output.container().unwrap(),
            output.encoder().unwrap().codec.as_str()
        ),
        ("wav", "pcm_f32le")
    );
}

#[test]
fn a_pass_on_target_is_encoded_to_the_final_format() {
    let (outcome, rounds) = drive(
        request(wav_input()).with_param("codec", "mp3"),
        speech(),
        |_| Loudness::new(-16.1, -2.6, 1.0),
    );
    assert_eq!(rounds, 3);
    let decision = outcome.unwrap();
    let finish = finish(&decision);
    let step = &finish.steps[0];
    assert_eq!(step.inputs, [StepInput::new(MediaRef::produced("pass1"))]);
    assert!(step.graph.is_empty());
    let output = step.find_output("main").unwrap();
    assert_eq!(output.container(), Some("mp3"));
    assert_eq!(output.encoder().unwrap().bit_rate, Some(320_000));
    assert_eq!(finish.report_value("limited"), Some(&Value::Boolean(true)));
    assert_eq!(finish.report_value("passes"), Some(&Value::from(1)));
    assert_eq!(report_f64(finish, "output_integrated_lufs"), -16.1);
}

#[test]
fn lossy_output_limits_a_decibel_lower() {
    let request = request(wav_input())
        .with_param("codec", "aac")
        .with_analysis("input", speech());
    let mut request = request;
    request.round = 2;
    let decision = LoudnessNormalize::plan(&request).unwrap();
    let limiter = decision.as_next().unwrap().steps[0]
        .find_filter("alimiter")
        .unwrap()
        .clone();
    assert_eq!(limiter.arg_value("limit"), Some(&Value::Number(0.74989))); // -2.5 dBTP
}

#[test]
fn lossy_headroom_decides_between_linear_and_limited() {
    // +4 dB puts the peak at -2.0 dBTP: fine for WAV (-1.6 allowed), too hot for MP3 (-2.5).
    let input = Loudness::new(-20.0, -6.0, 3.0);
    let (wav, _) = drive(
        request(wav_input()).with_param("codec", "wav"),
        input,
        |_| unreachable!(),
    );
    assert!(wav.unwrap().as_finish().is_some());
    let (mp3, _) = drive(
        request(wav_input()).with_param("codec", "mp3"),
        input,
        |_| Loudness::new(-16.0, -2.6, 3.0),
    );
    assert_eq!(
        mp3.unwrap().as_finish().unwrap().report_value("limited"),
        Some(&Value::Boolean(true))
    );
}

#[test]
fn limited_passes_converge_on_the_target() {
    for target in [-16.0, -14.0, -12.0] {
        let mut measured = Vec::new();
        let (outcome, rounds) = drive(
            request(wav_input()).with_param("target_lufs", target),
            speech(),
            |step| {
                let m = model_limiter(&speech(), step);
                measured.push(m.integrated_lufs);
                m
            },
        );
        let decision = outcome.unwrap_or_else(|r| panic!("{target}: {r}"));
        let finish = finish(&decision);
        assert!(
            (report_f64(finish, "output_integrated_lufs") - target).abs() <= 0.2,
            "{target}: {measured:?}"
        );
        assert!(
            rounds <= 5,
            "{target}: {rounds} rounds, passes measured {measured:?}"
        );
        assert!(
            report_f64(finish, "gain_db") > target - speech().integrated_lufs,
            "the limiter's loss is made up"
        );
    }
}

#[test]
fn a_true_peak_overshoot_lowers_the_limit() {
    let mut limits = Vec::new();
    let (outcome, _) = drive(request(wav_input()), speech(), |step| {
        let limit = step
            .find_filter("alimiter")
            .unwrap()
            .arg_value("limit")
            .unwrap()
            .as_f64()
            .unwrap();
        limits.push(20.0 * limit.log10());
        // First pass overshoots the ceiling by 0.3 dB; later ones hold.
        if limits.len() == 1 {
            Loudness::new(-16.0, -1.2, 1.0)
        } else {
            Loudness::new(-16.1, -1.6, 1.0)
        }
    });
    assert!(outcome.unwrap().as_finish().is_some());
    assert_eq!(limits.len(), 2);
    assert!((limits[0] - limits[1] - 0.4).abs() < 0.01, "{limits:?}");
}

#[test]
fn five_misses_deliver_the_closest_pass_within_half_a_lu() {
    let mut n = 0;
    let (outcome, rounds) = drive(request(wav_input()), speech(), |_| {
        n += 1;
        // Stubborn material: the gain does not move the loudness.
        Loudness::new(if n == 3 { -16.4 } else { -16.8 }, -1.6, 1.0)
    });
    assert_eq!(rounds, 7);
    let decision = outcome.unwrap();
    let finish = finish(&decision);
    assert_eq!(finish.report_value("passes"), Some(&Value::from(3)));
    assert_eq!(
        finish.steps[0].inputs[0].source,
        MediaRef::produced("pass3")
    );
}

#[test]
fn five_misses_beyond_half_a_lu_are_refused_with_the_figures() {
    let (outcome, _) = drive(request(wav_input()), speech(), |_| {
        Loudness::new(-17.5, -1.6, 1.0)
    });
    let refusal = outcome.unwrap_err();
    assert_eq!(refusal.code, "TARGET_UNREACHABLE");
    assert!(
        refusal.message.contains("-17.50 LUFS"),
        "{}",
        refusal.message
    );
    assert!(
        refusal.message.contains("5 limiter passes"),
        "{}",
        refusal.message
    );
}

#[test]
fn a_wide_loudness_range_is_compressed_before_the_gain() {
    // LRA 18 LU against a 6 LU limit: ratio 3, threshold at -20 LUFS = 0.1 linear.
    let input = Loudness::new(-20.0, -12.0, 18.0);
    let mut request = request(wav_input())
        .with_param("lra", 6.0)
        .with_analysis("input", input);
    request.round = 2;
    let decision = LoudnessNormalize::plan(&request).unwrap();
    let step = &decision
        .as_next()
        .expect("compression needs a measured pass")
        .steps[0];
    let compressor = &step.graph[0];
    assert_eq!(compressor.filter, "acompressor");
    assert_eq!(compressor.arg_value("ratio"), Some(&Value::Number(3.0)));
    assert_eq!(compressor.arg_value("threshold"), Some(&Value::Number(0.1)));
    assert_eq!(step.graph[1].filter, "volume");

    // A range already within the limit needs no compressor, and gain alone does it.
    let (outcome, _) = drive(
        self::request(wav_input()).with_param("lra", 20.0),
        input,
        |_| unreachable!(),
    );
    assert!(
        outcome.unwrap().as_finish().unwrap().steps[0]
            .find_filter("acompressor")
            .is_none()
    );
}

#[test]
fn compressor_ratio_is_capped_at_four() {
    let input = Loudness::new(-30.0, -20.0, 40.0);
    let mut request = request(wav_input())
        .with_param("lra", 5.0)
        .with_analysis("input", input);
    request.round = 2;
    let decision = LoudnessNormalize::plan(&request).unwrap();
    let compressor = decision.as_next().unwrap().steps[0]
        .find_filter("acompressor")
        .cloned()
        .unwrap();
    assert_eq!(compressor.arg_value("ratio"), Some(&Value::Number(4.0)));
}

#[test]
fn names_and_labels_fit_the_contract() {
    let valid_name = |s: &str| {
        let b = s.as_bytes();
        (1..=32).contains(&b.len())
            && (b[0].is_ascii_lowercase() || b[0].is_ascii_digit())
            && b.iter()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'_' || *c == b'-')
    };
    let valid_label = |s: &str| {
        (1..=32).contains(&s.len()) && s.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_')
    };
    let input = Loudness::new(-20.0, -1.0, 18.0);
    let mut steps = Vec::new();
    let (outcome, _) = drive(request(wav_input()).with_param("lra", 6.0), input, |step| {
        steps.push(step.clone());
        model_limiter(&input, step)
    });
    steps.extend(outcome.unwrap().as_finish().unwrap().steps.clone());
    for step in &steps {
        assert!(valid_name(&step.name), "{}", step.name);
        for output in &step.outputs {
            assert!(valid_name(&output.name), "{}", output.name);
        }
        for node in &step.graph {
            assert!(node.outputs.iter().all(|l| valid_label(l)), "{node:?}");
        }
    }
}

/// The preset against real ffmpeg: renders each planned pass's chain with `-af`, measures with
/// `ebur128`, and feeds the figures back, for quiet, typical and hot speech at three targets.
/// Needs ffmpeg and espeak-ng on PATH: `cargo test -- --ignored --nocapture`.
#[test]
#[ignore = "needs ffmpeg and espeak-ng"]
fn real_ffmpeg_reaches_the_target() {
    use std::process::Command;

    let dir = std::env::temp_dir().join(format!("loudness-normalize-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = |name: &str| dir.join(name).to_string_lossy().into_owned();
    let run = |args: &[&str]| {
        let out = Command::new(args[0])
            .args(&args[1..])
            .output()
            .expect("run tool");
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let measure = |file: &str| {
        let log = run(&[
            "ffmpeg",
            "-hide_banner",
            "-nostats",
            "-i",
            file,
            "-af",
            "ebur128=peak=true",
            "-f",
            "null",
            "-",
        ]);
        let summary = &log[log.rfind("Summary:").expect("ebur128 summary")..];
        let field = |key: &str| -> f64 {
            let line = summary
                .lines()
                .find(|l| l.trim_start().starts_with(key))
                .expect(key);
            line.split_whitespace().nth(1).unwrap().parse().unwrap()
        };
        Loudness::new(field("I:"), field("Peak:"), field("LRA:"))
    };
    let render = |step: &Step, input: &str, out: &str| {
        let chain: Vec<String> = step
            .graph
            .iter()
            .map(|node| {
                let args: Vec<String> = node
                    .args
                    .iter()
                    .map(|a| {
                        let v = match &a.value {
                            Value::Number(n) => n.to_string(),
                            Value::Integer(i) => i.to_string(),
                            Value::Boolean(b) => u8::from(*b).to_string(),
                            Value::Text(t) => t.clone(),
                        };
                        format!("{}={v}", a.name)
                    })
                    .collect();
                format!("{}={}", node.filter, args.join(":"))
            })
            .collect();
        run(&[
            "ffmpeg",
            "-hide_banner",
            "-loglevel",
            "error",
            "-y",
            "-i",
            input,
            "-af",
            &chain.join(","),
            "-c:a",
            "pcm_f32le",
            out,
        ]);
    };

    let speech = path("speech.wav");
    run(&[
        "espeak-ng",
        "-w",
        &speech,
        "The quick brown fox jumps over the lazy dog. Loudness normalization measures the whole \
         programme, then applies gain. A limiter catches the peaks that gain would push over the \
         ceiling. Speech has a high peak to loudness ratio, so this is a fair test of the chain.",
    ]);
    for (name, gain) in [("quiet", "-19.7dB"), ("typical", "0dB"), ("hot", "15dB")] {
        run(&[
            "ffmpeg",
            "-hide_banner",
            "-loglevel",
            "error",
            "-y",
            "-i",
            &speech,
            "-af",
            &format!("volume={gain}"),
            "-c:a",
            "pcm_s16le",
            &path(&format!("{name}.wav")),
        ]);
    }

    let mut failures = Vec::new();
    for name in ["quiet", "typical", "hot"] {
        let file = path(&format!("{name}.wav"));
        let input = measure(&file);
        for target in [-23.0, -16.0, -14.0] {
            let base = request(wav_input()).with_param("target_lufs", target);
            let mut passes = 0;
            let (outcome, rounds) = drive(base, input, |step| {
                passes += 1;
                let out = path(&format!("{name}{target}-{}", step.outputs[0].name)) + ".wav";
                render(step, &file, &out);
                measure(&out)
            });
            let decision = outcome.unwrap_or_else(|r| panic!("{name} at {target}: {r}"));
            let finish = finish(&decision);
            let (integrated, peak) =
                if finish.report_value("limited") == Some(&Value::Boolean(true)) {
                    (
                        report_f64(finish, "output_integrated_lufs"),
                        report_f64(finish, "output_true_peak_dbtp"),
                    )
                } else {
                    let out = path(&format!("{name}{target}-linear.wav"));
                    render(&finish.steps[0], &file, &out);
                    let m = measure(&out);
                    (m.integrated_lufs, m.true_peak_dbtp)
                };
            eprintln!(
                "{name:8} ({:6.1} LUFS {:5.1} dBTP) -> {target}: {integrated:6.1} LUFS {peak:5.1} dBTP, gain {:+.2} dB, {passes} limiter passes, {rounds} rounds",
                input.integrated_lufs,
                input.true_peak_dbtp,
                report_f64(finish, "gain_db")
            );
            if (integrated - target).abs() > 0.2 || peak > -1.5 {
                failures.push(format!(
                    "{name} at {target}: {integrated} LUFS, {peak} dBTP"
                ));
            }
        }
    }
    std::fs::remove_dir_all(&dir).ok();
    assert!(failures.is_empty(), "{failures:?}");
}

// ---- 1.1.0 --------------------------------------------------------------------------------

#[test]
fn named_targets_override_target_lufs() {
    for (name, lufs) in [
        ("ebu-r128", -23.0),
        ("atsc-a85", -24.0),
        ("podcast", -16.0),
        ("streaming", -14.0),
        ("custom", -30.0),
    ] {
        let (outcome, _) = drive(
            request(wav_input())
                .with_param("target", name)
                .with_param("target_lufs", -30.0),
            Loudness::new(-40.0, -35.0, 1.2),
            |_| unreachable!("no limiter pass"),
        );
        let decision = outcome.unwrap();
        let finish = finish(&decision);
        assert_eq!(report_f64(finish, "target_lufs"), lufs, "{name}");
        assert_eq!(report_f64(finish, "gain_db"), lufs + 40.0, "{name}");
        assert_eq!(finish.report_value("target"), Some(&Value::from(name)));
    }
}

#[test]
fn lower_only_keeps_a_quiet_input_at_gain_zero() {
    let (outcome, rounds) = drive(
        request(wav_input())
            .with_param("target", "podcast")
            .with_param("lower_only", true),
        Loudness::new(-40.0, -21.3, 1.2),
        |_| unreachable!("no limiter pass"),
    );
    assert_eq!(rounds, 2);
    let decision = outcome.unwrap();
    let finish = finish(&decision);
    assert_eq!(report_f64(finish, "gain_db"), 0.0);
    assert_eq!(report_f64(finish, "effective_target_lufs"), -40.0);
    assert_eq!(report_f64(finish, "target_lufs"), -16.0);
    assert_eq!(
        finish.steps[0]
            .find_filter("volume")
            .unwrap()
            .arg_value("volume"),
        Some(&Value::from("0.00dB"))
    );
}

#[test]
fn lower_only_still_turns_a_loud_input_down() {
    let (outcome, _) = drive(
        request(wav_input())
            .with_param("target_lufs", -23.0)
            .with_param("lower_only", true),
        Loudness::new(-12.0, -0.5, 3.0),
        |_| unreachable!("no limiter pass"),
    );
    let decision = outcome.unwrap();
    assert_eq!(report_f64(finish(&decision), "gain_db"), -11.0);
}

#[test]
fn lower_only_limits_peaks_over_the_ceiling_at_the_input_loudness() {
    // -30 LUFS with a 0 dBTP spike: quieter than -16, but over the -1.5 ceiling.
    let input = Loudness::new(-30.0, 0.0, 3.0);
    let (outcome, _) = drive(
        request(wav_input()).with_param("lower_only", true),
        input,
        |step| model_limiter(&input, step),
    );
    let decision = outcome.unwrap();
    let finish = finish(&decision);
    assert_eq!(finish.report_value("limited"), Some(&Value::Boolean(true)));
    assert!((report_f64(finish, "output_integrated_lufs") - -30.0).abs() <= 0.2);
    assert!(report_f64(finish, "output_true_peak_dbtp") <= -1.5);
}

#[test]
fn measure_mode_reports_and_writes_nothing() {
    let (outcome, rounds) = drive(
        request(wav_input())
            .with_param("mode", "measure")
            .with_param("target", "ebu-r128"),
        speech(),
        |_| unreachable!("no pass"),
    );
    assert_eq!(rounds, 2);
    let decision = outcome.unwrap();
    let finish = finish(&decision);
    assert!(finish.steps.is_empty(), "measure mode writes no audio");
    assert_eq!(report_f64(finish, "input_integrated_lufs"), -20.3);
    assert_eq!(report_f64(finish, "input_true_peak_dbtp"), -1.6);
    assert_eq!(report_f64(finish, "gain_db"), -2.7);
    assert_eq!(finish.report_value("mode"), Some(&Value::from("measure")));
    assert_eq!(
        finish.report_value("would_limit"),
        Some(&Value::Boolean(false))
    );
}

/// A film: video, English AAC, German AAC (the one to normalize), subtitles, a data stream.
fn film(formats: &[&str]) -> MediaInfo {
    let mut video = StreamInfo::new_audio(0, "h264", 0, 0);
    video.kind = StreamKind::Video;
    video.detail = StreamDetail::Other;
    let mut subtitles = StreamInfo::new_audio(3, "subrip", 0, 0);
    subtitles.kind = StreamKind::Subtitle;
    subtitles.detail = StreamDetail::Other;
    let mut data = StreamInfo::new_audio(4, "bin_data", 0, 0);
    data.kind = StreamKind::Data;
    data.detail = StreamDetail::Other;
    MediaInfo::new(formats)
        .with_stream(video)
        .with_stream(StreamInfo::new_audio(1, "aac", 48_000, 2).with_default())
        .with_stream(StreamInfo::new_audio(2, "aac", 48_000, 2))
        .with_stream(subtitles)
        .with_stream(data)
}

/// (source, copied) of each output stream.
fn output_streams(step: &Step) -> Vec<(Pad, bool)> {
    step.outputs[0]
        .streams
        .iter()
        .map(|s| (s.source.clone(), s.codec == Codec::Copy))
        .collect()
}

#[test]
fn a_chosen_stream_is_normalized_and_the_others_kept() {
    let (outcome, _) = drive(
        request(film(&["matroska", "webm"])).with_param("stream", 2),
        Loudness::new(-30.0, -22.0, 3.0),
        |_| unreachable!("no limiter pass"),
    );
    let decision = outcome.unwrap();
    let finish = finish(&decision);
    let step = &finish.steps[0];
    assert_eq!(
        step.find_filter("volume").unwrap().inputs,
        [Pad::stream(0, 2)]
    );
    assert_eq!(step.outputs[0].container(), Some("mkv"));
    assert_eq!(
        output_streams(step),
        [
            (Pad::stream(0, 0), true),
            (Pad::stream(0, 1), true),
            (Pad::link("normalized"), false),
            (Pad::stream(0, 3), true),
        ]
    );
    assert_eq!(
        finish.report_value("kept_streams"),
        Some(&Value::from("0,1,3"))
    );
    assert_eq!(finish.report_value("codec"), Some(&Value::from("aac")));
}

#[test]
fn an_mp4_stays_mp4_when_its_audio_stays_aac() {
    let formats = ["mov", "mp4", "m4a", "3gp", "3g2", "mj2"];
    let (outcome, _) = drive(
        request(film(&formats)).with_param("stream", 1),
        Loudness::new(-30.0, -22.0, 3.0),
        |_| unreachable!("no limiter pass"),
    );
    let decision = outcome.unwrap();
    let step = &finish(&decision).steps[0];
    assert_eq!(step.outputs[0].container(), Some("mp4"));
    // subrip does not go into MP4.
    assert_eq!(step.outputs[0].streams.len(), 3);

    let (outcome, _) = drive(
        request(film(&formats))
            .with_param("stream", 1)
            .with_param("codec", "flac"),
        Loudness::new(-30.0, -22.0, 3.0),
        |_| unreachable!("no limiter pass"),
    );
    let decision = outcome.unwrap();
    assert_eq!(
        finish(&decision).steps[0].outputs[0].container(),
        Some("mkv")
    );
}

#[test]
fn a_limited_chosen_stream_is_encoded_beside_copies_from_main() {
    let input = Loudness::new(-20.0, -1.0, 3.0);
    let (outcome, _) = drive(
        request(film(&["matroska", "webm"])).with_param("stream", 2),
        input,
        |step| {
            assert_eq!(
                step.find_filter("volume").unwrap().inputs,
                [Pad::stream(0, 2)]
            );
            model_limiter(&input, step)
        },
    );
    let decision = outcome.unwrap();
    let step = &finish(&decision).steps[0];
    assert_eq!(step.inputs.len(), 2);
    assert_eq!(step.inputs[1].source, MediaRef::input("main"));
    assert_eq!(
        output_streams(step),
        [
            (Pad::stream(1, 0), true),
            (Pad::stream(1, 1), true),
            (Pad::stream(0, 0), false),
            (Pad::stream(1, 3), true),
        ]
    );
}

#[test]
fn a_missing_or_non_audio_stream_is_refused() {
    let refusal =
        LoudnessNormalize::plan(&request(film(&["matroska"])).with_param("stream", 9)).unwrap_err();
    assert_eq!(refusal.code, "STREAM_NOT_FOUND");
    assert!(refusal.message.contains("1, 2"), "{}", refusal.message);
    let refusal =
        LoudnessNormalize::plan(&request(film(&["matroska"])).with_param("stream", 0)).unwrap_err();
    assert_eq!(refusal.code, "NOT_AUDIO");
}
