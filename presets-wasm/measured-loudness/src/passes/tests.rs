//! The pass loop driven round by round against a model of the limiter.

use super::*;

fn source() -> Source {
    Source {
        media: MediaRef::produced("clean"),
        stream: 0,
        sample_rate: 22_050,
        loudness: Loudness::new(-20.3, -1.6, 1.2),
    }
}

fn target(target_lufs: f64) -> Target {
    Target {
        target_lufs,
        ceiling_db: -1.5,
        headroom_db: 0.1,
    }
}

fn gain_and_limit(step: &Step) -> (f64, f64) {
    let gain: f64 = step
        .find_filter("volume")
        .and_then(|f| f.arg_value("volume"))
        .and_then(Value::as_str)
        .and_then(|v| v.trim_end_matches("dB").parse().ok())
        .expect("a volume node");
    let limit = step
        .find_filter("alimiter")
        .and_then(|f| f.arg_value("limit"))
        .and_then(Value::as_f64)
        .expect("an alimiter node");
    (gain, 20.0 * limit.log10())
}

/// Peaks pinned to the limit; loudness lost grows with the square of the gain above the
/// limiter's onset at first, then about linearly (close to speech measured on ffmpeg 5.1).
fn model_limiter(input: &Loudness, step: &Step) -> Loudness {
    let (gain, limit_db) = gain_and_limit(step);
    let above = (input.true_peak_dbtp + gain - limit_db).max(0.0);
    let loss = 0.5 * above * above / (above + 4.0);
    Loudness::new(
        ((input.integrated_lufs + gain - loss) * 10.0).round() / 10.0,
        limit_db.min(input.true_peak_dbtp + gain),
        input.lra_lu,
    )
}

/// Rounds like the host: each pass is produced and measured with `measure` until delivery.
fn drive(
    target: &Target,
    source: &Source,
    measure: impl Fn(&Step) -> Loudness,
) -> (Result<Delivery, Refusal>, u32) {
    let mut request = PlanRequest::new(3);
    let mut passes = 0;
    loop {
        match normalize(&request, target, source) {
            Ok(Progress::Deliver(delivery)) => return (Ok(delivery), passes),
            Err(refusal) => return (Err(refusal), passes),
            Ok(Progress::Next(work)) => {
                passes += 1;
                assert!(passes <= 5, "at most five passes");
                let step = &work.steps[0];
                let name = step.outputs[0].name.clone();
                let info = MediaInfo::new(&["wav"]).with_stream(StreamInfo::new_audio(
                    0,
                    "pcm_f32le",
                    22_050,
                    1,
                ));
                request = request
                    .with_intermediate(name, info)
                    .with_analysis(work.analyses[0].id.clone(), measure(step));
                request.round += 1;
            }
        }
    }
}

#[test]
fn plain_gain_when_the_peak_stays_under_the_ceiling() {
    let (delivery, passes) = drive(&target(-23.0), &source(), |_| unreachable!());
    let delivery = delivery.unwrap();
    assert_eq!(passes, 0);
    assert!((delivery.gain_db() + 2.7).abs() < 1e-9, "{delivery:?}");
    let step = delivery.step("encode", &source(), |pad| {
        Output::new("main", "wav").audio(pad, Encoder::new("pcm_s24le"))
    });
    assert_eq!(step.inputs[0].source, MediaRef::produced("clean"));
    assert_eq!(
        step.find_filter("volume").unwrap().arg_value("volume"),
        Some(&Value::from("-2.70dB"))
    );
}

#[test]
fn limited_passes_land_within_a_fifth_of_a_lu_under_the_ceiling() {
    let input = source().loudness;
    for goal in [-16.0, -14.0, -10.0] {
        let (delivery, passes) = drive(&target(goal), &source(), |s| model_limiter(&input, s));
        let Delivery::Limited { pass, measured, .. } = delivery.unwrap() else {
            panic!("{goal}: expected a limited delivery");
        };
        assert_eq!(pass, passes);
        assert!(
            (measured.integrated_lufs - goal).abs() <= 0.2,
            "{goal}: {measured:?}"
        );
        assert!(measured.true_peak_dbtp <= -1.5, "{goal}: {measured:?}");
    }
}

#[test]
fn pass_steps_oversample_the_limiter_and_write_float_wav() {
    let Ok(Progress::Next(work)) = normalize(&PlanRequest::new(3), &target(-14.0), &source())
    else {
        panic!("expected a first pass");
    };
    let step = &work.steps[0];
    assert_eq!(step.name, "pass1");
    assert_eq!(step.inputs[0].source, MediaRef::produced("clean"));
    let rates: Vec<_> = step
        .graph
        .iter()
        .filter(|n| n.filter == "aresample")
        .map(|n| n.arg_value("sample_rate").and_then(Value::as_i64))
        .collect();
    assert_eq!(rates, [Some(88_200), Some(22_050)]);
    assert_eq!(step.outputs[0].encoder().unwrap().codec, "pcm_f32le");
    assert_eq!(
        work.analyses[0],
        AnalysisRequest::loudness("pass1", MediaRef::produced("pass1"), 0)
    );
}

#[test]
fn a_limiter_that_eats_everything_is_refused_with_the_passes_tried() {
    let input = source().loudness;
    let (result, passes) = drive(&target(-6.0), &source(), |s| {
        let mut l = model_limiter(&input, s);
        l.integrated_lufs = l.integrated_lufs.min(-12.0);
        l
    });
    let refusal = result.unwrap_err();
    assert_eq!(passes, 5);
    assert_eq!(refusal.code, "TARGET_UNREACHABLE");
    assert!(
        refusal.message.contains("5 limiter passes"),
        "{}",
        refusal.message
    );
}

#[test]
fn reports_say_how_the_loudness_was_reached() {
    let delivery = Delivery::Limited {
        pass: 2,
        gain_db: 7.456,
        limit_db: -1.6,
        measured: Loudness::new(-14.05, -1.61, 2.0),
        stream: 0,
    };
    let finish = delivery.report(Finish::new(), &source());
    assert_eq!(finish.report_value("gain_db"), Some(&Value::Number(7.46)));
    assert_eq!(finish.report_value("limited"), Some(&Value::Boolean(true)));
    assert_eq!(finish.report_value("passes"), Some(&Value::Integer(2)));
    assert_eq!(
        finish.report_value("output_integrated_lufs"),
        Some(&Value::Number(-14.05))
    );
    let step = delivery.step("encode", &source(), |pad| {
        Output::new("main", "flac").audio(pad, Encoder::new("flac"))
    });
    assert_eq!(step.inputs[0].source, MediaRef::produced("pass2"));
}
