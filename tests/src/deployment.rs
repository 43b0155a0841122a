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
use crate::s3::S3Server;

/// The admin token every deployment's processes are started with.
pub const ADMIN_TOKEN: &str = "e2e-admin-token";

pub struct Deployment {
    pub redis: Redis,
    /// The S3-compatible server, for a deployment on S3 storage.
    pub s3: Option<S3Server>,
    pub dir: tempfile::TempDir,
    pub api: Daemon,
    pub client: Client,
    base_url: String,
    presets_dir: PathBuf,
}

/// What a deployment runs on.
#[derive(Default, Clone, Copy)]
pub struct Setup {
    /// Redis with an fsynced append-only file (it can be restarted without losing anything).
    pub durable_redis: bool,
    /// S3 storage on a private s3s-fs instead of the local directory.
    pub s3: bool,
}

const BUCKET: &str = "mediahost-e2e";

impl Deployment {
    /// Starts Redis and an API process loading `presets_dir`, and waits until it answers.
    pub async fn start(label: &str, presets_dir: &Path, api_args: &[&str]) -> Deployment {
        Self::start_with(label, presets_dir, api_args, Setup::default()).await
    }

    pub async fn start_with(
        label: &str,
        presets_dir: &Path,
        api_args: &[&str],
        setup: Setup,
    ) -> Deployment {
        let redis = if setup.durable_redis {
            Redis::start_durable()
        } else {
            Redis::start()
        };
        let s3 = setup.s3.then(|| {
            let server = S3Server::start();
            server.create_bucket(BUCKET);
            server
        });
        let dir = process::fixture_dir(label);
        let port = process::free_port();
        let listen = format!("127.0.0.1:{port}");
        let base_url = format!("http://{listen}");
        let mut command = command(
            "api",
            &redis,
            s3.as_ref(),
            &dir.path().join("data"),
            presets_dir,
        );
        command
            .args(["--listen", &listen])
            .args(webhook_allow_default(api_args))
            .args(api_args);
        let api = Daemon::spawn("mediahost api", command, &dir.path().join("api.log"));
        let client = Client::new(base_url.clone(), api.log_path().to_owned(), vec![]);
        let started = Instant::now();
        // Ready: its presets are loaded (they load in the background).
        while !client
            .http()
            .get(client.url("/readyz"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
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
            s3,
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

    /// Starts a worker process named `name` (its log is `<name>.log`) with `args` (and the
    /// loopback webhook allowance of [`webhook_allow_default`] unless they set one).
    pub fn worker(&self, name: &str, args: &[&str]) -> Daemon {
        let mut command = command(
            "worker",
            &self.redis,
            self.s3.as_ref(),
            &self.data_dir(),
            &self.presets_dir,
        );
        command.args(webhook_allow_default(args)).args(args);
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

/// `--webhook-allow 127.0.0.1/32`, where the tests' webhook receivers listen, unless `args`
/// set `--webhook-allow` themselves (a host refuses loopback receivers by default).
pub fn webhook_allow_default(args: &[&str]) -> &'static [&'static str] {
    if args.contains(&"--webhook-allow") {
        &[]
    } else {
        &["--webhook-allow", "127.0.0.1/32"]
    }
}

fn command(
    role: &str,
    redis: &Redis,
    s3: Option<&S3Server>,
    data: &Path,
    presets_dir: &Path,
) -> Command {
    let mut cmd = Command::new(mediahost_binary());
    cmd.arg(role)
        .args(["--redis", &redis.url()])
        .arg("--data-dir")
        .arg(data)
        .arg("--presets-dir")
        .arg(presets_dir)
        .args(["--admin-token", ADMIN_TOKEN])
        .env("RUST_LOG", "info");
    if let Some(s3) = s3 {
        cmd.args(["--storage", "s3", "--s3-endpoint", &s3.endpoint()])
            .args(["--s3-bucket", BUCKET, "--s3-path-style", "true"])
            .args(["--s3-region", crate::s3::REGION])
            .env("AWS_ACCESS_KEY_ID", s3.access_key())
            .env("AWS_SECRET_ACCESS_KEY", s3.secret_key())
            .env("AWS_EC2_METADATA_DISABLED", "true");
    }
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
