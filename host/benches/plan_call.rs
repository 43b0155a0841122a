//! Plan-call latency: instantiate a fresh sandboxed instance of a built preset, call `plan`, drop
//! it. Also what loading a component costs: cold (compile + describe) and warm (the compiled
//! artifact from the on-disk cache + describe).
//!
//! Run: `cargo bench -p mediahost --bench plan_call` (presets from `presets-wasm/released`).

use std::path::Path;
use std::time::{Duration, Instant};

use mediahost::model;
use mediahost::preset::registry;
use mediahost::preset::runtime::{CompiledFrom, Lane, Runtime, SandboxLimits};

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn main() {
    let released = Path::new(env!("CARGO_MANIFEST_DIR")).join("../presets-wasm/released");
    let file = released.join("loudness-normalize-1.0.0.wasm");
    let bytes = std::fs::read(&file)
        .unwrap_or_else(|e| panic!("{}: {e}; it is a released artifact", file.display()));
    let runtime = Runtime::new(SandboxLimits::default(), None).expect("engine");

    let mut cold = Vec::new();
    for _ in 0..5 {
        let started = Instant::now();
        let (_, from) = registry::load(&runtime, &bytes).expect("preset loads");
        cold.push(started.elapsed());
        assert_eq!(from, CompiledFrom::Compiled);
    }
    cold.sort();

    let cache = tempfile::tempdir().expect("cache dir");
    let cached =
        Runtime::new(SandboxLimits::default(), Some(cache.path().to_owned())).expect("engine");
    registry::load(&cached, &bytes).expect("preset loads");
    let mut warm = Vec::new();
    for _ in 0..20 {
        let started = Instant::now();
        let (_, from) = registry::load(&cached, &bytes).expect("preset loads");
        warm.push(started.elapsed());
        assert_eq!(from, CompiledFrom::Cache);
    }
    warm.sort();

    let (preset, _) = registry::load(&runtime, &bytes).expect("preset loads");
    let request = model::PlanRequest {
        round: 2,
        inputs: vec![model::NamedMedia {
            source: model::MediaRef::Input("main".into()),
            info: model::MediaInfo {
                container: model::Container {
                    format_names: vec!["wav".into()],
                    duration_s: Some(14.0),
                    size_bytes: 600_000,
                    bit_rate: Some(352_800),
                    tags: vec![],
                },
                streams: vec![model::StreamInfo {
                    index: 0,
                    kind: model::StreamKind::Audio,
                    codec: "pcm_s16le".into(),
                    profile: None,
                    bit_rate: Some(352_800),
                    duration_s: Some(14.0),
                    language: None,
                    disposition: model::Disposition {
                        default: true,
                        forced: false,
                        attached_pic: false,
                        hearing_impaired: false,
                        visual_impaired: false,
                        comment: false,
                        original: false,
                        dub: false,
                    },
                    tags: vec![],
                    detail: model::StreamDetail::Audio(model::AudioInfo {
                        sample_rate: 22050,
                        channels: 1,
                        channel_layout: Some("mono".into()),
                        sample_format: Some("s16".into()),
                        bits_per_sample: Some(16),
                    }),
                }],
            },
        }],
        params: vec![
            model::Param {
                name: "target_lufs".into(),
                value: model::ParamValue::Number(-16.0),
            },
            model::Param {
                name: "true_peak_db".into(),
                value: model::ParamValue::Number(-1.5),
            },
            model::Param {
                name: "codec".into(),
                value: model::ParamValue::Text("auto".into()),
            },
        ],
        produced: vec![],
        analyses: vec![model::AnalysisResult {
            id: "input".into(),
            value: model::AnalysisValue::Loudness(model::Loudness {
                integrated_lufs: -20.3,
                true_peak_dbtp: -1.7,
                lra_lu: 1.3,
                threshold_lufs: -30.6,
            }),
        }],
    };

    for _ in 0..200 {
        let (answer, _) = runtime.plan(Lane::Job, &preset.compiled, &request);
        answer.expect("no fault").expect("no refusal");
    }
    let mut calls = Vec::with_capacity(5000);
    for _ in 0..5000 {
        let started = Instant::now();
        let (answer, _) = runtime.plan(Lane::Job, &preset.compiled, &request);
        calls.push(started.elapsed());
        assert!(matches!(answer, Ok(Ok(_))));
    }
    calls.sort();

    println!("preset: loudness-normalize 1.0.0 ({} bytes)", bytes.len());
    println!(
        "cold load (compile + describe):       p50 {:>9.2?}  max {:>9.2?}  (n={})",
        percentile(&cold, 0.5),
        cold[cold.len() - 1],
        cold.len()
    );
    println!(
        "warm load (cached artifact + describe): p50 {:>9.2?}  max {:>9.2?}  (n={})",
        percentile(&warm, 0.5),
        warm[warm.len() - 1],
        warm.len()
    );
    println!(
        "cold / warm (p50): {:.0}x",
        percentile(&cold, 0.5).as_secs_f64() / percentile(&warm, 0.5).as_secs_f64()
    );
    println!(
        "plan call (fresh instance each time): p50 {:>9.2?}  p99 {:>9.2?}  (n={})",
        percentile(&calls, 0.5),
        percentile(&calls, 0.99),
        calls.len()
    );
}
