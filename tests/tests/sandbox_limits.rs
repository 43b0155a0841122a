//! The preset sandbox's limits, tried as an attacker would: a preset that sleeps in `plan` (a
//! host call no epoch interrupts), a burst of anonymous dry runs of it, a preset whose
//! `describe` sleeps (at publish and at start), an impostor version with build metadata, and an
//! unauthenticated publish of a component-sized body.
//!
//! Every case must end with its code within its bound, and an ordinary job must complete right
//! after. Each case prints a row (attack, outcome, time to contain); run with `--nocapture` to see
//! the table.
//!
//! The hostile presets live in `tests/fixtures/hostile-presets`; [`mediahost_e2e::hostile`] builds
//! them with its `build.sh` when a component is missing or older than its sources.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use mediahost_e2e::client::{expect_problem, refused_before_body};
use mediahost_e2e::host::StorageKind;
use mediahost_e2e::{Client, Host, hostile, media, process};
use serde_json::{Value, json};

/// The hostile components this file uses, as `build.sh` names them in `dist/`.
const SLEEP: &str = "hostile-sleep-1.0.0.wasm";
const SLEEP_DESCRIBE: &str = "hostile-sleep-describe-1.0.0.wasm";
const IMPOSTOR: &str = "hostile-impostor-1.0.0.wasm";

const ADMIN_TOKEN: &str = "sandbox-limits-admin-token";

/// A preset call is bounded at 100 ms, so a preset that sleeps is contained well within this.
const PRESET_BOUND: Duration = Duration::from_secs(10);
/// A hundred dry runs, two at a time, each at most one probe and one bounded call.
const BURST_BOUND: Duration = Duration::from_secs(60);
/// A host starting with a preset whose describe sleeps: Redis, the built-in presets and one
/// bounded describe call.
const START_BOUND: Duration = Duration::from_secs(30);
/// The host answers an unauthenticated publish from its headers alone.
const UNAUTHENTICATED_BOUND: Duration = Duration::from_secs(5);
const POLL_EVERY: Duration = Duration::from_millis(50);

// ---- fixtures -----------------------------------------------------------------------------------

struct Suite {
    host: Host,
    tone: PathBuf,
    _presets: tempfile::TempDir,
    _media: tempfile::TempDir,
}

/// One host for this file: the built-in presets, hostile-sleep, and the impostor (which it must
/// refuse at start), with a known admin token.
fn suite() -> &'static Suite {
    static SUITE: OnceLock<Result<Suite, String>> = OnceLock::new();
    let suite = SUITE.get_or_init(|| {
        let presets = hostile::presets_with("sandbox-presets", &[SLEEP, IMPOSTOR])?;
        let host = Host::start_with_args(
            StorageKind::Local,
            presets.path(),
            &["--admin-token", ADMIN_TOKEN],
        )?;
        let media = process::fixture_dir("sandbox-media");
        let tone = media::sine(&media.path().join("tone.wav"), 1.0);
        eprintln!(
            "[sandbox] | {:<52} | {:<24} | {:>8} |",
            "attack", "outcome", "contained"
        );
        Ok(Suite {
            host,
            tone,
            _presets: presets,
            _media: media,
        })
    });
    match suite {
        Ok(suite) => suite,
        Err(why) => panic!("{why}"),
    }
}

fn row(attack: &str, outcome: &str, took: Duration) {
    eprintln!(
        "[sandbox] | {attack:<52} | {outcome:<24} | {:>7.2}s |",
        took.as_secs_f64()
    );
}

/// An ordinary job (audio-convert of a short sine) completes on `client`'s host.
async fn assert_ordinary_job_completes(client: &Client, tone: &Path) {
    client.assert_healthy().await;
    let uri = client.upload(tone).await;
    client
        .run_job_ok(&json!({
            "preset": "audio-convert",
            "inputs": { "main": uri },
            "params": { "codec": "flac" },
        }))
        .await;
}

async fn publish(client: &Client, bytes: Vec<u8>) -> reqwest::Response {
    client
        .http()
        .post(client.url("/v1/presets"))
        .bearer_auth(ADMIN_TOKEN)
        .header("content-type", "application/wasm")
        .body(bytes)
        .send()
        .await
        .expect("POST /v1/presets")
}

// ---- the cases ----------------------------------------------------------------------------------

#[tokio::test]
async fn a_preset_that_sleeps_in_plan_fails_at_its_deadline() {
    let s = suite();
    let client = s.host.client();
    let uri = client.upload(&s.tone).await;
    let id = client
        .submit_ok(&json!({ "preset": "hostile-sleep", "inputs": { "main": uri } }))
        .await;
    let started = Instant::now();
    let job = loop {
        let job = client.job(&id).await;
        if matches!(job["state"].as_str(), Some("COMPLETED" | "FAILED" | "DEAD")) {
            break job;
        }
        assert!(
            started.elapsed() < PRESET_BOUND,
            "a preset sleeping in plan was not stopped within {PRESET_BOUND:?}:\n{job:#}"
        );
        tokio::time::sleep(POLL_EVERY).await;
    };
    let took = started.elapsed();
    let code = job["error"]["code"].as_str().unwrap_or("?");
    row("preset: std::thread::sleep(600 s) in plan", code, took);
    assert_eq!(job["state"], "FAILED", "{job:#}");
    assert_eq!(code, "PRESET_FAILED", "{job:#}");
    assert_eq!(job["error"]["step"], "plan", "{job:#}");
    let message = job["error"]["message"].as_str().unwrap_or("");
    assert!(message.contains("deadline"), "says why: {job:#}");
    assert!(took < PRESET_BOUND, "took {took:?}");
    assert_ordinary_job_completes(&client, &s.tone).await;
}

#[tokio::test]
async fn a_burst_of_dry_runs_that_sleep_leaves_jobs_running() {
    let s = suite();
    let client = s.host.client();
    let uri = client.upload(&s.tone).await;
    let started = Instant::now();
    let url = client.url("/v1/presets/hostile-sleep/1.0.0/plan");
    let mut calls = tokio::task::JoinSet::new();
    for _ in 0..100 {
        let http = client.http().clone();
        let url = url.clone();
        let body = json!({ "inputs": { "main": uri } });
        calls.spawn(async move {
            let resp = http
                .post(&url)
                .json(&body)
                .send()
                .await
                .expect("POST a dry run");
            let status = resp.status().as_u16();
            let body: Value = resp.json().await.expect("a JSON answer");
            (status, body["code"].as_str().unwrap_or("?").to_owned())
        });
    }
    let answers = tokio::time::timeout(BURST_BOUND, calls.join_all())
        .await
        .unwrap_or_else(|_| panic!("100 dry runs were not all answered within {BURST_BOUND:?}"));
    let took = started.elapsed();
    let failed = answers
        .iter()
        .filter(|a| *a == &(500, "PRESET_FAILED".to_owned()))
        .count();
    let overloaded = answers
        .iter()
        .filter(|a| *a == &(503, "HOST_OVERLOADED".to_owned()))
        .count();
    row(
        "100 dry runs of hostile-sleep at once",
        &format!("{failed} FAILED, {overloaded} OVERLOADED"),
        took,
    );
    assert_eq!(
        failed + overloaded,
        answers.len(),
        "every dry run fails PRESET_FAILED or waits its turn and gets HOST_OVERLOADED: {answers:?}"
    );
    assert!(failed > 0, "some dry runs reached the preset: {answers:?}");
    assert_ordinary_job_completes(&client, &s.tone).await;
}

#[tokio::test]
async fn a_describe_that_sleeps_is_refused_at_publish_and_bounded_at_start() {
    let s = suite();
    let client = s.host.client();
    let path = hostile::component(SLEEP_DESCRIBE).unwrap_or_else(|why| panic!("{why}"));
    let bytes = std::fs::read(path).expect("read the component");
    let started = Instant::now();
    let resp = tokio::time::timeout(PRESET_BOUND, publish(&client, bytes))
        .await
        .unwrap_or_else(|_| panic!("publishing was not answered within {PRESET_BOUND:?}"));
    let took = started.elapsed();
    let problem = expect_problem(resp, 422, "PRESET_INVALID").await;
    row(
        "publish: std::thread::sleep(600 s) in describe",
        problem.code(),
        took,
    );
    let detail = problem.body["detail"].as_str().unwrap_or("");
    assert!(detail.contains("deadline"), "says why: {:#}", problem.body);

    let presets = hostile::presets_with("sandbox-sleep-describe", &[SLEEP_DESCRIBE])
        .unwrap_or_else(|why| panic!("{why}"));
    let started = Instant::now();
    let host = Host::start_with_args(StorageKind::Local, presets.path(), &[])
        .unwrap_or_else(|why| panic!("a host with a sleeping describe did not start: {why}"));
    let took = started.elapsed();
    row(
        "start: sleeping describe in the presets dir",
        "refused, host up",
        took,
    );
    assert!(
        took < START_BOUND,
        "start took {took:?}, bound {START_BOUND:?}"
    );
    let other = host.client();
    let health = other.get_json("/healthz").await;
    let warnings = health["warnings"].to_string();
    assert!(
        warnings.contains(SLEEP_DESCRIBE) && warnings.contains("deadline"),
        "the refusal is listed in /healthz: {health:#}"
    );
    assert_ordinary_job_completes(&other, &s.tone).await;
}

#[tokio::test]
async fn a_version_with_build_metadata_is_refused_and_exact_pins_stay_exact() {
    let s = suite();
    let client = s.host.client();
    // The impostor sat in the presets directory at start: refused there too.
    let health = client.get_json("/healthz").await;
    assert!(
        health["warnings"].to_string().contains(IMPOSTOR),
        "the impostor is refused at start: {health:#}"
    );
    let path = hostile::component(IMPOSTOR).unwrap_or_else(|why| panic!("{why}"));
    let bytes = std::fs::read(path).expect("read the component");
    let started = Instant::now();
    let problem = expect_problem(publish(&client, bytes).await, 422, "PRESET_INVALID").await;
    row(
        "publish: audio-convert 1.0.0+patched",
        problem.code(),
        started.elapsed(),
    );
    let detail = problem.body["detail"].as_str().unwrap_or("");
    assert!(
        detail.contains("build metadata"),
        "says why: {:#}",
        problem.body
    );

    let listed = client.get_json("/v1/presets/audio-convert").await;
    assert!(
        !listed.to_string().contains("1.0.0+patched"),
        "the impostor is not listed: {listed:#}"
    );
    let uri = client.upload(&s.tone).await;
    let job = client
        .run_job_ok(&json!({
            "preset": "audio-convert",
            "version": "=1.0.0",
            "inputs": { "main": uri },
            "params": { "codec": "flac" },
        }))
        .await;
    assert_eq!(job["preset"]["version"], "1.0.0", "{job:#}");
}

#[tokio::test]
async fn an_unauthenticated_publish_is_refused_before_its_body_is_read() {
    const BODY: usize = 32 << 20;
    let s = suite();
    let started = Instant::now();
    // The headers and a first 64 KiB of the body, then nothing more: the answer must not need
    // the rest.
    let answer = refused_before_body(
        s.host.base_url(),
        "POST /v1/presets",
        &[("Content-Type", "application/wasm")],
        BODY,
        UNAUTHENTICATED_BOUND,
    )
    .await;
    let took = started.elapsed();
    let status = answer.lines().next().unwrap_or("");
    row("publish 32 MiB without a token (64 KiB sent)", status, took);
    assert!(status.starts_with("HTTP/1.1 401"), "{answer}");
    assert!(
        answer.to_lowercase().contains("connection: close"),
        "the connection, with its unread body, is not reused: {answer}"
    );
    assert!(took < UNAUTHENTICATED_BOUND, "took {took:?}");
    assert_ordinary_job_completes(&s.host.client(), &s.tone).await;
}
