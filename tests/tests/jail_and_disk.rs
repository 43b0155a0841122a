//! The ffmpeg jail and the per-job disk budget, as a user of the host sees them: a job whose
//! output outgrows `--job-disk-budget-mib` ends `OUTPUT_TOO_LARGE` within a bound, its scratch
//! (a kept copy included) is gone, and the host goes on to run an ordinary job; a data directory
//! the jail exposes to every ffmpeg is refused at start.
//!
//! The mechanisms themselves (PID namespace, session, uid, capabilities, sockets, symlinked
//! outputs) are unit-tested next to the code, in `host/src/ffmpeg/`. Each case prints a row
//! (case, outcome, time to contain); run with `--nocapture` to see them.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use mediahost_e2e::host::{self, StorageKind};
use mediahost_e2e::{Host, media, process};
use serde_json::{Value, json};

/// An over-budget step is stopped within a poll of its scratch directory, or at once by the
/// per-file limit; the rest is the queue, the download and the probe of a small input.
const BUDGET_BOUND: Duration = Duration::from_secs(30);
/// The host refuses a bad data directory before it starts anything.
const START_BOUND: Duration = Duration::from_secs(10);

fn row(case: &str, outcome: &str, contained: Duration) {
    eprintln!(
        "| {case:<58} | {outcome:<18} | {:>8.2} s |",
        contained.as_secs_f64()
    );
}

/// Every file left under `dir`, at any depth.
fn files_under(dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                pending.push(entry.path());
            } else {
                found.push(entry.path().display().to_string());
            }
        }
    }
    found
}

fn silent_flac(dest: &Path, seconds: u32) -> std::path::PathBuf {
    media::run(
        Command::new("ffmpeg")
            .args(["-hide_banner", "-nostdin", "-v", "error", "-y"])
            .args(["-f", "lavfi", "-i", "anullsrc=r=8000:cl=mono"])
            .args(["-t", &seconds.to_string()])
            .arg(dest),
        "ffmpeg silent flac",
    );
    dest.to_path_buf()
}

#[tokio::test]
async fn a_job_over_its_disk_budget_fails_and_its_scratch_is_freed() {
    let host = Host::start_with_args(
        StorageKind::Local,
        &host::presets_dir(),
        &["--job-disk-budget-mib", "2"],
    )
    .expect("start a host with a 2 MiB job disk budget");
    let client = host.client();
    let health = client.get_json("/healthz").await;
    eprintln!("jail warnings: {}", health["warnings"]);

    let dir = tempfile::tempdir().unwrap();
    let input = silent_flac(&dir.path().join("silence.flac"), 20);
    let size = std::fs::metadata(&input).unwrap().len();
    assert!(size < 256 << 10, "the input is small: {size} bytes");
    let uri = client.upload(&input).await;

    // 20 s at 192 kHz, 8 channels, 16-bit: about 61 MB of WAV from a few KB of FLAC.
    let started = Instant::now();
    let job = client
        .run_job(&json!({
            "preset": "audio-convert",
            "version": "^1",
            "inputs": { "main": uri },
            "params": { "codec": "wav", "sample_rate": 192000, "channels": 8 },
        }))
        .await;
    let contained = started.elapsed();
    let code = job["error"]["code"].as_str().unwrap_or("?").to_owned();
    row(
        "audio-convert 20 s -> 192 kHz 8 ch WAV, 2 MiB budget",
        &code,
        contained,
    );
    assert_eq!(code, "OUTPUT_TOO_LARGE", "{job:#}");
    assert_ne!(job["state"], "COMPLETED", "{job:#}");
    assert_eq!(job["error"]["step"], "ffmpeg", "{job:#}");
    let message = job["error"]["message"].as_str().unwrap_or("");
    for needle in ["budget", "MiB", "--job-disk-budget-mib"] {
        assert!(message.contains(needle), "{needle} in {message}");
    }
    assert!(contained < BUDGET_BOUND, "contained in {contained:?}");

    let left = files_under(&host.data_dir().join("scratch"));
    assert!(left.is_empty(), "scratch left behind: {left:?}");
    client.assert_healthy().await;

    let small = media::sine(&dir.path().join("sine.wav"), 1.0);
    let uri = client.upload(&small).await;
    let started = Instant::now();
    let job: Value = client
        .run_job_ok(&json!({
            "preset": "audio-convert",
            "version": "^1",
            "inputs": { "main": uri },
            "params": { "codec": "mp3" },
        }))
        .await;
    row(
        "ordinary job right after, same 2 MiB budget",
        job["state"].as_str().unwrap_or("?"),
        started.elapsed(),
    );
    assert!(files_under(&host.data_dir().join("scratch")).is_empty());
}

#[test]
fn a_data_directory_the_jail_exposes_is_refused_at_start() {
    let dir = process::fixture_dir("jail-data-dir");
    let log = dir.path().join("mediahost.log");
    let started = Instant::now();
    let mut child = Command::new(host::mediahost_binary())
        .arg("serve")
        .args(["--listen", &format!("127.0.0.1:{}", process::free_port())])
        .args(["--data-dir", "/usr/share"])
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&log).unwrap())
        .stderr(std::fs::File::create(dir.path().join("stderr.log")).unwrap())
        .spawn()
        .expect("run mediahost");
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > START_BOUND {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the host started with its data directory in /usr/share");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let said = std::fs::read_to_string(dir.path().join("stderr.log")).unwrap()
        + &std::fs::read_to_string(&log).unwrap();
    row(
        "--data-dir /usr/share (read by every ffmpeg)",
        &format!("exit {}", status.code().unwrap_or(-1)),
        started.elapsed(),
    );
    assert!(!status.success());
    assert!(
        said.contains("every ffmpeg process may read"),
        "the refusal says why: {said}"
    );
}
