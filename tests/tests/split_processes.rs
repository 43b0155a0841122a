//! The API and workers as separate processes on one Redis and one data directory: a job waits in
//! the queue until a worker exists, and a worker killed with SIGKILL in the middle of a job does
//! not lose it: another worker reclaims it and completes it, once.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use mediahost_e2e::deployment::{Deployment, wait_for_state};
use mediahost_e2e::host::presets_dir;
use mediahost_e2e::media;
use serde_json::json;

async fn deploy(label: &str) -> Deployment {
    Deployment::start(label, &presets_dir(), &[]).await
}

fn worker(d: &Deployment, name: &str, reclaim_after_s: &str) -> mediahost_e2e::process::Daemon {
    d.worker(
        name,
        &["--reclaim-after-s", reclaim_after_s, "--concurrency", "1"],
    )
}

#[tokio::test]
async fn a_job_waits_for_a_worker_process_and_completes_on_it() {
    let d = deploy("split").await;
    let speech = media::speech(&d.dir.path().join("speech.wav"));
    let uri = d.client.upload(&speech).await;
    let id = d
        .client
        .submit_ok(&json!({"preset": "audio-convert", "inputs": {"main": uri}, "params": {"codec": "mp3"}}))
        .await;

    tokio::time::sleep(Duration::from_secs(1)).await;
    let waiting = d.client.job(&id).await;
    assert_eq!(
        waiting["state"], "PENDING",
        "the API process must not run jobs: {waiting}"
    );

    let _worker = worker(&d, "worker-a", "30");
    let job = d.client.wait_terminal(&id).await;
    assert_eq!(job["state"], "COMPLETED", "{job}\n{}", d.api.log_tail(20));
    assert_eq!(job["attempts"], 1);
    assert_eq!(job["outputs"][0]["codecs"][0], "mp3");
}

#[tokio::test]
async fn a_killed_worker_s_job_is_reclaimed_and_completed_once() {
    let d = deploy("reclaim").await;
    // Long enough that the first worker is surely inside ffmpeg when it is killed.
    let long = media::pink_noise(&d.dir.path().join("long.wav"), 300, 0.3);
    let uri = d.client.upload(&long).await;
    let id = d
        .client
        .submit_ok(&json!({"preset": "audio-convert", "inputs": {"main": uri}, "params": {"codec": "opus"}}))
        .await;

    let mut first = worker(&d, "worker-a", "3");
    wait_for_state(&d.client, &id, "PROCESSING", Duration::from_secs(30)).await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(
        d.client.job(&id).await["state"],
        "PROCESSING",
        "killed too late to test anything"
    );
    // SAFETY: kill(2) on our own child.
    unsafe {
        libc::kill(first.pid() as libc::pid_t, libc::SIGKILL);
    }
    let killed_at = Instant::now();
    while first.exited().is_none() {
        assert!(
            killed_at.elapsed() < Duration::from_secs(5),
            "worker-a survived SIGKILL"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // Its ffmpeg dies with it (PDEATHSIG), instead of running on as an orphan.
    while !mediahost_e2e::process::processes_mentioning("ffmpeg", &id).is_empty() {
        // Its encode has seconds left to run; an orphan would outlive this bound.
        assert!(
            killed_at.elapsed() < Duration::from_millis(1500),
            "the killed worker's ffmpeg is still running"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let second = worker(&d, "worker-b", "3");
    let job = d.client.wait_terminal(&id).await;
    let recovered_in = killed_at.elapsed();
    assert_eq!(job["state"], "COMPLETED", "{job}\n{}", second.log_tail(30));
    assert_eq!(job["attempts"], 2, "one attempt on each worker: {job}");
    assert_eq!(job["outputs"].as_array().map(Vec::len), Some(1), "{job}");
    let logs = d.client.get_json(&format!("/v1/jobs/{id}/logs")).await;
    let text = logs.to_string();
    assert!(
        text.contains("reclaimed"),
        "the reclaim is in the job log: {text}"
    );
    assert_eq!(
        text.matches("\"completed\"").count(),
        1,
        "completed once: {text}"
    );
    eprintln!(
        "[reclaim] killed worker's job completed on another worker {recovered_in:?} after the kill"
    );

    // The surviving worker removed its own scratch directory; only the killed one's may remain.
    let left: Vec<PathBuf> = d.scratch_dirs();
    assert!(
        left.iter().all(|p| p.to_string_lossy().ends_with("-1")),
        "the surviving attempt left scratch behind: {left:?}"
    );
}
