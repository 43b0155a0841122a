//! The job lifecycle a user drives: cancelling a pending and a running job, idempotent
//! submission, priorities, and a job whose retries run out becoming DEAD with its history.

use std::time::{Duration, Instant};

use mediahost_e2e::client::{assert_completed, expect_problem, json_body};
use mediahost_e2e::deployment::{Deployment, Setup, wait_for_state};
use mediahost_e2e::host::presets_dir;
use mediahost_e2e::{client, media, process};
use reqwest::StatusCode;
use serde_json::{Value, json};

async fn cancel(d: &Deployment, id: &str) -> reqwest::Response {
    d.client
        .http()
        .post(d.client.url(&format!("/v1/jobs/{id}/cancel")))
        .send()
        .await
        .expect("POST cancel")
}

/// A job that really runs: these tests submit the same work many times over, which the result
/// cache would otherwise answer at once.
fn convert(uri: &str, codec: &str) -> Value {
    json!({"preset": "audio-convert", "inputs": {"main": uri}, "params": {"codec": codec}, "cache": false})
}

#[tokio::test]
async fn a_pending_job_is_cancelled_at_once_and_never_runs() {
    let d = Deployment::start("cancel-pending", &presets_dir(), &[]).await;
    let f = process::fixture_dir("cancel-pending-media");
    let uri = d
        .client
        .upload(&media::sine(&f.path().join("t.wav"), 1.0))
        .await;
    let id = d.client.submit_ok(&convert(&uri, "flac")).await;
    let answer = json_body(cancel(&d, &id).await, StatusCode::OK, "cancel").await;
    assert_eq!(answer["state"], "CANCELLED", "{answer}");

    let _worker = d.worker("worker-a", &["--concurrency", "1"]);
    let other = d.client.submit_ok(&convert(&uri, "flac")).await;
    assert_completed(&d.client.wait_terminal(&other).await);
    let job = d.client.job(&id).await;
    assert_eq!(job["state"], "CANCELLED", "{job}");
    let log = d
        .client
        .get_json(&format!("/v1/jobs/{id}/logs"))
        .await
        .to_string();
    assert!(
        !log.contains("started on"),
        "a cancelled job never starts: {log}"
    );
    expect_problem(cancel(&d, &id).await, 409, "JOB_NOT_CANCELLABLE").await;
}

#[tokio::test]
async fn a_running_job_is_cancelled_with_its_ffmpeg_killed_and_scratch_removed() {
    let d = Deployment::start("cancel-running", &presets_dir(), &[]).await;
    let f = process::fixture_dir("cancel-running-media");
    let long = media::pink_noise(&f.path().join("long.wav"), 300, 1.0);
    let uri = d.client.upload(&long).await;
    let _worker = d.worker("worker-a", &["--concurrency", "1"]);
    let id = d.client.submit_ok(&convert(&uri, "opus")).await;
    wait_for_state(&d.client, &id, "PROCESSING", Duration::from_secs(30)).await;
    // Wait until ffmpeg itself runs (its command line holds the job's scratch directory).
    let started = Instant::now();
    while ffmpeg_of(&id).is_empty() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "ffmpeg never started"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let asked = Instant::now();
    let answer = json_body(cancel(&d, &id).await, StatusCode::ACCEPTED, "cancel").await;
    assert_eq!(answer["cancel_requested"], true, "{answer}");
    let job = wait_for_state(&d.client, &id, "CANCELLED", Duration::from_secs(10)).await;
    let took = asked.elapsed();
    assert!(
        job["outputs"].as_array().is_none_or(|o| o.is_empty()),
        "{job}"
    );
    let gone = Instant::now();
    while !ffmpeg_of(&id).is_empty() || !d.scratch_dirs().is_empty() {
        assert!(
            gone.elapsed() < Duration::from_secs(5),
            "left behind: ffmpeg {:?}, scratch {:?}",
            ffmpeg_of(&id),
            d.scratch_dirs()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    eprintln!("[cancel] running job cancelled {took:?} after the request; ffmpeg and scratch gone");
}

fn ffmpeg_of(id: &str) -> Vec<u32> {
    process::processes_mentioning("ffmpeg", id)
}

#[tokio::test]
async fn a_repeated_idempotency_key_returns_the_original_job() {
    let d = Deployment::start("idempotency", &presets_dir(), &[]).await;
    let f = process::fixture_dir("idempotency-media");
    let uri = d
        .client
        .upload(&media::sine(&f.path().join("t.wav"), 1.0))
        .await;
    let body = convert(&uri, "flac");
    let post = |key: &'static str, body: &Value| {
        d.client
            .http()
            .post(d.client.url("/v1/jobs"))
            .header("idempotency-key", key)
            .json(body)
            .send()
    };
    let first = json_body(
        post("order-42", &body).await.unwrap(),
        StatusCode::ACCEPTED,
        "first",
    )
    .await;
    let again = json_body(
        post("order-42", &body).await.unwrap(),
        StatusCode::OK,
        "repeat",
    )
    .await;
    assert_eq!(
        first["id"], again["id"],
        "the repeat answers the original job"
    );
    let p = expect_problem(
        post("order-42", &convert(&uri, "mp3")).await.unwrap(),
        422,
        "IDEMPOTENCY_KEY_REUSED",
    )
    .await;
    assert!(
        p.body["detail"]
            .as_str()
            .unwrap()
            .contains(first["id"].as_str().unwrap())
    );
    let other = json_body(
        post("order-43", &body).await.unwrap(),
        StatusCode::ACCEPTED,
        "new key",
    )
    .await;
    assert_ne!(other["id"], first["id"]);
}

#[tokio::test]
async fn high_priority_jobs_run_before_normal_before_low() {
    let d = Deployment::start("priority", &presets_dir(), &[]).await;
    let f = process::fixture_dir("priority-media");
    let uri = d
        .client
        .upload(&media::sine(&f.path().join("t.wav"), 0.5))
        .await;
    let mut submitted = Vec::new();
    for priority in [
        "low", "normal", "high", "low", "high", "normal", "low", "high", "normal",
    ] {
        let mut body = convert(&uri, "wav");
        body["priority"] = json!(priority);
        submitted.push((priority, d.client.submit_ok(&body).await));
    }
    let _worker = d.worker("worker-a", &["--concurrency", "1"]);
    let mut started = Vec::new();
    for (priority, id) in &submitted {
        let job = d.client.wait_terminal(id).await;
        assert_completed(&job);
        started.push((
            job["timings"]["started_at"].as_str().unwrap().to_owned(),
            *priority,
            id.clone(),
        ));
    }
    started.sort();
    let order: Vec<&str> = started.iter().map(|(_, p, _)| *p).collect();
    assert_eq!(
        order,
        [
            "high", "high", "high", "normal", "normal", "normal", "low", "low", "low"
        ],
        "run order"
    );
    // FIFO within a priority.
    for p in ["high", "normal", "low"] {
        let by_submit: Vec<&String> = submitted
            .iter()
            .filter(|(q, _)| *q == p)
            .map(|(_, id)| id)
            .collect();
        let by_start: Vec<&String> = started
            .iter()
            .filter(|(_, q, _)| *q == p)
            .map(|(_, _, id)| id)
            .collect();
        assert_eq!(by_submit, by_start, "{p} jobs ran in submission order");
    }
}

#[tokio::test]
async fn a_job_whose_storage_stays_down_is_retried_with_backoff_then_dead() {
    let mut d = Deployment::start_with(
        "dead",
        &presets_dir(),
        &["--max-attempts", "3"],
        Setup {
            s3: true,
            ..Setup::default()
        },
    )
    .await;
    let f = process::fixture_dir("dead-media");
    let uri = d
        .client
        .upload(&media::sine(&f.path().join("t.wav"), 1.0))
        .await;
    let id = d.client.submit_ok(&convert(&uri, "flac")).await;
    d.s3.as_mut().unwrap().stop();
    let _worker = d.worker(
        "worker-a",
        &["--concurrency", "1", "--retry-base-ms", "300"],
    );
    let job = d.client.wait_terminal(&id).await;
    assert_eq!(job["state"], "DEAD", "{job:#}");
    assert_eq!(job["error"]["code"], "STORAGE_FAILED", "{job:#}");
    assert_eq!(job["attempts"], 3, "{job:#}");
    let states: Vec<&str> = job["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["state"].as_str().unwrap())
        .collect();
    assert_eq!(
        states,
        [
            "PENDING",
            "PROCESSING",
            "PENDING",
            "PROCESSING",
            "PENDING",
            "PROCESSING",
            "DEAD"
        ],
        "{job:#}"
    );
    let retries: Vec<&Value> = job["history"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["state"] == "PENDING" && t["code"] == "STORAGE_FAILED")
        .collect();
    assert_eq!(retries.len(), 2, "{job:#}");
    assert!(
        retries
            .iter()
            .all(|t| t["note"].as_str().unwrap().starts_with("retry in"))
    );
}

#[tokio::test]
async fn jobs_are_listed_newest_first_by_state_and_paged() {
    let d = Deployment::start("list", &presets_dir(), &[]).await;
    let f = process::fixture_dir("list-media");
    let uri = d
        .client
        .upload(&media::sine(&f.path().join("t.wav"), 0.5))
        .await;
    let mut ids = Vec::new();
    for _ in 0..5 {
        ids.push(d.client.submit_ok(&convert(&uri, "wav")).await);
    }
    for id in &ids[1..3] {
        json_body(cancel(&d, id).await, StatusCode::OK, "cancel").await;
    }
    let listed = d.client.get_json("/v1/jobs?state=cancelled").await;
    let cancelled: Vec<&str> = listed["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["id"].as_str().unwrap())
        .collect();
    assert_eq!(cancelled.len(), 2, "{listed}");
    assert!(
        cancelled.iter().all(|c| ids[1..3].iter().any(|i| i == c)),
        "{listed}"
    );

    let mut seen = Vec::new();
    let mut path = "/v1/jobs?limit=2".to_owned();
    loop {
        let page = d.client.get_json(&path).await;
        let jobs = page["jobs"].as_array().unwrap();
        assert!(jobs.len() <= 2, "{page}");
        seen.extend(jobs.iter().map(|j| j["id"].as_str().unwrap().to_owned()));
        match page["next_cursor"].as_str() {
            Some(cursor) => path = format!("/v1/jobs?limit=2&cursor={cursor}"),
            None => break,
        }
    }
    let mut newest_first = ids.clone();
    newest_first.reverse();
    assert_eq!(seen, newest_first, "every job once, newest first");
    expect_problem(
        d.client.get("/v1/jobs?state=LOST").await,
        400,
        "REQUEST_MALFORMED",
    )
    .await;
}

#[tokio::test]
async fn job_events_stream_each_change_until_the_job_finishes() {
    let d = Deployment::start("events", &presets_dir(), &[]).await;
    let f = process::fixture_dir("events-media");
    let uri = d
        .client
        .upload(&media::sine(&f.path().join("t.wav"), 2.0))
        .await;
    let id = d.client.submit_ok(&convert(&uri, "flac")).await;
    let stream = d.client.get(&format!("/v1/jobs/{id}/events")).await;
    assert_eq!(stream.status(), 200);
    assert!(
        stream.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let _worker = d.worker("worker-a", &["--concurrency", "1"]);
    // The stream ends by itself after the terminal state.
    let text = tokio::time::timeout(Duration::from_secs(60), stream.text())
        .await
        .expect("the stream ends when the job finishes")
        .unwrap();
    // Every event's data is the contract's job, and the last one is the job as GET shows it.
    let events: Vec<Value> = text
        .lines()
        .filter_map(|l| l.strip_prefix("data:"))
        .map(|d| serde_json::from_str::<Value>(d.trim()).unwrap())
        .collect();
    for event in &events {
        client::conforms::<mediahost_api::Job>(event, "an event's data");
    }
    let shown = d.client.job(&id).await;
    assert_eq!(
        events.last().map(client::without_download_urls),
        Some(client::without_download_urls(&shown)),
        "the last event vs GET /v1/jobs/{id}"
    );
    let states: Vec<String> = events
        .iter()
        .map(|e| e["state"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        states.first().map(String::as_str),
        Some("PENDING"),
        "{text}"
    );
    assert_eq!(
        states.last().map(String::as_str),
        Some("COMPLETED"),
        "{text}"
    );
    assert!(states.iter().any(|s| s == "PROCESSING"), "{text}");
    assert!(text.contains("event: state"), "{text}");
}

#[tokio::test]
async fn a_central_limit_caps_running_jobs_across_worker_processes() {
    let d = Deployment::start("central-limit", &presets_dir(), &[]).await;
    let f = process::fixture_dir("central-limit-media");
    let uri = d
        .client
        .upload(&media::sine(&f.path().join("t.wav"), 3.0))
        .await;
    let mut ids = Vec::new();
    for _ in 0..4 {
        ids.push(d.client.submit_ok(&convert(&uri, "flac")).await);
    }
    // Four slots in two processes, one permit.
    let args = ["--concurrency", "2", "--max-running", "1"];
    let _workers = [d.worker("worker-a", &args), d.worker("worker-b", &args)];
    let mut spans = Vec::new();
    for id in &ids {
        let job = d.client.wait_terminal(id).await;
        assert_completed(&job);
        spans.push((
            job["timings"]["started_at"].as_str().unwrap().to_owned(),
            job["timings"]["finished_at"].as_str().unwrap().to_owned(),
        ));
    }
    spans.sort();
    for pair in spans.windows(2) {
        assert!(pair[0].1 <= pair[1].0, "two jobs ran at once: {pair:?}");
    }
}

#[tokio::test]
async fn a_failed_attempt_keeps_its_scratch_for_a_while() {
    let d = Deployment::start("keep-failed", &presets_dir(), &[]).await;
    let f = process::fixture_dir("keep-failed-media");
    let uri = d
        .client
        .upload(&media::not_media(&f.path().join("notes.txt")))
        .await;
    let _worker = d.worker("worker-a", &["--concurrency", "1", "--keep-failed-s", "3"]);
    let id = d.client.submit_ok(&convert(&uri, "flac")).await;
    let job = d.client.wait_terminal(&id).await;
    assert_eq!(job["state"], "FAILED", "{job}");
    let kept = d.data_dir().join(format!("scratch/failed/{id}-1"));
    assert!(
        kept.join("in/main").is_file(),
        "the failed attempt's input is kept at {}",
        kept.display()
    );
    let log = d
        .client
        .get_json(&format!("/v1/jobs/{id}/logs"))
        .await
        .to_string();
    assert!(log.contains("is kept for 3s"), "{log}");
    let started = Instant::now();
    while kept.exists() {
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "kept scratch never removed"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
