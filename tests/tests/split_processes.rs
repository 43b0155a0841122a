//! The API and workers as separate processes on one Redis and one data directory: a job waits in
//! the queue until a worker exists, and a worker killed with SIGKILL in the middle of a job does
//! not lose it: another worker reclaims it and completes it, once.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use mediahost_e2e::client::Client;
use mediahost_e2e::host::{mediahost_binary, presets_dir};
use mediahost_e2e::media;
use mediahost_e2e::process::{self, Daemon};
use mediahost_e2e::redis::Redis;
use serde_json::{Value, json};

struct Deployment {
    redis: Redis,
    dir: tempfile::TempDir,
    api: Daemon,
    client: Client,
}

fn mediahost(role: &str, redis: &Redis, data: &Path, extra: &[&str]) -> Command {
    let mut cmd = Command::new(mediahost_binary());
    cmd.arg(role)
        .args(["--redis", &redis.url()])
        .arg("--data-dir")
        .arg(data)
        .arg("--presets-dir")
        .arg(presets_dir())
        .args(extra)
        .env("RUST_LOG", "info");
    cmd
}

async fn deploy(label: &str) -> Deployment {
    let redis = Redis::start();
    let dir = process::fixture_dir(label);
    let data = dir.path().join("data");
    let port = process::free_port();
    let listen = format!("127.0.0.1:{port}");
    let api = Daemon::spawn(
        "mediahost api",
        mediahost("api", &redis, &data, &["--listen", &listen]),
        &dir.path().join("api.log"),
    );
    let client = Client::new(
        format!("http://{listen}"),
        api.log_path().to_owned(),
        vec![],
    );
    let started = Instant::now();
    while client
        .http()
        .get(client.url("/healthz"))
        .send()
        .await
        .is_err()
    {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the API did not start: {}",
            api.log_tail(30)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Deployment {
        redis,
        dir,
        api,
        client,
    }
}

impl Deployment {
    fn worker(&self, name: &str, reclaim_after_s: &str) -> Daemon {
        Daemon::spawn(
            name,
            mediahost(
                "worker",
                &self.redis,
                &self.dir.path().join("data"),
                &["--reclaim-after-s", reclaim_after_s, "--concurrency", "1"],
            ),
            &self.dir.path().join(format!("{name}.log")),
        )
    }

    fn scratch_dirs(&self) -> Vec<PathBuf> {
        std::fs::read_dir(self.dir.path().join("data/scratch"))
            .map(|d| d.flatten().map(|e| e.path()).collect())
            .unwrap_or_default()
    }
}

async fn wait_for_state(client: &Client, id: &str, state: &str, limit: Duration) -> Value {
    let started = Instant::now();
    loop {
        let job = client.job(id).await;
        if job["state"] == state {
            return job;
        }
        assert!(
            started.elapsed() < limit,
            "job {id} did not reach {state} within {limit:?}: {job}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
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

    let _worker = d.worker("worker-a", "30");
    let job = d.client.wait_terminal(&id).await;
    assert_eq!(job["state"], "COMPLETED", "{job}\n{}", d.api.log_tail(20));
    assert_eq!(job["attempts"], 1);
    assert_eq!(job["outputs"][0]["codecs"][0], "mp3");
}

#[tokio::test]
async fn a_killed_worker_s_job_is_reclaimed_and_completed_once() {
    let d = deploy("reclaim").await;
    // Long enough that the first worker is surely inside ffmpeg when it is killed.
    let long = d.dir.path().join("long.wav");
    media::run(
        Command::new("ffmpeg")
            .args(["-hide_banner", "-loglevel", "error", "-f", "lavfi"])
            .args([
                "-i",
                "anoisesrc=color=pink:duration=300:sample_rate=48000:amplitude=0.3",
            ])
            .args(["-ac", "2", "-y"])
            .arg(&long),
        "make a 5-minute noise file",
    );
    let uri = d.client.upload(&long).await;
    let id = d
        .client
        .submit_ok(&json!({"preset": "audio-convert", "inputs": {"main": uri}, "params": {"codec": "opus"}}))
        .await;

    let mut first = d.worker("worker-a", "3");
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

    let second = d.worker("worker-b", "3");
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
