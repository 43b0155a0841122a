//! The preset registry across separate processes on one Redis: publishing a new version while
//! jobs run (every process loads it within a second; pinned jobs keep their version), the codes
//! a bad upload gets, yanking (no longer resolves, still replays), a missed announcement caught
//! by the periodic reconcile, the CLI, and dry runs.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use mediahost_e2e::client::{assert_completed, expect_problem, json_body, refused_before_body};
use mediahost_e2e::deployment::{ADMIN_TOKEN, Deployment, wait_for_log, wait_for_state};
use mediahost_e2e::host::presets_dir;
use mediahost_e2e::{media, process};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// A presets directory holding only audio-convert, so loudness-normalize must be published.
fn audio_convert_only(d: &Path) -> PathBuf {
    let dir = d.join("presets");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(
        presets_dir().join("audio-convert-1.0.0.wasm"),
        dir.join("audio-convert-1.0.0.wasm"),
    )
    .unwrap();
    dir
}

fn component(file: &str) -> Vec<u8> {
    let path = presets_dir().join(file);
    std::fs::read(&path)
        .unwrap_or_else(|e| panic!("{}: {e}; a released preset is missing", path.display()))
}

async fn publish(d: &Deployment, bytes: Vec<u8>, token: Option<&str>) -> reqwest::Response {
    let mut request = d
        .client
        .http()
        .post(d.client.url("/v1/presets"))
        .header("content-type", "application/wasm")
        .body(bytes);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.expect("POST /v1/presets")
}

async fn publish_ok(d: &Deployment, bytes: Vec<u8>) -> Value {
    let resp = publish(d, bytes, Some(ADMIN_TOKEN)).await;
    json_body(resp, StatusCode::CREATED, "POST /v1/presets").await
}

async fn job_log(d: &Deployment, id: &str) -> String {
    d.client
        .get_json(&format!("/v1/jobs/{id}/logs"))
        .await
        .to_string()
}

/// A temp dir to hold fixtures next to the deployment's own.
fn fixtures(label: &str) -> tempfile::TempDir {
    process::fixture_dir(label)
}

#[tokio::test]
async fn a_version_published_while_jobs_run_is_live_everywhere_within_a_second() {
    let f = fixtures("hotload-media");
    let presets = audio_convert_only(f.path());
    let d = Deployment::start("hotload", &presets, &[]).await;
    let workers = [
        d.worker("worker-a", &["--concurrency", "2"]),
        d.worker("worker-b", &["--concurrency", "2"]),
    ];
    for w in &workers {
        assert!(
            wait_for_log(w.log_path(), &["workers started"], Duration::from_secs(60))
                .await
                .is_some(),
            "{} did not start: {}",
            w.name(),
            w.log_tail(20)
        );
    }

    // 1.0.0 with one command, as a preset author would.
    let file = presets_dir().join("loudness-normalize-1.0.0.wasm");
    let out = d.cli(&["preset", "push", file.to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("published loudness-normalize@1.0.0"),
        "push: {stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Five jobs for four slots: four run, one waits, all pinned to 1.0.0 at submit.
    let input = d
        .client
        .upload(&media::pink_noise(&f.path().join("noise.wav"), 120, 0.1))
        .await;
    // Identical on purpose, so each really runs: the result cache is off for them.
    let body = json!({"preset": "loudness-normalize", "version": "^1", "inputs": {"main": input}, "cache": false});
    let mut old = Vec::new();
    for _ in 0..5 {
        let id = d.client.submit_ok(&body).await;
        let job = d.client.job(&id).await;
        assert_eq!(job["preset"]["version"], "1.0.0", "{job}");
        old.push(id);
    }
    for id in &old[..2] {
        wait_for_state(&d.client, id, "PROCESSING", Duration::from_secs(30)).await;
    }

    let resp = publish(
        &d,
        component("loudness-normalize-1.1.0.wasm"),
        Some(ADMIN_TOKEN),
    )
    .await;
    let answered = Instant::now();
    let published = json_body(resp, StatusCode::CREATED, "publish 1.1.0").await;
    assert_eq!(published["version"], "1.1.0");
    // Watch both workers' logs at once: the time each loaded 1.1.0, from the upload answer.
    let mut loaded_after: Vec<Option<Duration>> = vec![None; workers.len()];
    while loaded_after.iter().any(Option::is_none) {
        for (w, after) in workers.iter().zip(loaded_after.iter_mut()) {
            // from=Cache: the API compiled it at publish; workers load its cached artifact.
            if after.is_none()
                && process::log_tail(w.log_path(), 200).lines().any(|l| {
                    l.contains("loaded published preset")
                        && l.contains("loudness-normalize")
                        && l.contains("1.1.0")
                        && l.contains("from=Cache")
                })
            {
                *after = Some(answered.elapsed());
            }
        }
        assert!(
            answered.elapsed() < Duration::from_secs(5),
            "not every worker loaded 1.1.0: {loaded_after:?}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    for (w, after) in workers.iter().zip(&loaded_after) {
        let after = after.expect("loaded");
        eprintln!(
            "[hotload] {} loaded 1.1.0 {after:?} after the upload answer",
            w.name()
        );
        assert!(
            after <= Duration::from_secs(1),
            "{} took {after:?}",
            w.name()
        );
    }
    let pending = d.client.job(&old[4]).await;
    let new = d.client.submit_ok(&body).await;
    let job = d.client.job(&new).await;
    assert_eq!(
        job["preset"]["version"], "1.1.0",
        "^1 now resolves to 1.1.0: {job}"
    );

    for id in &old {
        let job = d.client.wait_terminal(id).await;
        assert_completed(&job);
        let log = job_log(&d, id).await;
        assert!(
            log.contains("planning with loudness-normalize@1.0.0"),
            "{log}"
        );
    }
    let job = d.client.wait_terminal(&new).await;
    assert_completed(&job);
    let log = job_log(&d, &new).await;
    assert!(
        log.contains("planning with loudness-normalize@1.1.0"),
        "{log}"
    );
    eprintln!(
        "[hotload] the job waiting at publish time ({}) ran 1.0.0 as pinned; 6 submitted, 6 completed, 0 failed",
        pending["state"]
    );
}

/// Minimal components in the text format, each wrong in one way.
const CORE_MODULE: &str = "(module)";
const OTHER_WORLD: &str = r#"(component
  (core module $m (func (export "f")))
  (core instance $i (instantiate $m))
  (func $run (canon lift (core func $i "f")))
  (instance $x (export "run" (func $run)))
  (export "acme:other/thing@1.0.0" (instance $x)))"#;
const INTERFACE_3: &str = r#"(component
  (core module $m (func (export "f") (result i32) i32.const 0))
  (core instance $i (instantiate $m))
  (func $describe (result u32) (canon lift (core func $i "f")))
  (instance $x (export "describe" (func $describe)))
  (export "mediahost:preset/preset@3.0.0" (instance $x)))"#;
const WRONG_SHAPE_1: &str = r#"(component
  (core module $m (func (export "f") (result i32) i32.const 0))
  (core instance $i (instantiate $m))
  (func $describe (result u32) (canon lift (core func $i "f")))
  (instance $x (export "describe" (func $describe)))
  (export "mediahost:preset/preset@1.0.0" (instance $x)))"#;

#[tokio::test]
async fn bad_uploads_are_refused_with_clear_codes() {
    let f = fixtures("refusals");
    let d = Deployment::start("refusals", &audio_convert_only(f.path()), &[]).await;
    let good = component("loudness-normalize-1.0.0.wasm");

    let p = expect_problem(publish(&d, good.clone(), None).await, 401, "UNAUTHORIZED").await;
    assert!(
        p.body["detail"].as_str().unwrap().contains("Bearer"),
        "{:?}",
        p.body
    );
    // Refusals a host gives before reading the body are sent with only the body's start (see
    // `refused_before_body`).
    let refused = |token: &'static str, announced: usize| {
        let auth = format!("Bearer {token}");
        let base = d.base_url().to_owned();
        async move {
            refused_before_body(
                &base,
                "POST /v1/presets",
                &[
                    ("Content-Type", "application/wasm"),
                    ("Authorization", &auth),
                ],
                announced,
                Duration::from_secs(30),
            )
            .await
        }
    };
    let answer = refused("wrong", good.len()).await;
    assert!(answer.starts_with("HTTP/1.1 401 "), "{answer}");
    assert!(answer.contains("\"code\":\"UNAUTHORIZED\""), "{answer}");

    let cases: [(&str, Vec<u8>, u16, &str, &str); 6] = [
        ("empty", vec![], 422, "PRESET_INVALID", "empty"),
        (
            "junk",
            b"not wasm at all".to_vec(),
            422,
            "PRESET_INVALID",
            "not a valid WebAssembly component",
        ),
        (
            "core module",
            wat::parse_str(CORE_MODULE).unwrap(),
            422,
            "PRESET_INVALID",
            "component",
        ),
        (
            "other world",
            wat::parse_str(OTHER_WORLD).unwrap(),
            422,
            "PRESET_INVALID",
            "acme:other/thing@1.0.0",
        ),
        (
            "interface 3.0",
            wat::parse_str(INTERFACE_3).unwrap(),
            422,
            "PRESET_INTERFACE_UNSUPPORTED",
            ">=1.0.0, <3.0.0",
        ),
        (
            "1.0 export of the wrong shape",
            wat::parse_str(WRONG_SHAPE_1).unwrap(),
            422,
            "PRESET_INVALID",
            "does not match",
        ),
    ];
    for (what, bytes, status, code, says) in cases {
        let p = expect_problem(publish(&d, bytes, Some(ADMIN_TOKEN)).await, status, code).await;
        let detail = p.body["detail"].as_str().unwrap_or_default();
        assert!(detail.contains(says), "{what}: {detail}");
        eprintln!("[refusal] {what}: {code}: {detail}");
    }

    let answer = refused(ADMIN_TOKEN, 33 << 20).await;
    assert!(answer.starts_with("HTTP/1.1 413 "), "{answer}");
    assert!(answer.contains("\"code\":\"PRESET_TOO_LARGE\""), "{answer}");

    publish_ok(&d, good.clone()).await;
    let p = expect_problem(
        publish(&d, good, Some(ADMIN_TOKEN)).await,
        409,
        "PRESET_VERSION_EXISTS",
    )
    .await;
    assert!(
        p.body["detail"].as_str().unwrap().contains("immutable")
            || p.body["detail"].as_str().unwrap().contains("exact bytes")
    );
    // Same name and version, other bytes: still refused, and the published one stays.
    let other = mediahost_e2e::deployment::with_version(
        &component("loudness-normalize-1.1.0.wasm"),
        "loudness-normalize",
        "1.1.0",
        "1.0.0",
    );
    let p = expect_problem(
        publish(&d, other, Some(ADMIN_TOKEN)).await,
        409,
        "PRESET_VERSION_EXISTS",
    )
    .await;
    assert!(
        p.body["detail"].as_str().unwrap().contains("immutable"),
        "{:?}",
        p.body
    );
    let shown = d
        .client
        .get_json("/v1/presets/loudness-normalize/1.0.0")
        .await;
    assert_eq!(shown["sha256"].as_str().unwrap().len(), 64, "{shown}");
    d.client.assert_healthy().await;
}

#[tokio::test]
async fn a_yanked_version_no_longer_resolves_but_pinned_jobs_replay() {
    let f = fixtures("yank-media");
    let d = Deployment::start("yank", &audio_convert_only(f.path()), &[]).await;
    let _worker = d.worker("worker-a", &["--concurrency", "2"]);
    publish_ok(&d, component("loudness-normalize-1.0.0.wasm")).await;
    publish_ok(&d, component("loudness-normalize-1.1.0.wasm")).await;

    let input = d
        .client
        .upload(&media::speech(&f.path().join("speech.wav")))
        .await;
    let id = d
        .client
        .submit_ok(&json!({"preset": "loudness-normalize", "version": "=1.1.0", "inputs": {"main": input}}))
        .await;
    assert_completed(&d.client.wait_terminal(&id).await);

    let out = d.cli(&["preset", "yank", "loudness-normalize", "1.1.0"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let shown = d.client.get_json("/v1/presets/loudness-normalize").await;
    assert_eq!(shown["latest"], "1.0.0", "{shown}");
    assert_eq!(shown["versions"][0]["yanked"], true, "{shown}");

    let resp = d
        .client
        .submit(&json!({"preset": "loudness-normalize", "version": "=1.1.0", "inputs": {"main": input}}))
        .await;
    let p = expect_problem(resp, 422, "PRESET_VERSION_NOT_FOUND").await;
    assert!(
        p.body["detail"].as_str().unwrap().contains("yanked"),
        "{:?}",
        p.body
    );
    let job = d
        .client
        .run_job_ok(&json!({"preset": "loudness-normalize", "inputs": {"main": input}}))
        .await;
    assert_eq!(
        job["preset"]["version"], "1.0.0",
        "the newest live version: {job}"
    );

    let resp = d
        .client
        .http()
        .post(d.client.url(&format!("/v1/jobs/{id}/replay")))
        .json(&json!({"verbose": true}))
        .send()
        .await
        .unwrap();
    let replay = json_body(resp, StatusCode::ACCEPTED, "replay").await;
    assert_eq!(replay["preset"]["version"], "1.1.0", "{replay}");
    assert_eq!(replay["replay_of"], json!(id));
    let done = d.client.wait_terminal(replay["id"].as_str().unwrap()).await;
    assert_completed(&done);
    assert_eq!(done["params"], d.client.job(&id).await["params"]);
    let verbose = job_log(&d, replay["id"].as_str().unwrap()).await;
    assert!(
        verbose.contains("stderr:"),
        "a verbose replay logs ffmpeg's stderr: {verbose}"
    );
    assert!(
        !job_log(&d, &id).await.contains("stderr:"),
        "the original was not verbose"
    );
}

#[tokio::test]
async fn a_missed_announcement_is_caught_by_the_periodic_reconcile() {
    let f = fixtures("reconcile-media");
    let d = Deployment::start(
        "reconcile",
        &audio_convert_only(f.path()),
        &["--preset-reconcile-s", "1"],
    )
    .await;
    publish_ok(&d, component("loudness-normalize-1.0.0.wasm")).await;
    // Yank behind the API's back: the index changes, nothing is announced.
    let out = Command::new("redis-cli")
        .args(["-p", &d.redis.port().to_string()])
        .args([
            "HSET",
            "mediahost:presets:yanked",
            "loudness-normalize@1.0.0",
            "2026-01-01T00:00:00Z",
        ])
        .output()
        .expect("run redis-cli");
    assert!(out.status.success());
    let started = Instant::now();
    loop {
        let shown = d
            .client
            .get_json("/v1/presets/loudness-normalize/1.0.0")
            .await;
        if shown["yanked"] == true {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "the API never saw the yank: {shown}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    eprintln!(
        "[reconcile] an unannounced yank was seen after {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_dry_run_shows_the_validated_plan_and_commands_without_running_them() {
    let f = fixtures("dryrun-media");
    let d = Deployment::start("dryrun", &audio_convert_only(f.path()), &[]).await;
    let input = d
        .client
        .upload(&media::speech(&f.path().join("speech.wav")))
        .await;

    let plan = |body: Value| {
        d.client
            .http()
            .post(d.client.url("/v1/presets/audio-convert/1.0.0/plan"))
            .json(&body)
            .send()
    };
    let answer = json_body(
        plan(json!({"inputs": {"main": input}, "params": {"codec": "mp3"}}))
            .await
            .unwrap(),
        StatusCode::OK,
        "dry run",
    )
    .await;
    assert_eq!(answer["decision"], "finish", "{answer}");
    let command = answer["commands"][0]["command"].as_str().unwrap();
    assert!(
        command.contains("-i in/main")
            && command.contains("libmp3lame")
            && command.contains("out/main.mp3"),
        "{command}"
    );
    // Nothing ran: no job, no output object.
    assert!(!d.data_dir().join("objects/jobs").exists());

    // The same call with the probed media info instead of a URI gives the same commands.
    let again = json_body(
        plan(json!({"inputs": {"main": answer["inputs"]["main"]}, "params": {"codec": "mp3"}}))
            .await
            .unwrap(),
        StatusCode::OK,
        "dry run from media info",
    )
    .await;
    assert_eq!(again["commands"], answer["commands"]);

    let p = expect_problem(
        plan(json!({"inputs": {"main": input}, "params": {"codec": "wma"}}))
            .await
            .unwrap(),
        422,
        "PARAMS_INVALID",
    )
    .await;
    assert!(
        p.body["detail"].as_str().unwrap().contains("codec"),
        "{:?}",
        p.body
    );

    let out = d.cli(&[
        "preset",
        "plan",
        "audio-convert",
        "1.0.0",
        "--input",
        &format!("main={input}"),
        "--params",
        r#"{"codec": "opus"}"#,
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("ffmpeg ") && stdout.contains("libopus"),
        "{stdout}"
    );
}

/// Every `mediahost:preset/<interface>@1.0.0` name in a component renamed to `@1.<minor>.0`,
/// as if it had been built against a newer 1.x of the WIT that changed nothing it uses.
fn built_for_interface(component: &[u8], minor: u8) -> Vec<u8> {
    let mut out = component.to_vec();
    for interface in ["types", "host", "preset"] {
        let from = format!("mediahost:preset/{interface}@1.0.0").into_bytes();
        let to = format!("mediahost:preset/{interface}@1.{minor}.0").into_bytes();
        let mut i = 0;
        while i + from.len() <= out.len() {
            if out[i..i + from.len()] == from[..] {
                out[i..i + to.len()].copy_from_slice(&to);
                i += from.len();
            } else {
                i += 1;
            }
        }
    }
    assert_ne!(out, component, "no interface names were found to rename");
    out
}

#[tokio::test]
async fn a_component_built_for_a_newer_1x_interface_links_and_runs() {
    let f = fixtures("semver-media");
    let d = Deployment::start("semver", &audio_convert_only(f.path()), &[]).await;
    let _worker = d.worker("worker-a", &["--concurrency", "1"]);
    let newer = built_for_interface(
        &mediahost_e2e::deployment::with_version(
            &component("audio-convert-1.0.0.wasm"),
            "audio-convert",
            "1.0.0",
            "1.0.1",
        ),
        3,
    );
    let published = publish_ok(&d, newer).await;
    assert_eq!(
        published["interface"], "mediahost:preset@1.3.0",
        "{published}"
    );
    let input = d
        .client
        .upload(&media::speech(&f.path().join("speech.wav")))
        .await;
    let job = d
        .client
        .run_job_ok(&json!({"preset": "audio-convert", "version": "=1.0.1", "inputs": {"main": input}, "params": {"codec": "flac"}}))
        .await;
    assert_eq!(job["outputs"][0]["codecs"][0], "flac", "{job}");
}
