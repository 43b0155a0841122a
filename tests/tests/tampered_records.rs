//! Workers trust nothing they read back from Redis. Jobs are accepted by an API process with no
//! worker running; their records are then rewritten in Redis the way an attacker with access to
//! Redis would (an input name that climbs out of the scratch directory, an input URI naming a
//! preset component, a param the schema refuses). When a worker starts, each job must end
//! `FAILED` with `JOB_RECORD_INVALID` at the `validate` step, nothing may be written outside the
//! job, a record that is not a job record at all must not hold its queue entry forever, and an
//! ordinary job must complete right after.
//!
//! Run with `--nocapture` to see a row per case (tampering, outcome, time to contain).

use std::process::Command;
use std::time::{Duration, Instant};

use mediahost_e2e::deployment::Deployment;
use mediahost_e2e::host::presets_dir;
use mediahost_e2e::media;
use serde_json::{Value, json};

/// A rewritten record is refused before anything is downloaded: well within this.
const CONTAIN_BOUND: Duration = Duration::from_secs(20);

fn redis_cli(d: &Deployment, args: &[&str]) -> String {
    let out = Command::new("redis-cli")
        .args(["-p", &d.redis.port().to_string(), "--raw"])
        .args(args)
        .output()
        .expect("run redis-cli (package redis-tools, installed with redis-server)");
    assert!(out.status.success(), "redis-cli {args:?}: {out:?}");
    String::from_utf8_lossy(&out.stdout).trim_end().to_owned()
}

/// One way of rewriting a job record in Redis.
type Tamper<'a> = Box<dyn FnOnce(&mut Value) + 'a>;

/// Rewrites the stored record of job `id` with `tamper`.
fn rewrite(d: &Deployment, id: &str, tamper: impl FnOnce(&mut Value)) {
    let key = format!("mediahost:job:{id}");
    let mut record: Value =
        serde_json::from_str(&redis_cli(d, &["GET", &key])).expect("the job record is JSON");
    tamper(&mut record);
    assert_eq!(redis_cli(d, &["SET", &key, &record.to_string()]), "OK");
}

#[tokio::test]
async fn a_worker_refuses_job_records_rewritten_in_redis() {
    let d = Deployment::start("tampered", &presets_dir(), &[]).await;
    let sine = media::sine(&d.dir.path().join("sine.wav"), 1.0);
    let uri = d.client.upload(&sine).await;
    let escape = d.dir.path().join("escaped");
    let job = json!({
        "preset": "audio-convert",
        "inputs": {"main": uri},
        "params": {"codec": "mp3"},
    });
    let submit = || d.client.submit_ok(&job);

    let blob = {
        let presets = d.client.get_json("/v1/presets/audio-convert").await;
        let sha = presets["versions"][0]["sha256"]
            .as_str()
            .unwrap_or_else(|| panic!("a published sha256: {presets}"))
            .to_owned();
        format!("local://presets/blobs/{sha}.wasm")
    };
    let escape_name = format!("../../../../../../..{}", escape.display());
    let cases: Vec<(&str, Tamper<'_>)> = vec![
        (
            "input name climbing out of scratch",
            Box::new(|r: &mut Value| {
                let uri = r["inputs"]["main"].take();
                r["inputs"] = json!({ escape_name: uri });
            }),
        ),
        (
            "input URI naming a preset component",
            Box::new(|r: &mut Value| r["inputs"]["main"] = json!(blob)),
        ),
        (
            "param the schema refuses",
            Box::new(|r: &mut Value| r["params"]["codec"] = json!("mp3 -f lavfi")),
        ),
    ];
    let mut jobs = Vec::new();
    for (label, tamper) in cases {
        let id = submit().await;
        rewrite(&d, &id, tamper);
        jobs.push((label, id));
    }

    // A record that is no job record at all: the worker drops its queue entry instead of
    // failing on it forever.
    let garbage = submit().await;
    assert_eq!(
        redis_cli(
            &d,
            &[
                "SET",
                &format!("mediahost:job:{garbage}"),
                "{\"not\": \"a job\"}"
            ]
        ),
        "OK"
    );

    let started = Instant::now();
    let _worker = d.worker("worker", &["--concurrency", "1"]);
    for (label, id) in &jobs {
        let job = d.client.wait_terminal(id).await;
        let contained = started.elapsed();
        println!(
            "[tampered] {label:<40} {:<10} {:<20} {:>6.2}s",
            job["state"].as_str().unwrap_or("?"),
            job["error"]["code"].as_str().unwrap_or("-"),
            contained.as_secs_f64()
        );
        assert_eq!(job["state"], "FAILED", "{label}: {job}");
        assert_eq!(job["error"]["code"], "JOB_RECORD_INVALID", "{label}: {job}");
        assert_eq!(job["error"]["step"], "validate", "{label}: {job}");
        assert_eq!(
            job["attempts"], 1,
            "{label}: a bad record is not retried: {job}"
        );
        assert!(
            contained < CONTAIN_BOUND,
            "{label}: contained after {contained:?}"
        );
    }
    assert!(
        !escape.exists(),
        "the worker wrote outside the job's scratch: {}",
        escape.display()
    );

    let id = submit().await;
    let job = d.client.wait_terminal(&id).await;
    assert_eq!(job["state"], "COMPLETED", "an ordinary job after: {job}");
    let pending = redis_cli(&d, &["XPENDING", "mediahost:queue", "workers"]);
    assert_eq!(
        pending.lines().next(),
        Some("0"),
        "a queue entry is still held (the unreadable record's?): {pending}"
    );
}
