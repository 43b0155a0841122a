//! A deployment of separate processes on one Redis and one data directory: a `mediahost api`
//! process and as many `mediahost worker` processes as a test starts, the way an operator runs
//! the host on several machines (here with local storage, so they share the data directory).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::client::Client;
use crate::host::mediahost_binary;
use crate::process::{self, Daemon};
use crate::redis::Redis;

/// The admin token every deployment's processes are started with.
pub const ADMIN_TOKEN: &str = "e2e-admin-token";

pub struct Deployment {
    pub redis: Redis,
    pub dir: tempfile::TempDir,
    pub api: Daemon,
    pub client: Client,
    base_url: String,
    presets_dir: PathBuf,
}

impl Deployment {
    /// Starts Redis and an API process loading `presets_dir`, and waits until it answers.
    pub async fn start(label: &str, presets_dir: &Path, api_args: &[&str]) -> Deployment {
        let redis = Redis::start();
        let dir = process::fixture_dir(label);
        let port = process::free_port();
        let listen = format!("127.0.0.1:{port}");
        let base_url = format!("http://{listen}");
        let mut command = command("api", &redis, &dir.path().join("data"), presets_dir);
        command.args(["--listen", &listen]).args(api_args);
        let api = Daemon::spawn("mediahost api", command, &dir.path().join("api.log"));
        let client = Client::new(base_url.clone(), api.log_path().to_owned(), vec![]);
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
            base_url,
            presets_dir: presets_dir.to_owned(),
        }
    }

    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Starts a worker process named `name` (its log is `<name>.log`) with `args`.
    pub fn worker(&self, name: &str, args: &[&str]) -> Daemon {
        let mut command = command("worker", &self.redis, &self.data_dir(), &self.presets_dir);
        command.args(args);
        Daemon::spawn(name, command, &self.dir.path().join(format!("{name}.log")))
    }

    /// `mediahost <args>` against this deployment (for the CLI), with its URL and token.
    pub fn cli(&self, args: &[&str]) -> std::process::Output {
        Command::new(mediahost_binary())
            .args(args)
            .args(["--url", &self.base_url, "--admin-token", ADMIN_TOKEN])
            .output()
            .expect("run the mediahost CLI")
    }

    pub fn scratch_dirs(&self) -> Vec<PathBuf> {
        std::fs::read_dir(self.data_dir().join("scratch"))
            .map(|d| d.flatten().map(|e| e.path()).collect())
            .unwrap_or_default()
    }
}

fn command(role: &str, redis: &Redis, data: &Path, presets_dir: &Path) -> Command {
    let mut cmd = Command::new(mediahost_binary());
    cmd.arg(role)
        .args(["--redis", &redis.url()])
        .arg("--data-dir")
        .arg(data)
        .arg("--presets-dir")
        .arg(presets_dir)
        .args(["--admin-token", ADMIN_TOKEN])
        .env("RUST_LOG", "info");
    cmd
}

/// Polls the job until it is in `state`; panics after `limit`.
pub async fn wait_for_state(client: &Client, id: &str, state: &str, limit: Duration) -> Value {
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

/// Waits until a line of the log at `path` contains every one of `needles`; returns how long
/// that took, or `None` after `limit`. Polls every 5 ms, so the time is good to a few ms.
pub async fn wait_for_log(path: &Path, needles: &[&str], limit: Duration) -> Option<Duration> {
    let started = Instant::now();
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        if text
            .lines()
            .any(|line| needles.iter().all(|n| line.contains(n)))
        {
            return Some(started.elapsed());
        }
        if started.elapsed() >= limit {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// A copy of a built component with its version changed in place, for publishing many versions
/// of one preset. The preset's `describe()` strings sit next to each other in the component's
/// data, so `name` followed by `from` must occur exactly once; `to` must be as long as `from`
/// (the bytes are patched, not re-encoded). Each copy is a distinct component with its own hash.
pub fn with_version(component: &[u8], name: &str, from: &str, to: &str) -> Vec<u8> {
    assert_eq!(from.len(), to.len(), "versions must have the same length");
    let needle = format!("{name}{from}").into_bytes();
    let at: Vec<usize> = component
        .windows(needle.len())
        .enumerate()
        .filter(|(_, w)| *w == needle.as_slice())
        .map(|(i, _)| i)
        .collect();
    assert_eq!(
        at.len(),
        1,
        "'{name}{from}' must occur once in the component to patch its version"
    );
    let mut out = component.to_vec();
    let start = at[0] + name.len();
    out[start..start + to.len()].copy_from_slice(to.as_bytes());
    out
}
