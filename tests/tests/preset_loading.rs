//! Loading presets at scale: a host listens at once and loads its bundled and published presets
//! in the background, one compile at a time in a child process; `/readyz` is 503 with how far
//! loading is until every version was attempted; a job submitted for a version still loading
//! waits for it and runs; publishing answers what compiling cost.

use std::process::Command;
use std::time::{Duration, Instant};

use mediahost_e2e::client::{assert_completed, json_body};
use mediahost_e2e::deployment::{ADMIN_TOKEN, with_version};
use mediahost_e2e::host::{mediahost_binary, presets_dir};
use mediahost_e2e::process::{self, Daemon};
use mediahost_e2e::redis::Redis;
use mediahost_e2e::{Client, media};
use reqwest::StatusCode;
use serde_json::{Value, json};

async fn readyz(client: &Client) -> (StatusCode, Value) {
    let resp = client.get("/readyz").await;
    let status = resp.status();
    (status, resp.json().await.expect("/readyz answers JSON"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_listens_at_once_and_jobs_wait_for_versions_still_loading() {
    let dir = process::fixture_dir("preset-loading");
    // The input is made before the host starts, so the job is submitted while it loads.
    let input = media::speech(&dir.path().join("speech.wav"));
    let bundled = std::fs::read_dir(presets_dir())
        .unwrap()
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "wasm"))
        .count() as u64;

    let redis = Redis::start();
    let port = process::free_port();
    let log = dir.path().join("host.log");
    let mut command = Command::new(mediahost_binary());
    command
        .arg("serve")
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .args(["--redis", &redis.url()])
        // An empty data directory: no compiled artifact is cached, every component compiles.
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .arg("--presets-dir")
        .arg(presets_dir())
        .args(["--admin-token", ADMIN_TOKEN])
        .env("RUST_LOG", "info");
    let started = Instant::now();
    let _host = Daemon::spawn("mediahost", command, &log);
    let client = Client::new(format!("http://127.0.0.1:{port}"), log.clone(), vec![]);

    // Alive at once, while its presets load.
    loop {
        if let Ok(resp) = client.http().get(client.url("/healthz")).send().await
            && resp.status() == StatusCode::OK
        {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no /healthz: {}",
            process::log_tail(&log, 30)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let listening = started.elapsed();
    let (status, body) = readyz(&client).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["code"], "PRESET_LOADING", "{body}");
    assert_eq!(body["ready"], false, "{body}");
    assert_eq!(body["redis"], "ok", "{body}");
    let total = body["presets"]["total"].as_u64().expect("a total");
    let loaded = body["presets"]["loaded"].as_u64().expect("a count");
    assert!(total >= bundled, "every bundled component counts: {body}");
    assert!(loaded < total, "{body}");

    // A job for a preset whose versions are still loading waits for them, and resolves to
    // the newest (1.2.0; its bundled file is read after 1.0.0's and 1.1.0's).
    let uri = client.upload(&input).await;
    let (status, before) = readyz(&client).await;
    assert_eq!(
        status,
        StatusCode::SERVICE_UNAVAILABLE,
        "still loading when the job is submitted: {before}"
    );
    let submitted = Instant::now();
    let id = client
        .submit_ok(&json!({"preset": "loudness-normalize", "inputs": {"main": uri}}))
        .await;
    let submit_waited = submitted.elapsed();

    // Ready once every version was attempted; the count only grows.
    let mut last = loaded;
    let ready_after = loop {
        let (status, body) = readyz(&client).await;
        let now = body["presets"]["loaded"].as_u64().expect("a count");
        assert!(now >= last, "loading went backwards: {body}");
        last = now;
        if status == StatusCode::OK {
            assert_eq!(body["status"], "ready", "{body}");
            assert_eq!(
                body["presets"]["loaded"], body["presets"]["total"],
                "{body}"
            );
            break started.elapsed();
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "not ready after 120 s: {body}\n{}",
            process::log_tail(&log, 30)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };

    let job = client.wait_terminal(&id).await;
    assert_completed(&job);
    assert_eq!(job["preset"]["name"], "loudness-normalize", "{job:#}");
    assert_eq!(job["preset"]["version"], "1.2.0", "{job:#}");
    let health = client.get_json("/healthz").await;
    assert_eq!(health["presets"].as_u64(), Some(bundled), "{health}");

    // Publishing new bytes answers what compiling them cost: a compile child of its own.
    let component = std::fs::read(presets_dir().join("audio-convert-1.1.0.wasm")).unwrap();
    let resp = client
        .http()
        .post(client.url("/v1/presets"))
        .bearer_auth(ADMIN_TOKEN)
        .header("content-type", "application/wasm")
        .body(with_version(&component, "audio-convert", "1.1.0", "1.1.9"))
        .send()
        .await
        .expect("POST /v1/presets");
    let published = json_body(resp, StatusCode::CREATED, "POST /v1/presets").await;
    let compile = &published["compile"];
    assert_eq!(compile["cached"], false, "{published}");
    assert!(
        compile["ms"].as_u64().is_some_and(|ms| ms > 0),
        "{published}"
    );
    assert!(
        compile["peak_rss_mib"]
            .as_u64()
            .is_some_and(|mib| mib > 0 && mib < 4096),
        "{published}"
    );
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.lines()
            .any(|l| l.contains("loaded preset component") && l.contains("peak_rss_mib")),
        "the compile cost is logged"
    );
    eprintln!(
        "[preset-loading] {bundled} bundled components, empty artifact cache: listening after \
         {:.2} s, ready after {:.2} s; a submission during loading waited {:.2} s; publishing \
         audio-convert 1.1.9 compiled in {} ms at a peak of {} MiB",
        listening.as_secs_f64(),
        ready_after.as_secs_f64(),
        submit_waited.as_secs_f64(),
        compile["ms"],
        compile["peak_rss_mib"]
    );
}
