//! Presets written in Python (componentize-py) and JavaScript (componentize-js): the examples in
//! `presets-wasm/examples/` built with their own `build.sh` (which installs the toolchain from
//! PyPI / npm when it is missing), published to a real host without any `--stub-wasi`, and run
//! as a job and a dry run. What a user would check: the publish is accepted, the job completes
//! with an MP3 whose level changed by the gain asked for (ffprobe and ebur128 on the download),
//! and what the preset printed to stdout and stderr is in the job log and the dry-run answer.
//!
//! A toolchain that cannot be installed fails the test: it is never skipped.

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use mediahost_e2e::client::{assert_completed, json_body};
use mediahost_e2e::host::{Host, StorageKind, presets_dir};
use mediahost_e2e::{Client, media, process, repo_root, target_dir};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// One example preset: its directory under `presets-wasm/examples/` and its name.
struct Example {
    dir: &'static str,
    name: &'static str,
}

const PYTHON: Example = Example {
    dir: "python",
    name: "py-gain",
};
const JS: Example = Example {
    dir: "js",
    name: "js-gain",
};

/// Both examples, built once per test binary (each `build.sh` runs in its own thread).
fn built() -> &'static [(PathBuf, Duration); 2] {
    static BUILT: OnceLock<[(PathBuf, Duration); 2]> = OnceLock::new();
    BUILT.get_or_init(|| {
        let py = std::thread::spawn(|| build(&PYTHON));
        let js = std::thread::spawn(|| build(&JS));
        [
            py.join().expect("the Python build thread"),
            js.join().expect("the JS build thread"),
        ]
    })
}

/// Runs the example's `build.sh` into `<target>/preset-examples/<name>.wasm`; panics (fails the
/// test) when the toolchain cannot be installed or the build fails.
fn build(example: &Example) -> (PathBuf, Duration) {
    let script = repo_root()
        .join("presets-wasm/examples")
        .join(example.dir)
        .join("build.sh");
    let out = target_dir()
        .join("preset-examples")
        .join(format!("{}.wasm", example.name));
    let started = Instant::now();
    let output = Command::new("bash")
        .arg(&script)
        .arg(&out)
        .output()
        .unwrap_or_else(|e| panic!("run {}: {e}", script.display()));
    assert!(
        output.status.success(),
        "{} failed ({}); a toolchain that cannot be installed fails this test:\n{}\n{}",
        script.display(),
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let took = started.elapsed();
    let size = std::fs::metadata(&out).map(|m| m.len()).unwrap_or(0);
    eprintln!(
        "[language] built {} in {:.1}s: {size} bytes",
        example.name,
        took.as_secs_f64()
    );
    (out, took)
}

/// A host of this binary's own, with one ordinary preset (audio-convert) beside what the tests
/// publish.
fn host() -> &'static Host {
    static HOST: OnceLock<(Host, tempfile::TempDir)> = OnceLock::new();
    &HOST
        .get_or_init(|| {
            let dir = process::fixture_dir("language-presets");
            let presets = dir.path().join("presets");
            std::fs::create_dir_all(&presets).unwrap();
            std::fs::copy(
                presets_dir().join("audio-convert-1.0.0.wasm"),
                presets.join("audio-convert-1.0.0.wasm"),
            )
            .unwrap();
            let host = Host::start_with_presets(StorageKind::Local, &presets)
                .unwrap_or_else(|e| panic!("{e}"));
            (host, dir)
        })
        .0
}

/// Publishes `bytes` with the host's admin token; returns the record and how long it took.
async fn publish(host: &Host, client: &Client, bytes: Vec<u8>) -> (Value, Duration) {
    let token = std::fs::read_to_string(host.data_dir().join("admin-token"))
        .expect("the host's admin-token file");
    let started = Instant::now();
    let resp = client
        .http()
        .post(client.url("/v1/presets"))
        .header("content-type", "application/wasm")
        .bearer_auth(token.trim())
        .timeout(Duration::from_secs(600))
        .body(bytes)
        .send()
        .await
        .expect("POST /v1/presets");
    let record = json_body(resp, StatusCode::CREATED, "publishing an example preset").await;
    (record, started.elapsed())
}

/// The example built, published, then run as a dry run and a job that raises the level by 6 dB.
async fn run_example(example: &Example, index: usize) {
    let (wasm, build_time) = &built()[index];
    let started = Instant::now();
    let host = host();
    let client = host.client();
    let bytes = std::fs::read(wasm).unwrap();
    let size = bytes.len();
    let (record, publish_time) = publish(host, &client, bytes).await;
    assert_eq!(record["name"], example.name, "{record:#}");
    assert_eq!(record["version"], "1.0.0", "{record:#}");
    assert_eq!(record["interface"], "mediahost:preset@2.0.0", "{record:#}");
    let listing = client.get_json("/v1/presets").await.to_string();
    assert!(listing.contains(example.name), "{listing}");

    let scratch = process::fixture_dir(example.name);
    // A 440 Hz tone at -18 dBFS peak: MP3 keeps all of it, so the level change is the gain.
    let source = media::sine(&scratch.path().join("tone.wav"), 4.0);
    let input = client.upload(&source).await;
    let params = json!({ "gain_db": 6.0, "bitrate_kbps": 192 });

    // The dry run: the plan and the preset's printed lines, nothing run.
    let dry_run_started = Instant::now();
    let answer = json_body(
        client
            .http()
            .post(client.url(&format!("/v1/presets/{}/1.0.0/plan", example.name)))
            .json(&json!({ "inputs": { "main": input }, "params": params }))
            .send()
            .await
            .expect("dry run"),
        StatusCode::OK,
        "dry run",
    )
    .await;
    let dry_run_time = dry_run_started.elapsed();
    assert_eq!(answer["decision"], "finish", "{answer:#}");
    let command = answer["commands"][0]["command"]
        .as_str()
        .unwrap_or_default();
    assert!(
        command.contains("libmp3lame") && command.contains("volume"),
        "{answer:#}"
    );
    let logs = answer["logs"].to_string();
    let printed = format!("{}: stream 0 (pcm_s16le, 1 ch) by 6 dB", example.name);
    let printed_py = format!("{}: stream 0 (pcm_s16le, 1 ch) by 6.0 dB", example.name);
    let warned = "by 6.0 dB may clip";
    let warned_js = "by 6 dB may clip";
    let has = |logs: &str, level: &str, a: &str, b: &str| {
        serde_json::from_str::<Value>(logs)
            .ok()
            .and_then(|v| v.as_array().cloned())
            .unwrap_or_default()
            .iter()
            .any(|l| {
                l["level"] == level
                    && l["message"]
                        .as_str()
                        .is_some_and(|m| m.contains(a) || m.contains(b))
            })
    };
    assert!(
        has(&logs, "info", &printed, &printed_py),
        "stdout in the dry run's logs as info: {logs}"
    );
    assert!(
        has(&logs, "warn", warned, warned_js),
        "stderr in the dry run's logs as warn: {logs}"
    );
    assert!(
        logs.contains("192 kbit/s MP3"),
        "host.log in the dry run's logs: {logs}"
    );

    // The job: completed, an MP3 6 dB louder than its source.
    let id = client
        .submit_ok(&json!({
            "preset": example.name,
            "version": "=1.0.0",
            "inputs": { "main": input },
            "params": params,
        }))
        .await;
    let job = client.wait_terminal(&id).await;
    assert_completed(&job);
    let out = client.download_output(&job, scratch.path(), "out").await;
    let probe = media::probe(&out);
    assert_eq!(probe["format"]["format_name"], "mp3", "{probe:#}");
    let audio = media::audio_stream(&probe);
    assert_eq!(audio["codec_name"], "mp3", "{probe:#}");
    assert_eq!(audio["channels"], 1, "{probe:#}");
    let duration: f64 = probe["format"]["duration"]
        .as_str()
        .and_then(|d| d.parse().ok())
        .unwrap_or(0.0);
    assert!((duration - 4.0).abs() < 0.2, "{duration} s: {probe:#}");
    let gained = media::loudness(&out).integrated - media::loudness(&source).integrated;
    assert!((gained - 6.0).abs() < 0.5, "{gained:.2} dB louder, not 6");

    // A reasoned refusal thrown through the helper (`refuse`) is the job's PRESET_REFUSED.
    let silent = client
        .upload(&media::video_only(&scratch.path().join("silent.mp4")))
        .await;
    let refused = client
        .run_job(&json!({
            "preset": example.name,
            "inputs": { "main": silent },
            "params": params,
        }))
        .await;
    assert_eq!(refused["state"], "FAILED", "{refused:#}");
    assert_eq!(refused["error"]["code"], "PRESET_REFUSED", "{refused:#}");
    assert!(
        refused["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("NO_AUDIO")),
        "{refused:#}"
    );

    let job_log = client
        .get_json(&format!("/v1/jobs/{id}/logs"))
        .await
        .to_string();
    assert!(
        job_log.contains(&printed) || job_log.contains(&printed_py),
        "stdout in the job log: {job_log}"
    );
    assert!(
        job_log.contains(warned) || job_log.contains(warned_js),
        "stderr in the job log: {job_log}"
    );
    eprintln!(
        "[language] | {:<8} | {:>9} bytes | build {:>5.1}s | publish (compile) {:>6.1}s | dry run {:>4.0} ms | jobs {:>5.1}s | gain {gained:+.2} dB |",
        example.name,
        size,
        build_time.as_secs_f64(),
        publish_time.as_secs_f64(),
        dry_run_time.as_secs_f64() * 1000.0,
        (started.elapsed() - publish_time - dry_run_time).as_secs_f64(),
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_python_preset_publishes_runs_and_its_prints_reach_the_log() {
    run_example(&PYTHON, 0).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_javascript_preset_publishes_runs_and_its_console_reaches_the_log() {
    run_example(&JS, 1).await;
}

/// The build scripts leave nothing in the source tree (no bindings, no node_modules).
#[test]
fn the_build_scripts_write_only_their_output() {
    built();
    for dir in ["python", "js"] {
        let dir = repo_root().join("presets-wasm/examples").join(dir);
        let mut names: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert!(
            names
                .iter()
                .all(|n| !n.ends_with(".wasm") && n != "node_modules" && n != "wit_world"),
            "{}: {names:?}",
            dir.display()
        );
    }
}
