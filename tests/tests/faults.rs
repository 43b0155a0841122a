//! Faults with real processes: object storage gone for 20 s, `redis-server` killed and restarted
//! (append-only file on) during a burst of submissions, and 1,000 concurrent submissions. For
//! each: jobs submitted (answered 202), completed, lost and duplicated.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mediahost_e2e::client::Client;
use mediahost_e2e::deployment::{Deployment, Setup, wait_for_log};
use mediahost_e2e::host::presets_dir;
use mediahost_e2e::{media, process};
use serde_json::{Value, json};

/// The job every fault test submits many times over. The result cache would answer all but the
/// first at once; these tests are about the queue and the workers, so every job runs.
fn convert(uri: &str) -> Value {
    json!({"preset": "audio-convert", "inputs": {"main": uri}, "params": {"codec": "wav"}, "cache": false})
}

/// Waits (bounded overall by `limit`) for every job to finish; returns (completed, other
/// terminal states, duplicated). Jobs finish in queue order, not in the order of `ids`, so this
/// polls the unfinished ones in rounds rather than waiting on each in turn.
async fn tally(client: &Client, ids: &[String], limit: Duration) -> (usize, Vec<String>, usize) {
    let started = Instant::now();
    let mut open: Vec<&String> = ids.iter().collect();
    let mut finished: Vec<(String, Value)> = Vec::new();
    while !open.is_empty() {
        let mut still = Vec::new();
        for id in open {
            let job = client.job(id).await;
            match job["state"].as_str() {
                Some("PENDING" | "PROCESSING") => still.push(id),
                _ => finished.push((id.clone(), job)),
            }
        }
        open = still;
        assert!(
            started.elapsed() < limit,
            "{} jobs unfinished after {limit:?}, e.g. {:?}",
            open.len(),
            open.first()
        );
        if !open.is_empty() {
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
    let mut completed = 0;
    let mut other = Vec::new();
    let mut duplicated = 0;
    for (id, job) in finished {
        if job["state"] == "COMPLETED" {
            completed += 1;
        } else {
            other.push(format!("{id}: {}", job["state"]));
        }
        let log = client
            .get_json(&format!("/v1/jobs/{id}/logs"))
            .await
            .to_string();
        if log.matches("\"completed\"").count() > 1 {
            duplicated += 1;
        }
    }
    (completed, other, duplicated)
}

#[tokio::test]
async fn jobs_survive_twenty_seconds_without_storage() {
    let mut d = Deployment::start_with(
        "storage-outage",
        &presets_dir(),
        &["--max-attempts", "10"],
        Setup {
            s3: true,
            ..Setup::default()
        },
    )
    .await;
    let f = process::fixture_dir("storage-outage-media");
    let uri = d
        .client
        .upload(&media::sine(&f.path().join("t.wav"), 1.0))
        .await;
    let mut ids = Vec::new();
    for _ in 0..6 {
        ids.push(d.client.submit_ok(&convert(&uri)).await);
    }
    d.s3.as_mut().unwrap().stop();
    let worker = d.worker(
        "worker-a",
        &["--concurrency", "2", "--retry-base-ms", "500"],
    );
    // A worker loads every released preset before it takes jobs; on 2 cores shared with the
    // other fault tests that can take a while, and it is not what this test measures.
    wait_for_log(
        worker.log_path(),
        &["workers started"],
        Duration::from_secs(120),
    )
    .await
    .unwrap_or_else(|| panic!("worker never started: {}", worker.log_tail(20)));
    let down = Instant::now();
    // Wait until the outage is felt, keep storage away for 20 s, then bring it back.
    let started = Instant::now();
    loop {
        let job = d.client.job(&ids[0]).await;
        if job["history"].to_string().contains("STORAGE_FAILED") {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no retry seen: {job}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let ready = d.client.get("/readyz").await;
    assert_eq!(ready.status(), 503, "not ready without storage");
    let body: Value = ready.json().await.unwrap();
    assert_eq!(body["redis"], "ok", "{body}");
    // "storage failed: ..." or, when the S3 client is still retrying, "did not answer within 2 s".
    let storage = body["storage"].as_str().unwrap();
    assert!(storage != "ok" && storage.contains("storage"), "{body}");
    tokio::time::sleep(Duration::from_secs(20).saturating_sub(down.elapsed())).await;
    d.s3.as_mut().unwrap().resume();
    let (completed, other, duplicated) = tally(&d.client, &ids, Duration::from_secs(180)).await;
    let mut retries = 0;
    for id in &ids {
        retries += d.client.job(id).await["history"]
            .as_array()
            .map(|h| h.iter().filter(|t| t["code"] == "STORAGE_FAILED").count())
            .unwrap_or(0);
    }
    eprintln!(
        "[storage outage 20 s] submitted {}, completed {completed}, lost {}, duplicated {duplicated}, retries {retries}",
        ids.len(),
        ids.len() - completed - other.len()
    );
    assert_eq!(completed, ids.len(), "not completed: {other:?}");
    assert_eq!(duplicated, 0);
    assert_eq!(d.client.get("/readyz").await.status(), 200);

    let metrics = d.client.get("/metrics").await.text().await.unwrap();
    let value = |series: &str| -> f64 {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {series} in:\n{metrics}"))
    };
    assert_eq!(
        value(
            r#"mediahost_jobs_finished_total{state="COMPLETED",preset="audio-convert",version="1.1.0"}"#
        ),
        6.0
    );
    assert_eq!(value("mediahost_job_retries_total"), retries as f64);
    // Every attempt that ended (completed or retried) is one run-time observation.
    assert_eq!(
        value(r#"mediahost_job_run_seconds_count{preset="audio-convert"}"#),
        (ids.len() + retries) as f64
    );
    assert_eq!(
        value(r#"mediahost_job_failures_total{code="STORAGE_FAILED"}"#),
        retries as f64
    );
    assert!(
        value("mediahost_ffmpeg_cpu_seconds_total") > 0.0,
        "{metrics}"
    );
    assert!(
        metrics.contains("mediahost_queue_depth{priority=\"high\"} 0"),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_restart_during_a_burst_loses_no_accepted_job() {
    let mut d = Deployment::start_with(
        "redis-restart",
        &presets_dir(),
        &[],
        Setup {
            durable_redis: true,
            ..Setup::default()
        },
    )
    .await;
    let f = process::fixture_dir("redis-restart-media");
    let uri = d
        .client
        .upload(&media::sine(&f.path().join("t.wav"), 0.3))
        .await;
    let _worker = d.worker("worker-a", &["--concurrency", "2"]);

    let body = Arc::new(convert(&uri));
    let url = d.client.url("/v1/jobs");
    let http = d.client.http().clone();
    let burst = tokio::spawn(async move {
        let mut accepted = Vec::new();
        let mut refused = 0;
        for _ in 0..200 {
            match http.post(&url).json(&*body).send().await {
                Ok(r) if r.status() == 202 => {
                    let v: Value = r.json().await.unwrap();
                    accepted.push(v["id"].as_str().unwrap().to_owned());
                }
                Ok(r) => {
                    assert_eq!(r.status(), 503, "an outage is answered 503");
                    refused += 1;
                }
                Err(_) => refused += 1,
            }
            tokio::time::sleep(Duration::from_millis(15)).await;
        }
        (accepted, refused)
    });
    tokio::time::sleep(Duration::from_millis(800)).await;
    let redis = &mut d.redis;
    tokio::task::block_in_place(|| redis.restart(Duration::from_secs(1)));
    let (accepted, refused) = burst.await.unwrap();
    let (completed, other, duplicated) =
        tally(&d.client, &accepted, Duration::from_secs(300)).await;
    eprintln!(
        "[redis restart] submitted 200: accepted {}, refused during the outage {refused}; completed {completed}, lost {}, duplicated {duplicated}",
        accepted.len(),
        accepted.len() - completed - other.len()
    );
    assert!(refused > 0, "the restart fell inside the burst");
    assert_eq!(completed, accepted.len(), "not completed: {other:?}");
    assert_eq!(duplicated, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_thousand_concurrent_submissions_all_finish_once() {
    let d = Deployment::start("thousand", &presets_dir(), &[]).await;
    let f = process::fixture_dir("thousand-media");
    let uri = d
        .client
        .upload(&media::sine(&f.path().join("t.wav"), 0.1))
        .await;
    let _worker = d.worker("worker-a", &["--concurrency", "4"]);
    let body = Arc::new(convert(&uri));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..1000 {
        let http = d.client.http().clone();
        let url = d.client.url("/v1/jobs");
        let body = body.clone();
        tasks.push(tokio::spawn(async move {
            let r = http.post(&url).json(&*body).send().await.expect("submit");
            let status = r.status();
            let v: Value = r.json().await.unwrap();
            assert_eq!(status, 202, "{v}");
            v["id"].as_str().unwrap().to_owned()
        }));
    }
    let mut ids = Vec::new();
    for t in tasks {
        ids.push(t.await.unwrap());
    }
    let submitted_in = started.elapsed();
    let unique: HashSet<&String> = ids.iter().collect();
    assert_eq!(unique.len(), 1000, "every submission made its own job");
    let (completed, other, duplicated) = tally(&d.client, &ids, Duration::from_secs(900)).await;
    eprintln!(
        "[1000 concurrent] submitted 1000 in {submitted_in:?}; completed {completed}, lost {}, duplicated {duplicated}; all finished after {:?}",
        1000 - completed - other.len(),
        started.elapsed()
    );
    assert_eq!(completed, 1000, "not completed: {other:?}");
    assert_eq!(duplicated, 0);
}
