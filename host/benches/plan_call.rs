//! Plan-call latency: instantiate a fresh sandboxed instance of a built preset, call `plan`, drop
//! it. Also the one-off cost of compiling the component.
//!
//! Run: `cargo bench -p mediahost --bench plan_call` (after `presets-wasm/build.sh`).

use std::path::Path;
use std::time::{Duration, Instant};

use mediahost::preset::registry::Registry;
use mediahost::preset::runtime::{Runtime, SandboxLimits};
use mediahost::preset::wit;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn main() {
    let dist = Path::new(env!("CARGO_MANIFEST_DIR")).join("../presets-wasm/dist");
    let file = dist.join("loudness-normalize-1.0.0.wasm");
    let bytes = std::fs::read(&file)
        .unwrap_or_else(|e| panic!("{}: {e}; run presets-wasm/build.sh first", file.display()));
    let runtime = Runtime::new(SandboxLimits::default()).expect("engine");

    let mut compile = Vec::new();
    for _ in 0..5 {
        let started = Instant::now();
        let registry = Registry::default();
        registry.add(&runtime, &bytes).expect("preset loads");
        compile.push(started.elapsed());
    }
    compile.sort();

    let registry = Registry::default();
    let preset = registry.add(&runtime, &bytes).expect("preset loads");
    let request = wit::PlanRequest {
        round: 2,
        inputs: vec![wit::NamedMedia {
            source: wit::MediaRef::Input("main".into()),
            info: wit::MediaInfo {
                container: wit::Container {
                    format_names: vec!["wav".into()],
                    duration_s: Some(14.0),
                    size_bytes: 600_000,
                    bit_rate: Some(352_800),
                    tags: vec![],
                },
                streams: vec![wit::StreamInfo {
                    index: 0,
                    kind: wit::StreamKind::Audio,
                    codec: "pcm_s16le".into(),
                    profile: None,
                    bit_rate: Some(352_800),
                    duration_s: Some(14.0),
                    language: None,
                    disposition: wit::Disposition {
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
                    detail: wit::StreamDetail::Audio(wit::AudioInfo {
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
            wit::Param {
                name: "target_lufs".into(),
                value: wit::ParamValue::Number(-16.0),
            },
            wit::Param {
                name: "true_peak_db".into(),
                value: wit::ParamValue::Number(-1.5),
            },
            wit::Param {
                name: "codec".into(),
                value: wit::ParamValue::Text("auto".into()),
            },
        ],
        produced: vec![],
        analyses: vec![wit::AnalysisResult {
            id: "input".into(),
            value: wit::AnalysisValue::Loudness(wit::Loudness {
                integrated_lufs: -20.3,
                true_peak_dbtp: -1.7,
                lra_lu: 1.3,
                threshold_lufs: -30.6,
            }),
        }],
    };

    for _ in 0..200 {
        let (answer, _) = runtime.plan(&preset.compiled, &request);
        answer.expect("no fault").expect("no refusal");
    }
    let mut calls = Vec::with_capacity(5000);
    for _ in 0..5000 {
        let started = Instant::now();
        let (answer, _) = runtime.plan(&preset.compiled, &request);
        calls.push(started.elapsed());
        assert!(matches!(answer, Ok(Ok(_))));
    }
    calls.sort();

    println!("preset: loudness-normalize 1.0.0 ({} bytes)", bytes.len());
    println!(
        "compile + describe (cold load):      p50 {:>9.2?}  max {:>9.2?}  (n=5)",
        percentile(&compile, 0.5),
        compile[compile.len() - 1]
    );
    println!(
        "plan call (fresh instance each time): p50 {:>9.2?}  p99 {:>9.2?}  (n={})",
        percentile(&calls, 0.5),
        percentile(&calls, 0.99),
        calls.len()
    );
}
