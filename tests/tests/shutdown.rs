//! Stopping a worker is never a job's failure, and a job's time budget holds: separate API and
//! worker processes (each worker in its own process group, as systemd and a terminal run it),
//! signalled the ordinary ways while ffmpeg runs. Prints a row per case: what was done, the
//! outcome, and the time it took to contain.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use mediahost_e2e::deployment::{ADMIN_TOKEN, Deployment, wait_for_state};
use mediahost_e2e::host::{mediahost_binary, presets_dir};
use mediahost_e2e::media;
use mediahost_e2e::process::{self, Daemon};
use serde_json::{Value, json};

/// Far longer than any case here waits: a hand-back must not wait for a reclaim.
const RECLAIM_AFTER_S: &str = "120";

/// A worker process leading its own process group (pgid = its pid), so a group signal to it
/// does not reach the test.
fn worker(d: &Deployment, name: &str, args: &[&str]) -> Daemon {
    let mut command = Command::new(mediahost_binary());
    command
        .arg("worker")
        .args(["--redis", &d.redis.url()])
        .arg("--data-dir")
        .arg(d.data_dir())
        .arg("--presets-dir")
        .arg(presets_dir())
        .args(["--admin-token", ADMIN_TOKEN])
        .args(["--concurrency", "1", "--reclaim-after-s", RECLAIM_AFTER_S])
        .args(args)
        .env("RUST_LOG", "info");
    std::os::unix::process::CommandExt::process_group(&mut command, 0);
    Daemon::spawn(name, command, &d.dir.path().join(format!("{name}.log")))
}

fn signal(target: i32, sig: i32) {
    // SAFETY: kill(2) on our own child (or its process group).
    assert_eq!(
        unsafe { libc::kill(target, sig) },
        0,
        "kill({target}, {sig})"
    );
}

/// Waits until ffmpeg runs for the job (its command line holds the job's scratch directory).
async fn ffmpeg_running(id: &str) {
    let started = Instant::now();
    while process::processes_mentioning("ffmpeg", id).is_empty() {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "ffmpeg never started"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits for the process to exit; returns how long that took.
async fn exits(daemon: &mut Daemon, limit: Duration) -> Duration {
    let started = Instant::now();
    while daemon.exited().is_none() {
        assert!(
            started.elapsed() < limit,
            "{} did not exit within {limit:?}:\n{}",
            daemon.name(),
            daemon.log_tail(30)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    started.elapsed()
}

/// Polls the job until it is terminal, asserting on the way that it is never FAILED or DEAD.
async fn completes(d: &Deployment, id: &str, limit: Duration) -> Value {
    let started = Instant::now();
    loop {
        let job = d.client.job(id).await;
        let state = job["state"].as_str().unwrap_or_default().to_owned();
        assert!(
            state != "FAILED" && state != "DEAD",
            "stopping a worker failed the job: {job:#}"
        );
        if state == "COMPLETED" {
            return job;
        }
        assert!(
            started.elapsed() < limit,
            "job {id} did not complete within {limit:?}: {job:#}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn ever(job: &Value, state: &str) -> bool {
    job["history"]
        .as_array()
        .is_some_and(|h| h.iter().any(|t| t["state"] == state))
}

async fn submit(d: &Deployment, preset: &str, seconds: u32, params: Value) -> String {
    let input: PathBuf = media::pink_noise(
        &d.dir.path().join(format!("noise-{seconds}.wav")),
        seconds,
        0.3,
    );
    let uri = d.client.upload(&input).await;
    d.client
        .submit_ok(&json!({"preset": preset, "inputs": {"main": uri}, "params": params}))
        .await
}

#[tokio::test]
async fn a_group_sigterm_during_ffmpeg_never_fails_the_job() {
    let d = Deployment::start("shutdown-group", &presets_dir(), &[]).await;
    let id = submit(&d, "loudness-normalize", 240, json!({})).await;
    let grace = 5;
    let mut first = worker(&d, "worker-a", &["--shutdown-grace-s", &grace.to_string()]);
    wait_for_state(&d.client, &id, "PROCESSING", Duration::from_secs(60)).await;
    ffmpeg_running(&id).await;

    let signalled = Instant::now();
    signal(-(first.pid() as i32), libc::SIGTERM);
    let exited = exits(&mut first, Duration::from_secs(grace + 10)).await;

    let job = d.client.job(&id).await;
    let job = if job["state"] == "COMPLETED" {
        job
    } else {
        assert_eq!(
            job["state"],
            "PENDING",
            "handed back at once: {job:#}\n{}",
            first.log_tail(30)
        );
        let _second = worker(&d, "worker-b", &[]);
        completes(&d, &id, Duration::from_secs(100)).await
    };
    let took = signalled.elapsed();
    assert!(!ever(&job, "FAILED") && !ever(&job, "DEAD"), "{job:#}");
    assert!(
        job["error"].is_null(),
        "a completed job carries no error: {job:#}"
    );
    eprintln!(
        "[shutdown] SIGTERM to the worker's process group during loudness-normalize's ffmpeg | \
         COMPLETED after {} attempt(s), never FAILED | worker exited {exited:?} after the signal \
         (grace {grace} s), job completed {took:?} after it",
        job["attempts"]
    );
}

#[tokio::test]
async fn a_job_longer_than_the_grace_is_handed_back_at_once_and_completed_by_another_worker() {
    let d = Deployment::start("shutdown-handback", &presets_dir(), &[]).await;
    let id = submit(&d, "audio-convert", 900, json!({"codec": "opus"})).await;
    let mut first = worker(&d, "worker-a", &["--shutdown-grace-s", "1"]);
    wait_for_state(&d.client, &id, "PROCESSING", Duration::from_secs(60)).await;
    ffmpeg_running(&id).await;

    // SIGINT (Ctrl-C) to the worker alone: its ffmpeg is untouched and outlasts the grace.
    let signalled = Instant::now();
    signal(first.pid() as i32, libc::SIGINT);
    let exited = exits(&mut first, Duration::from_secs(1 + 10)).await;
    let back = d.client.job(&id).await;
    assert_eq!(
        back["state"],
        "PENDING",
        "handed back: {back:#}\n{}",
        first.log_tail(30)
    );
    assert_eq!(
        back["attempts"], 0,
        "the stopped attempt does not count: {back:#}"
    );
    assert!(
        back["next_attempt_at"].is_null(),
        "queued at once: {back:#}"
    );
    let gone = Instant::now();
    while !process::processes_mentioning("ffmpeg", &id).is_empty() {
        assert!(
            gone.elapsed() < Duration::from_secs(5),
            "the stopped worker's ffmpeg still runs"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let _second = worker(&d, "worker-b", &[]);
    let taken = Instant::now();
    wait_for_state(&d.client, &id, "PROCESSING", Duration::from_secs(10)).await;
    let picked_up = taken.elapsed();
    assert!(
        picked_up < Duration::from_secs(10),
        "picked up well before --reclaim-after-s {RECLAIM_AFTER_S}"
    );
    let job = completes(&d, &id, Duration::from_secs(110)).await;
    assert_eq!(job["attempts"], 1, "{job:#}");
    eprintln!(
        "[shutdown] SIGINT to a worker whose job outlasts a 1 s grace | handed back PENDING, \
         attempts 0 | worker exited {exited:?} after the signal; the next worker took the job \
         {picked_up:?} after it started (reclaim-after {RECLAIM_AFTER_S} s); COMPLETED {:?} after \
         the signal",
        signalled.elapsed()
    );
}

#[tokio::test]
async fn a_job_over_its_time_budget_fails_job_timeout_with_ffmpeg_stopped_and_scratch_removed() {
    let d = Deployment::start("job-timeout", &presets_dir(), &[]).await;
    let id = submit(&d, "audio-convert", 900, json!({"codec": "opus"})).await;
    let budget = 3;
    let _worker = worker(&d, "worker-a", &["--job-timeout-s", &budget.to_string()]);
    wait_for_state(&d.client, &id, "PROCESSING", Duration::from_secs(60)).await;
    let started = Instant::now();
    let job = wait_for_state(&d.client, &id, "FAILED", Duration::from_secs(budget + 10)).await;
    let contained = started.elapsed();
    assert_eq!(job["error"]["code"], "JOB_TIMEOUT", "{job:#}");
    assert_eq!(job["attempts"], 1, "a timeout is not retried: {job:#}");
    let gone = Instant::now();
    while !process::processes_mentioning("ffmpeg", &id).is_empty()
        || d.scratch_dirs()
            .iter()
            .any(|p| p.to_string_lossy().contains(&id))
    {
        assert!(
            gone.elapsed() < Duration::from_secs(5),
            "left behind: ffmpeg {:?}, scratch {:?}",
            process::processes_mentioning("ffmpeg", &id),
            d.scratch_dirs()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    eprintln!(
        "[job timeout] 900 s of audio against --job-timeout-s {budget} | JOB_TIMEOUT | contained \
         {contained:?} after the attempt started; ffmpeg stopped, scratch removed"
    );
}

#[tokio::test]
async fn a_crashed_worker_s_scratch_is_swept_when_a_worker_starts() {
    let d = Deployment::start("scratch-sweep", &presets_dir(), &[]).await;
    let id = submit(&d, "audio-convert", 900, json!({"codec": "opus"})).await;
    let mut first = worker(&d, "worker-a", &[]);
    wait_for_state(&d.client, &id, "PROCESSING", Duration::from_secs(60)).await;
    ffmpeg_running(&id).await;
    // SIGKILL to the whole group: the worker and its ffmpeg die without cleaning up.
    signal(-(first.pid() as i32), libc::SIGKILL);
    exits(&mut first, Duration::from_secs(5)).await;
    let left = d.scratch_dirs();
    assert!(
        left.iter().any(|p| p.to_string_lossy().contains(&id)),
        "a killed worker leaves its scratch: {left:?}"
    );

    let started = Instant::now();
    let _second = worker(&d, "worker-b", &[]);
    while d
        .scratch_dirs()
        .iter()
        .any(|p| p.to_string_lossy().contains(&id))
    {
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "the crashed worker's scratch was not swept: {:?}",
            d.scratch_dirs()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    eprintln!(
        "[scratch sweep] worker SIGKILLed mid-job | its scratch removed {:?} after a new worker \
         started",
        started.elapsed()
    );
}
