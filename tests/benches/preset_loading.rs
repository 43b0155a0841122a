//! Publishing and loading presets at scale (issue 14, item 5): how soon an API process listens
//! and is ready with the 20 released presets, how fast a dry run of an unpublished version is
//! answered while refused versions sit in the index, and what a publish costs the API process.
//!
//! Each run, on its own Redis and data directory, all on 127.0.0.1:
//!
//! 1. *Cold start*: `mediahost api` with `--presets-dir presets-wasm/released` on an empty
//!    artifact cache, timed from spawning it to the first `200` of `/healthz` (listening) and of
//!    `/readyz` (every version attempted); then stopped and started again on the same data
//!    directory and Redis (*warm start*: the artifacts are cached).
//! 2. *Publish*, on that warm process: the largest released preset under a new version (its
//!    version patched in place, so it is a new component that has to be compiled), recording the
//!    answer's `compile.ms` and `compile.peak_rss_mib`, and the API process's `VmRSS` just before
//!    the publish, just after its answer and 2 s later.
//! 3. *Dry run of an unpublished version with refused versions in the index*: another API
//!    process (no bundled presets) whose index holds three versions of `audio-convert` whose
//!    stored components are refused (real components, compiled, but another preset than the entry
//!    says: a publish could not put them there, so the bench writes the blob and the index entry
//!    itself, as another host would have), with `--preset-reconcile-s 1`. Once it is ready, the
//!    bench times, alternately, `DRY_RUNS` dry runs each of `audio-convert` 9.9.9 (never
//!    published) and 9.1.0 (refused), both must answer `404 PRESET_NOT_FOUND`, and samples the
//!    process's `compile-preset` children and its compile log lines over the dry runs and three
//!    more reconcile periods (there must be none: refused bytes are remembered).
//!
//! `PRESET_LOADING_RUNS` sets the runs (default 5; about a minute on the 2-core machine with
//! the debug binary). Run:
//!
//! ```text
//! cargo build -p mediahost
//! cargo bench -p mediahost-e2e --bench preset_loading
//! ```

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use mediahost_e2e::deployment::{ADMIN_TOKEN, with_version};
use mediahost_e2e::host::{mediahost_binary, presets_dir};
use mediahost_e2e::process::{self, Daemon};
use mediahost_e2e::redis::Redis;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// Dry runs timed per run.
const DRY_RUNS: usize = 10;
/// How long anything the bench waits for may take before it fails.
const LIMIT: Duration = Duration::from_secs(120);

/// An API process on its own Redis and data directory.
struct Api {
    daemon: Daemon,
    base: String,
}

fn spawn_api(redis: &Redis, dir: &Path, presets: &Path, extra: &[&str]) -> Api {
    let listen = format!("127.0.0.1:{}", process::free_port());
    let mut command = Command::new(mediahost_binary());
    command
        .arg("api")
        .args(["--redis", &redis.url()])
        .arg("--data-dir")
        .arg(dir.join("data"))
        .arg("--presets-dir")
        .arg(presets)
        .args(["--admin-token", ADMIN_TOKEN, "--listen", &listen])
        .args(extra)
        .env("RUST_LOG", "info");
    Api {
        daemon: Daemon::spawn("mediahost api", command, &dir.join("api.log")),
        base: format!("http://{listen}"),
    }
}

/// Polls `path` every 5 ms until it answers `200`; the time since `since`.
async fn until_ok(http: &reqwest::Client, api: &mut Api, path: &str, since: Instant) -> Duration {
    loop {
        let ok = http
            .get(format!("{}{path}", api.base))
            .timeout(Duration::from_secs(2))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200);
        if ok {
            return since.elapsed();
        }
        assert!(
            api.daemon.exited().is_none() && since.elapsed() < LIMIT,
            "{path} never answered 200: {}",
            api.daemon.log_tail(30)
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// `VmRSS` of a process, in MiB.
fn rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("the api runs");
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc/<pid>/status");
    kib / 1024.0
}

/// How many `compile-preset` children `pid` has running now (sampled: a compile of these
/// components takes hundreds of ms, so sampling every 100 ms sees one if it runs).
fn compile_children_running(pid: u32) -> usize {
    let children =
        std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap_or_default();
    children
        .split_whitespace()
        .filter(|c| {
            std::fs::read(format!("/proc/{c}/cmdline"))
                .is_ok_and(|cmd| String::from_utf8_lossy(&cmd).contains("compile-preset"))
        })
        .count()
}

/// Sends one command to Redis in RESP and returns the reply's first line.
fn redis_command(redis: &Redis, args: &[&str]) -> String {
    let mut stream = TcpStream::connect(("127.0.0.1", redis.port())).expect("connect to redis");
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut out = format!("*{}\r\n", args.len());
    for a in args {
        out.push_str(&format!("${}\r\n{a}\r\n", a.len()));
    }
    stream.write_all(out.as_bytes()).unwrap();
    let mut reply = [0u8; 256];
    let n = stream.read(&mut reply).expect("redis replies");
    String::from_utf8_lossy(&reply[..n])
        .lines()
        .next()
        .unwrap_or_default()
        .to_owned()
}

/// Puts `bytes` in local storage as a published component and an index entry claiming it is
/// `audio-convert@version`, as `preset/catalog.rs` lays them out.
fn put_in_index(redis: &Redis, data: &Path, bytes: &[u8], version: &str) {
    let sha = hex(&Sha256::digest(bytes));
    let blob = data.join(format!("objects/presets/blobs/{sha}.wasm"));
    std::fs::create_dir_all(blob.parent().unwrap()).unwrap();
    std::fs::write(&blob, bytes).unwrap();
    let entry = json!({
        "name": "audio-convert",
        "version": version,
        "sha256": sha,
        "size_bytes": bytes.len(),
        "interface": "mediahost:preset@1.0.0",
        "published_at": "2026-11-25T00:00:00Z",
        "origin": "uploaded",
    })
    .to_string();
    let reply = redis_command(
        redis,
        &[
            "HSET",
            "mediahost:presets",
            &format!("audio-convert@{version}"),
            &entry,
        ],
    );
    assert_eq!(reply, ":1", "HSET of the index entry");
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The largest released component: its path, name and version.
fn largest_released() -> (PathBuf, String, String) {
    let path = std::fs::read_dir(presets_dir())
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "wasm"))
        .max_by_key(|p| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0))
        .expect("released presets");
    let stem = path.file_stem().unwrap().to_str().unwrap().to_owned();
    let (name, version) = stem.rsplit_once('-').expect("<name>-<version>.wasm");
    (path.clone(), name.to_owned(), version.to_owned())
}

#[derive(Default)]
struct Figures {
    listening_cold: Vec<f64>,
    ready_cold: Vec<f64>,
    listening_warm: Vec<f64>,
    ready_warm: Vec<f64>,
    publish_answer: Vec<f64>,
    compile_ms: Vec<f64>,
    compile_peak_rss: Vec<f64>,
    rss_before: Vec<f64>,
    rss_after: Vec<f64>,
    rss_later: Vec<f64>,
    refused_ready: Vec<f64>,
    dry_run_404: Vec<f64>,
    dry_run_refused: Vec<f64>,
}

fn row(label: &str, unit: &str, v: &[f64]) {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    let median = if v.len() % 2 == 1 {
        v[v.len() / 2]
    } else {
        (v[v.len() / 2 - 1] + v[v.len() / 2]) / 2.0
    };
    println!(
        "| {label} | {unit} | {} | {median:.1} | {:.1} | {:.1} |",
        v.len(),
        v[0],
        v[v.len() - 1]
    );
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

#[tokio::main]
async fn main() {
    let began = Instant::now();
    let runs = process::count_from_env("PRESET_LOADING_RUNS", 5);
    let released = presets_dir();
    let count = std::fs::read_dir(&released)
        .unwrap()
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "wasm"))
        .count();
    let (largest, name, version) = largest_released();
    let original = std::fs::read(&largest).unwrap();
    println!(
        "binary: {}; {count} released presets; publishing {name} ({} KiB) under new versions",
        mediahost_binary().display(),
        original.len() / 1024
    );
    let http = reqwest::Client::new();
    let mut f = Figures::default();

    for run in 0..runs {
        // 1. Cold, then warm start with the released presets.
        let redis = Redis::start();
        let dir = process::fixture_dir("preset-loading");
        for warm in [false, true] {
            let spawned = Instant::now();
            let mut api = spawn_api(&redis, dir.path(), &released, &[]);
            let listening = until_ok(&http, &mut api, "/healthz", spawned).await;
            let ready = until_ok(&http, &mut api, "/readyz", spawned).await;
            let readyz: Value = http
                .get(format!("{}/readyz", api.base))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            // Ready counts each version it knew of at start: on the warm start, the 20 bundled
            // files and the 20 index entries publishing them named the day before.
            let presets = &readyz["presets"];
            assert!(
                presets["loaded"] == presets["total"]
                    && presets["total"].as_u64() >= Some(count as u64),
                "every released preset attempted: {readyz}"
            );
            let (l, r) = if warm {
                (&mut f.listening_warm, &mut f.ready_warm)
            } else {
                (&mut f.listening_cold, &mut f.ready_cold)
            };
            l.push(ms(listening));
            r.push(ms(ready));
            println!(
                "run {run} {} start: listening {listening:.2?}, ready {ready:.2?} ({})",
                if warm { "warm" } else { "cold" },
                presets
            );
            if !warm {
                api.daemon.stop(Duration::from_secs(10));
                continue;
            }

            // 2. Publish the largest released preset under a new version.
            let new_version = format!("9.0.{run}");
            assert_eq!(new_version.len(), version.len(), "same-length version");
            let bytes = with_version(&original, &name, &version, &new_version);
            let pid = api.daemon.pid();
            let before = rss_mib(pid);
            let sent = Instant::now();
            let resp = http
                .post(format!("{}/v1/presets", api.base))
                .bearer_auth(ADMIN_TOKEN)
                .body(bytes)
                .send()
                .await
                .expect("publish");
            let status = resp.status();
            let body: Value = resp.json().await.unwrap_or_default();
            let answered = sent.elapsed();
            let after = rss_mib(pid);
            assert_eq!(status, 201, "publish: {body}");
            assert_eq!(body["compile"]["cached"], false, "a new component: {body}");
            tokio::time::sleep(Duration::from_secs(2)).await;
            let later = rss_mib(pid);
            f.publish_answer.push(ms(answered));
            f.compile_ms.push(body["compile"]["ms"].as_f64().unwrap());
            f.compile_peak_rss
                .push(body["compile"]["peak_rss_mib"].as_f64().unwrap());
            f.rss_before.push(before);
            f.rss_after.push(after);
            f.rss_later.push(later);
            println!(
                "run {run} publish {name}@{new_version}: answer {answered:.2?}, compile {}, \
                 api VmRSS {before:.1} -> {after:.1} -> {later:.1} MiB (2 s later)",
                body["compile"]
            );
            api.daemon.stop(Duration::from_secs(10));
        }

        // 3. A dry run of an unpublished version beside three refused versions.
        let redis = Redis::start();
        let dir = process::fixture_dir("preset-loading-refused");
        let empty = dir.path().join("no-presets");
        std::fs::create_dir_all(&empty).unwrap();
        for (i, v) in ["9.0.0", "9.1.0", "9.2.0"].iter().enumerate() {
            // A real component that compiles, but is not audio-convert: refused at load.
            let other = with_version(&original, &name, &version, &format!("8.{run}.{i}"));
            put_in_index(&redis, &dir.path().join("data"), &other, v);
        }
        let spawned = Instant::now();
        let mut api = spawn_api(&redis, dir.path(), &empty, &["--preset-reconcile-s", "1"]);
        let ready = until_ok(&http, &mut api, "/readyz", spawned).await;
        f.refused_ready.push(ms(ready));
        let log = std::fs::read_to_string(api.daemon.log_path()).unwrap();
        let refusals = log
            .lines()
            .filter(|l| l.contains("component is refused"))
            .count();
        assert_eq!(refusals, 3, "three refused versions:\n{log}");
        let compiles_before = log.matches("loaded preset component").count();
        let mut spawned_compiles = 0;
        for i in 0..2 * DRY_RUNS {
            // Alternately a version never published and one of the refused ones.
            let (target, times) = if i % 2 == 0 {
                ("9.9.9", &mut f.dry_run_404)
            } else {
                ("9.1.0", &mut f.dry_run_refused)
            };
            let sent = Instant::now();
            let resp = http
                .post(format!(
                    "{}/v1/presets/audio-convert/{target}/plan",
                    api.base
                ))
                .json(&json!({"inputs": {"main": "local://uploads/none/a.wav"}}))
                .send()
                .await
                .expect("dry run");
            let status = resp.status();
            let body: Value = resp.json().await.unwrap_or_default();
            times.push(ms(sent.elapsed()));
            assert_eq!(
                (status.as_u16(), body["code"].as_str()),
                (404, Some("PRESET_NOT_FOUND")),
                "a version that is not loaded here: {body}"
            );
            spawned_compiles += compile_children_running(api.daemon.pid());
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        // A few reconcile periods: nothing is compiled again.
        for _ in 0..30 {
            spawned_compiles += compile_children_running(api.daemon.pid());
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let log = std::fs::read_to_string(api.daemon.log_path()).unwrap();
        let compiles_after = log.matches("loaded preset component").count();
        assert_eq!(
            (spawned_compiles, compiles_after - compiles_before),
            (0, 0),
            "refused bytes are compiled again:\n{log}"
        );
        println!(
            "run {run} refused x3: ready {ready:.2?}, dry-run 404 median so far {:.1} ms, \
             no compile over the dry runs and 3 s of 1 s reconciles",
            {
                let mut v = f.dry_run_404.clone();
                v.sort_by(f64::total_cmp);
                v[v.len() / 2]
            }
        );
        api.daemon.stop(Duration::from_secs(10));
    }

    println!();
    println!("| measure | unit | n | median | min | max |");
    println!("|---|---|---|---|---|---|");
    row(
        "cold start → listening (/healthz 200)",
        "ms",
        &f.listening_cold,
    );
    row("cold start → ready (/readyz 200)", "ms", &f.ready_cold);
    row("warm start → listening", "ms", &f.listening_warm);
    row("warm start → ready", "ms", &f.ready_warm);
    row("publish answer", "ms", &f.publish_answer);
    row("publish compile.ms", "ms", &f.compile_ms);
    row("publish compile.peak_rss_mib", "MiB", &f.compile_peak_rss);
    row("api VmRSS before publish", "MiB", &f.rss_before);
    row("api VmRSS after the answer", "MiB", &f.rss_after);
    row("api VmRSS 2 s later", "MiB", &f.rss_later);
    row("3 refused versions: start → ready", "ms", &f.refused_ready);
    row(
        "dry run of an unpublished version → 404",
        "ms",
        &f.dry_run_404,
    );
    row(
        "dry run of a refused version → 404",
        "ms",
        &f.dry_run_refused,
    );
    println!();
    println!("bench ran {:.0?}", began.elapsed());
}
