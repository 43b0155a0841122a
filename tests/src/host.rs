//! The `mediahost serve` process under test, with the Redis (and S3 server) it talks to.
//!
//! Starting a host compiles every preset component, so each test binary shares one host per
//! storage kind ([`Host::shared_local`], [`Host::shared_s3`]) and its tests run against it
//! concurrently. A host that fails to start fails every test that asks for it with the same
//! message, instead of retrying a slow start once per test.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use crate::client::Client;
use crate::process::{self, Daemon};
use crate::redis::Redis;
use crate::s3::{self, S3Server};

/// How long a host may take from spawn to answering `GET /healthz`, then `GET /readyz` (its
/// presets loaded).
const STARTUP_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StorageKind {
    Local,
    S3,
}

pub struct S3Storage {
    pub server: S3Server,
    pub bucket: String,
}

pub struct Host {
    daemon: Mutex<Daemon>,
    base_url: String,
    log: PathBuf,
    data_dir: PathBuf,
    s3: Option<S3Storage>,
    redis: Redis,
    warnings: Vec<String>,
    _dir: tempfile::TempDir,
}

impl Host {
    /// The local-storage host shared by all tests of this test binary.
    pub fn shared_local() -> &'static Host {
        static HOST: OnceLock<Result<Host, String>> = OnceLock::new();
        shared(&HOST, StorageKind::Local)
    }

    /// The S3-storage host (backed by its own s3s-fs) shared by all tests of this test binary.
    pub fn shared_s3() -> &'static Host {
        static HOST: OnceLock<Result<Host, String>> = OnceLock::new();
        shared(&HOST, StorageKind::S3)
    }

    /// Starts a host of its own with a fresh Redis (and s3s-fs for [`StorageKind::S3`]).
    pub fn start(storage: StorageKind) -> Result<Host, String> {
        Host::start_with_presets(storage, &presets_dir())
    }

    /// Like [`Host::start`], loading presets from `presets_dir` instead of the built-in ones
    /// (the adversarial tests add hostile components next to copies of the built-in ones).
    pub fn start_with_presets(storage: StorageKind, presets_dir: &Path) -> Result<Host, String> {
        Host::start_with_args(storage, presets_dir, &[])
    }

    /// Like [`Host::start_with_presets`], with extra `mediahost serve` flags (budgets, limits).
    /// Unless `args` set `--webhook-allow`, the host may deliver webhooks to 127.0.0.1 (the
    /// tests' receivers listen there); pass `--webhook-allow ""` for a host that may not.
    pub fn start_with_args(
        storage: StorageKind,
        presets_dir: &Path,
        args: &[&str],
    ) -> Result<Host, String> {
        let binary = mediahost_binary();
        let presets_dir = presets_dir.to_path_buf();
        let warnings = staleness_warnings(&binary);
        let redis = Redis::start();
        let s3 = (storage == StorageKind::S3).then(|| {
            let server = S3Server::start();
            let bucket = "mediahost-e2e".to_string();
            server.create_bucket(&bucket);
            S3Storage { server, bucket }
        });
        let dir = process::fixture_dir("host");
        let data_dir = dir.path().join("data");
        std::fs::create_dir_all(&data_dir).map_err(|e| format!("create data dir: {e}"))?;

        let mut failures = Vec::new();
        for attempt in 1..=2 {
            let port = process::free_port();
            let log = dir.path().join(format!("mediahost-{attempt}.log"));
            let mut command = Command::new(&binary);
            command
                .arg("serve")
                .args(["--listen", &format!("127.0.0.1:{port}")])
                .args(["--redis", &redis.url()])
                .arg("--data-dir")
                .arg(&data_dir)
                .arg("--presets-dir")
                .arg(&presets_dir)
                .args(crate::deployment::webhook_allow_default(args))
                .args(args);
            // Only what the test sets may configure the host; the environment of whoever runs
            // the tests must not.
            for (key, _) in std::env::vars_os() {
                if let Some(key) = key.to_str()
                    && (key.starts_with("MEDIAHOST_") || key.starts_with("AWS_"))
                {
                    command.env_remove(key);
                }
            }
            command
                .env(
                    "RUST_LOG",
                    std::env::var("E2E_HOST_LOG").unwrap_or_else(|_| "info".into()),
                )
                .env("NO_PROXY", "127.0.0.1,localhost")
                .env("no_proxy", "127.0.0.1,localhost");
            if let Some(s3) = &s3 {
                command
                    .args(["--storage", "s3"])
                    .args(["--s3-endpoint", &s3.server.endpoint()])
                    .args(["--s3-bucket", &s3.bucket])
                    .args(["--s3-path-style", "true"])
                    .args(["--s3-region", s3::REGION])
                    .env("AWS_ACCESS_KEY_ID", s3.server.access_key())
                    .env("AWS_SECRET_ACCESS_KEY", s3.server.secret_key())
                    .env("AWS_EC2_METADATA_DISABLED", "true");
            }
            let started = Instant::now();
            let mut daemon = Daemon::spawn("mediahost", command, &log);
            match wait_healthy(&mut daemon, port) {
                Ok(()) => {
                    eprintln!(
                        "[e2e] mediahost ({storage:?} storage) up on 127.0.0.1:{port} after {:.1}s; log: {}",
                        started.elapsed().as_secs_f64(),
                        log.display()
                    );
                    for warning in &warnings {
                        eprintln!("[e2e] warning: {warning}");
                    }
                    return Ok(Host {
                        daemon: Mutex::new(daemon),
                        base_url: format!("http://127.0.0.1:{port}"),
                        log,
                        data_dir,
                        s3,
                        redis,
                        warnings,
                        _dir: dir,
                    });
                }
                Err(why) => {
                    let tail = daemon.log_tail(60);
                    let lost_port_race = tail.to_lowercase().contains("in use");
                    failures.push(format!(
                        "attempt {attempt}: {why}\n--- mediahost log tail ---\n{tail}"
                    ));
                    if !lost_port_race {
                        break;
                    }
                }
            }
        }
        Err(format!(
            "mediahost serve did not become healthy ({} {}):\n{}",
            binary.display(),
            presets_dir.display(),
            failures.join("\n")
        ))
    }

    /// `http://127.0.0.1:<port>`
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// A fresh HTTP client for this host. Dropping it during a panic prints the host's log tail.
    pub fn client(&self) -> Client {
        Client::new(
            self.base_url.clone(),
            self.log.clone(),
            self.warnings.clone(),
        )
    }

    pub fn log_path(&self) -> &Path {
        &self.log
    }

    pub fn log_tail(&self, lines: usize) -> String {
        process::log_tail(&self.log, lines)
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    pub fn s3(&self) -> Option<&S3Storage> {
        self.s3.as_ref()
    }

    pub fn redis(&self) -> &Redis {
        &self.redis
    }

    /// Whether the host process is still alive.
    pub fn is_running(&self) -> bool {
        self.daemon
            .lock()
            .map(|mut d| d.exited().is_none())
            .unwrap_or(false)
    }
}

fn shared(cell: &'static OnceLock<Result<Host, String>>, storage: StorageKind) -> &'static Host {
    match cell.get_or_init(|| Host::start(storage)) {
        Ok(host) => host,
        Err(why) => panic!("{why}"),
    }
}

/// The binary under test: `$MEDIAHOST_BIN` (relative to the repository root), else
/// `<target>/debug/mediahost`.
pub fn mediahost_binary() -> PathBuf {
    let path = match std::env::var_os("MEDIAHOST_BIN") {
        // Relative to the repository root, where the scripts and the README's commands run.
        Some(path) if !path.is_empty() => crate::repo_root().join(path),
        _ => crate::target_dir().join("debug/mediahost"),
    };
    if !process::is_executable(&path) {
        panic!(
            "mediahost binary not found at {}: run `cargo build -p mediahost` first \
             (or set MEDIAHOST_BIN to the binary to test)",
            path.display()
        );
    }
    path
}

/// Why the binary under test may be older than its sources (`cargo test` does not rebuild
/// another package's binary). Not an error: sources can be edited while tests run. Failing
/// tests print it, because it may be why they fail. The presets are released artifacts, never
/// stale: `released_presets.rs` checks them against their sources.
pub fn staleness_warnings(binary: &Path) -> Vec<String> {
    let mut warnings = Vec::new();
    let repo = crate::repo_root();
    if let Some(newer) = newer_than(
        binary,
        &[
            repo.join("host/src"),
            repo.join("host/Cargo.toml"),
            repo.join("wit"),
        ],
    ) {
        warnings.push(format!(
            "{} is older than {}: run `cargo build -p mediahost` (scripts/test does)",
            binary.display(),
            newer.display()
        ));
    }
    warnings
}

/// A file under `sources` modified after `artifact`, if any.
fn newer_than(artifact: &Path, sources: &[PathBuf]) -> Option<PathBuf> {
    let built = std::fs::metadata(artifact)
        .and_then(|m| m.modified())
        .ok()?;
    let mut stack: Vec<PathBuf> = sources.to_vec();
    while let Some(path) = stack.pop() {
        let Ok(meta) = std::fs::metadata(&path) else {
            continue;
        };
        if meta.is_dir() {
            if let Ok(entries) = std::fs::read_dir(&path) {
                stack.extend(entries.flatten().map(|e| e.path()));
            }
        } else if meta.modified().is_ok_and(|m| m > built) {
            return Some(path);
        }
    }
    None
}

/// `<repo>/presets-wasm/released`: the released preset artifacts, as committed (pinned by
/// `released.lock`; `tests/tests/released_presets.rs` checks them, nothing rebuilds them).
pub fn presets_dir() -> PathBuf {
    let dir = crate::repo_root().join(crate::released::RELEASED_DIR);
    let has_wasm = std::fs::read_dir(&dir)
        .map(|entries| {
            entries
                .flatten()
                .any(|e| e.path().extension().is_some_and(|ext| ext == "wasm"))
        })
        .unwrap_or(false);
    if !has_wasm {
        panic!(
            "no preset components (*.wasm) in {}: the released presets are committed there",
            dir.display()
        );
    }
    dir
}

fn wait_healthy(daemon: &mut Daemon, port: u16) -> Result<(), String> {
    let deadline = Instant::now() + STARTUP_TIMEOUT;
    let mut last = String::from("no answer yet");
    while Instant::now() < deadline {
        if let Some(status) = daemon.exited() {
            return Err(format!("mediahost exited during startup with {status}"));
        }
        // Alive, then ready: presets load in the background, and the tests want them loaded.
        match http_status(port, "/healthz").and_then(|h| {
            if h == 200 {
                http_status(port, "/readyz").map(|r| (h, r))
            } else {
                Ok((h, 0))
            }
        }) {
            Ok((200, 200)) => return Ok(()),
            Ok((200, status)) => last = format!("GET /readyz answered {status}"),
            Ok((status, _)) => last = format!("GET /healthz answered {status}"),
            Err(e) => last = format!("GET /healthz: {e}"),
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Err(format!(
        "no 200 from GET /healthz within {}s (last: {last})",
        STARTUP_TIMEOUT.as_secs()
    ))
}

/// A blocking `GET` that returns only the status code; used before any async runtime exists.
fn http_status(port: u16, path: &str) -> std::io::Result<u16> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_millis(500))?;
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
    )?;
    let mut head = [0u8; 64];
    let n = stream.read(&mut head)?;
    let line = String::from_utf8_lossy(&head[..n]);
    line.split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("not an HTTP response: {line:?}")))
}
