//! Per-job host overhead: a job's wall time minus the time spent in ffprobe/ffmpeg child
//! processes, for short audio jobs on local storage, through the real binary, a private
//! redis-server and real ffmpeg.
//!
//! Run: `cargo bench -p mediahost --bench job_overhead` (presets from `presets-wasm/released`).

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn p99(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[((v.len() - 1) as f64 * 0.99).round() as usize]
}

#[tokio::main]
async fn main() {
    let dir = tempfile::tempdir().unwrap();
    let redis_port = free_port();
    let _redis = Killed(
        Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &redis_port.to_string()])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(dir.path())
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server is installed"),
    );
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let _host = Killed(
        Command::new(env!("CARGO_BIN_EXE_mediahost"))
            .arg("serve")
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .args(["--redis", &format!("redis://127.0.0.1:{redis_port}")])
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .arg("--presets-dir")
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("../presets-wasm/released"))
            .args(["--concurrency", "1"])
            .env("RUST_LOG", "warn")
            .spawn()
            .expect("mediahost starts"),
    );
    let http = reqwest::Client::new();
    let started = Instant::now();
    while http.get(format!("{base}/healthz")).send().await.is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "host did not start"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let audio = dir.path().join("tone.wav");
    let made = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-f", "lavfi"])
        .args([
            "-i",
            "sine=frequency=440:duration=3:sample_rate=48000",
            "-ac",
            "2",
        ])
        .arg(&audio)
        .status()
        .unwrap();
    assert!(made.success());
    let upload: Value = http
        .post(format!("{base}/v1/uploads"))
        .json(&json!({"filename": "tone.wav"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    http.put(upload["upload_url"].as_str().unwrap())
        .body(std::fs::read(&audio).unwrap())
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap();

    println!("3 s stereo 48 kHz tone, local storage, one worker slot, jobs run one at a time");
    for (preset, params) in [
        ("audio-convert", json!({"codec": "flac"})),
        ("loudness-normalize", json!({"target_lufs": -16})),
    ] {
        let (mut overhead, mut run, mut e2e) = (Vec::new(), Vec::new(), Vec::new());
        for i in 0..22 {
            let submitted = Instant::now();
            let job: Value = http
                .post(format!("{base}/v1/jobs"))
                .json(
                    &json!({"preset": preset, "inputs": {"main": upload["uri"]}, "params": params}),
                )
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            let id = job["id"].as_str().unwrap().to_owned();
            let job = loop {
                let j: Value = http
                    .get(format!("{base}/v1/jobs/{id}"))
                    .send()
                    .await
                    .unwrap()
                    .json()
                    .await
                    .unwrap();
                if j["state"] == "COMPLETED" || j["state"] == "FAILED" {
                    break j;
                }
                assert!(
                    submitted.elapsed() < Duration::from_secs(60),
                    "job {id} stuck"
                );
                tokio::time::sleep(Duration::from_millis(5)).await;
            };
            assert_eq!(job["state"], "COMPLETED", "{job}");
            if i < 2 {
                continue; // warm-up
            }
            let t = &job["timings"];
            let run_s = t["run_s"].as_f64().unwrap();
            let child_s = t["ffmpeg_s"].as_f64().unwrap();
            run.push(run_s * 1e3);
            overhead.push((run_s - child_s) * 1e3);
            e2e.push(submitted.elapsed().as_secs_f64() * 1e3);
        }
        println!(
            "{preset:<19} job run p50 {:>7.1} ms | host overhead (run - child processes) p50 {:>6.1} ms p99 {:>6.1} ms | submit->COMPLETED p50 {:>7.1} ms (n={})",
            median(&mut run),
            median(&mut overhead),
            p99(&mut overhead),
            median(&mut e2e),
            run.len()
        );
    }
}
