//! Hot-load latency: from the answer to `POST /v1/presets` to (a) each of two separate worker
//! processes having loaded the new version and (b) a job pinned to it, submitted right after the
//! answer, being started and then planned with it on a worker, over 20 uploads of distinct versions of audio-convert (its version
//! patched in place, so each upload is a new component with its own hash).
//!
//! Run (measure a release binary; the debug one is the default of the test harness):
//!
//! ```text
//! cargo build --release -p mediahost
//! MEDIAHOST_BIN=target/release/mediahost cargo bench -p mediahost-e2e --bench hot_load
//! ```

use std::time::{Duration, Instant};

use mediahost_e2e::deployment::{ADMIN_TOKEN, Deployment, wait_for_log, with_version};
use mediahost_e2e::host::{mediahost_binary, presets_dir};
use mediahost_e2e::{media, process};
use serde_json::json;

const UPLOADS: usize = 20;

fn summary(label: &str, mut v: Vec<Duration>) {
    v.sort();
    println!(
        "{label:<44} p50 {:>8.1?}  max {:>8.1?}  (n={})",
        v[v.len() / 2],
        v[v.len() - 1],
        v.len()
    );
}

#[tokio::main]
async fn main() {
    println!("binary: {}", mediahost_binary().display());
    let fixtures = process::fixture_dir("hot-load-bench");
    let presets = fixtures.path().join("presets");
    std::fs::create_dir_all(&presets).unwrap();
    let original = std::fs::read(presets_dir().join("audio-convert-1.0.0.wasm"))
        .expect("audio-convert 1.0.0 is released in presets-wasm/released");
    std::fs::write(presets.join("audio-convert-1.0.0.wasm"), &original).unwrap();

    let d = Deployment::start("hot-load-bench", &presets, &[]).await;
    let workers = [
        d.worker("worker-a", &["--concurrency", "1"]),
        d.worker("worker-b", &["--concurrency", "1"]),
    ];
    for w in &workers {
        wait_for_log(w.log_path(), &["workers started"], Duration::from_secs(60))
            .await
            .expect("worker starts");
    }
    let tone = media::sine(&fixtures.path().join("tone.wav"), 1.0);
    let input = d.client.upload(&tone).await;

    let mut loaded_everywhere = Vec::new();
    let mut loaded_each = Vec::new();
    let mut started = Vec::new();
    let mut planned = Vec::new();
    for i in 0..UPLOADS {
        let version = format!("1.{}.{}", 1 + i / 10, i % 10);
        let bytes = with_version(&original, "audio-convert", "1.0.0", &version);
        let resp = d
            .client
            .http()
            .post(d.client.url("/v1/presets"))
            .bearer_auth(ADMIN_TOKEN)
            .body(bytes)
            .send()
            .await
            .expect("publish");
        let answered = Instant::now();
        assert_eq!(
            resp.status(),
            201,
            "{}",
            resp.text().await.unwrap_or_default()
        );
        let id = d
            .client
            .submit_ok(
                &json!({"preset": "audio-convert", "version": format!("={version}"),
                "inputs": {"main": input}, "params": {"codec": "wav"}}),
            )
            .await;

        let planning = format!("planning with audio-convert@{version}");
        let mut worker_at: Vec<Option<Duration>> = vec![None; workers.len()];
        let mut started_at = None;
        let mut planned_at = None;
        while worker_at.iter().any(Option::is_none) || planned_at.is_none() {
            for (w, at) in workers.iter().zip(worker_at.iter_mut()) {
                if at.is_none()
                    && process::log_tail(w.log_path(), 50).lines().any(|l| {
                        l.contains("loaded published preset")
                            && l.contains(&format!("version={version}"))
                    })
                {
                    *at = Some(answered.elapsed());
                }
            }
            if planned_at.is_none() {
                let log = d
                    .client
                    .get_json(&format!("/v1/jobs/{id}/logs"))
                    .await
                    .to_string();
                if started_at.is_none() && log.contains("attempt 1 of") {
                    started_at = Some(answered.elapsed());
                }
                if log.contains(&planning) {
                    planned_at = Some(answered.elapsed());
                }
            }
            assert!(
                answered.elapsed() < Duration::from_secs(10),
                "version {version} never went live"
            );
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        let each: Vec<Duration> = worker_at.into_iter().flatten().collect();
        loaded_everywhere.push(*each.iter().max().expect("two workers"));
        loaded_each.extend(each);
        planned.push(planned_at.expect("planned"));
        started.push(started_at.unwrap_or(planned_at.expect("planned")));
        d.client.wait_terminal(&id).await;
    }
    summary("upload answer -> loaded on a worker", loaded_each);
    summary("upload answer -> loaded on both workers", loaded_everywhere);
    summary("upload answer -> job pinned to it started", started);
    summary("upload answer -> that job planned with it", planned);
    println!("(a job is planned after its input is downloaded and probed with ffprobe)");
}
