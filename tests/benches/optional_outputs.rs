//! What isolating a failed optional output costs: the 2.0 fixture `fixture-v2-showcase` on one
//! 8 s 320x240 clip, run normally (its ladder step's one ffmpeg writes three HLS renditions) and
//! with `break_optional` (the same ffmpeg also writes an optional rendition whose encoder cannot
//! start, so the step fails and the worker runs it again without that output, ending the job
//! `partial`). One host, one upload, jobs one at a time alternating between the two modes after
//! an untimed warm-up job of each. Per mode it prints the median and max of the submit-to-COMPLETED
//! wall time and of the job's `timings.ffmpeg_s` (ffprobe and ffmpeg children) and
//! `timings.run_s` (the attempt), then the ratio (broken/normal) and difference of the medians.
//! Each job's outcome is asserted (`complete`, or `partial` with `broken` FAILED and the
//! renditions whole), so a bench of failing jobs stops instead of printing figures.
//!
//! Run (the debug binary is the default of the test harness; to measure a release one):
//!
//! ```text
//! cargo build -p mediahost
//! cargo bench -p mediahost-e2e --bench optional_outputs
//!
//! cargo build --release -p mediahost
//! MEDIAHOST_BIN=$CARGO_TARGET_DIR/release/mediahost cargo bench -p mediahost-e2e --bench optional_outputs
//! ```

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use mediahost_e2e::client::{JOB_TIMEOUT, assert_completed};
use mediahost_e2e::host::{StorageKind, mediahost_binary};
use mediahost_e2e::{Client, Host, interface_fixtures, media, process};
use serde_json::json;

/// Timed jobs per mode (the two modes alternate, so drift in the machine's load hits both).
const ROUNDS: usize = 7;
/// Finer than the client's own polling, which would round every wall time up to 150 ms.
const POLL_EVERY: Duration = Duration::from_millis(20);

struct Mode {
    label: &'static str,
    break_optional: bool,
    outcome: &'static str,
    wall: Vec<f64>,
    ffmpeg: Vec<f64>,
    run: Vec<f64>,
}

impl Mode {
    fn new(label: &'static str, break_optional: bool, outcome: &'static str) -> Mode {
        Mode {
            label,
            break_optional,
            outcome,
            wall: Vec::new(),
            ffmpeg: Vec::new(),
            run: Vec::new(),
        }
    }

    /// Runs one job of this mode, asserts what it delivered, and returns (wall, ffmpeg_s, run_s).
    async fn job(&self, client: &Client, input: &str) -> (f64, f64, f64) {
        let started = Instant::now();
        let id = client
            .submit_ok(&json!({
                "preset": "fixture-v2-showcase", "version": "1.0.0", "inputs": {"main": input},
                "params": {"break_optional": self.break_optional},
            }))
            .await;
        let job = loop {
            let job = client.job(&id).await;
            if !matches!(job["state"].as_str(), Some("PENDING" | "PROCESSING")) {
                break job;
            }
            assert!(
                started.elapsed() < JOB_TIMEOUT,
                "job {id} not finished after {}s:\n{job:#}",
                JOB_TIMEOUT.as_secs()
            );
            tokio::time::sleep(POLL_EVERY).await;
        };
        let wall = started.elapsed().as_secs_f64();
        assert_completed(&job);
        assert_eq!(job["outcome"], self.outcome, "{}: {job:#}", self.label);
        let outputs = job["outputs"].as_array().expect("outputs");
        let state = |name: &str| {
            outputs
                .iter()
                .find(|o| o["name"] == name)
                .map(|o| o["state"].as_str().unwrap_or_default())
        };
        for name in ["240p", "144p", "audio", "master"] {
            assert_eq!(state(name), Some("COMPLETED"), "{name}: {job:#}");
        }
        if self.break_optional {
            let broken = outputs.iter().find(|o| o["name"] == "broken");
            let broken = broken.unwrap_or_else(|| panic!("no output 'broken': {job:#}"));
            assert_eq!(broken["state"], "FAILED", "{broken:#}");
            assert_eq!(broken["error"]["code"], "FFMPEG_FAILED", "{broken:#}");
        } else {
            assert_eq!(state("broken"), None, "{job:#}");
        }
        let seconds = |field: &str| {
            job["timings"][field]
                .as_f64()
                .unwrap_or_else(|| panic!("no timings.{field}: {job:#}"))
        };
        (wall, seconds("ffmpeg_s"), seconds("run_s"))
    }
}

/// Median and max of `v` (sorted in place).
fn stats(v: &mut [f64]) -> (f64, f64) {
    v.sort_by(f64::total_cmp);
    (v[v.len() / 2], v[v.len() - 1])
}

fn video(dir: &Path) -> PathBuf {
    media::clip_with_audio(&dir.join("clip.mp4"))
}

#[tokio::main]
async fn main() {
    println!("binary: {}", mediahost_binary().display());
    let dir = process::fixture_dir("optional-outputs-bench");
    let presets = dir.path().join("presets");
    std::fs::create_dir_all(&presets).unwrap();
    let showcase = interface_fixtures::v2_showcase().expect("the 2.0 fixture builds");
    std::fs::copy(&showcase, presets.join(showcase.file_name().unwrap())).unwrap();
    let host = Host::start_with_presets(StorageKind::Local, &presets).expect("host starts");
    let client = host.client();
    let input = client.upload(&video(dir.path())).await;

    let mut modes = [
        Mode::new("normal", false, "complete"),
        Mode::new("break_optional", true, "partial"),
    ];
    for mode in &modes {
        mode.job(&client, &input).await;
    }
    for _ in 0..ROUNDS {
        for mode in &mut modes {
            let (wall, ffmpeg, run) = mode.job(&client, &input).await;
            mode.wall.push(wall);
            mode.ffmpeg.push(ffmpeg);
            mode.run.push(run);
        }
    }

    println!(
        "{:<16} {:>22} {:>22} {:>22}  outcome",
        format!("mode (n={ROUNDS})"),
        "wall s p50 / max",
        "ffmpeg_s p50 / max",
        "run_s p50 / max"
    );
    let mut medians = Vec::new();
    for mode in &mut modes {
        let figures = [
            stats(&mut mode.wall),
            stats(&mut mode.ffmpeg),
            stats(&mut mode.run),
        ];
        let cells: Vec<String> = figures
            .iter()
            .map(|(p50, max)| format!("{p50:>10.2} / {max:>7.2}"))
            .collect();
        println!(
            "{:<16} {:>22} {:>22} {:>22}  {} (every job)",
            mode.label, cells[0], cells[1], cells[2], mode.outcome
        );
        medians.push(figures.map(|(p50, _)| p50));
    }
    let ratio = |i: usize| medians[1][i] / medians[0][i];
    println!(
        "{:<16} {:>22.2} {:>22.2} {:>22.2}",
        "ratio of p50",
        ratio(0),
        ratio(1),
        ratio(2)
    );
    let difference = |i: usize| medians[1][i] - medians[0][i];
    println!(
        "{:<16} {:>22.2} {:>22.2} {:>22.2}",
        "p50 difference s",
        difference(0),
        difference(1),
        difference(2)
    );
    println!(
        "(after one untimed job of each mode; ffmpeg_s sums the ffprobe and ffmpeg children, \
         including the failed ladder run)"
    );
}
