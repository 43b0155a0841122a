//! Our loudness-normalize against ffmpeg's single-pass `loudnorm` on the same corpus: quiet,
//! typical and hot (clipped) speech, targets -23, -16 and -14 LUFS, ceiling -1.5 dBTP. Both
//! outputs are measured with `ebur128`. Prints the README's comparison table; asserts only our
//! side (within ±0.5 LU, true peak at or below the ceiling).
//!
//! Run alone: `scripts/test -p mediahost-e2e --test loudnorm_comparison -- --nocapture`.

use std::path::Path;
use std::process::Command;

use mediahost_e2e::Host;
use mediahost_e2e::media::{self, Fixtures};
use serde_json::json;

const CEILING: f64 = -1.5;

fn single_pass_loudnorm(input: &Path, dest: &Path, target: f64) -> media::Loudness {
    media::run(
        Command::new("ffmpeg")
            .args(["-hide_banner", "-loglevel", "error", "-nostdin", "-y", "-i"])
            .arg(input)
            .args([
                "-af",
                &format!("loudnorm=I={target}:TP={CEILING}:LRA=11"),
                "-ar",
                "22050",
            ])
            .arg(dest),
        "single-pass loudnorm",
    );
    media::loudness(dest)
}

#[tokio::test]
async fn ours_against_single_pass_loudnorm() {
    let host = Host::shared_local();
    let client = host.client();
    let f = Fixtures::get();
    let corpus = [
        ("quiet speech", &f.speech_quiet),
        ("typical speech", &f.speech),
        ("hot speech (clipped)", &f.speech_hot),
    ];
    let mut rows = Vec::new();
    for (label, input) in corpus {
        let before = media::loudness(input);
        let uri = client.upload(input).await;
        for target in [-23.0, -16.0, -14.0] {
            let job = client
                .run_job_ok(&json!({
                    "preset": "loudness-normalize",
                    "version": "^1",
                    "inputs": {"main": uri},
                    "params": {"target_lufs": target, "true_peak_db": CEILING},
                }))
                .await;
            let stem = format!("ours-{}-{}", label.replace(' ', "_"), -target as i32);
            let ours_path = client
                .download_output(&job, &f.scratch("compare"), &stem)
                .await;
            let ours = media::loudness(&ours_path);
            let theirs = single_pass_loudnorm(
                input,
                &f.scratch("compare").join(format!("{stem}-loudnorm.wav")),
                target,
            );
            rows.push(format!(
                "| {label} ({:.1} LUFS, {:+.1} dBTP) | {target:.0} | {:.1} ({:+.1}) / {:+.1} dBTP | {:.1} ({:+.1}) / {:+.1} dBTP |",
                before.integrated,
                before.true_peak,
                ours.integrated,
                ours.integrated - target,
                ours.true_peak,
                theirs.integrated,
                theirs.integrated - target,
                theirs.true_peak,
            ));
            assert!(
                (ours.integrated - target).abs() <= 0.5,
                "{label} -> {target}: ours measured {:.2} LUFS",
                ours.integrated
            );
            assert!(
                ours.true_peak <= CEILING,
                "{label} -> {target}: ours peaks at {:.2} dBTP",
                ours.true_peak
            );
        }
    }
    eprintln!(
        "| input | target LUFS | loudness-normalize: LUFS (error) / true peak | single-pass loudnorm: LUFS (error) / true peak |"
    );
    eprintln!("|---|---|---|---|");
    for row in rows {
        eprintln!("{row}");
    }
}
