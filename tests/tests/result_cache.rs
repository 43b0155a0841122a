//! The result cache and `Prefer: wait`, as a client sees them: a repeated job (the same bytes
//! under any URI, the same preset and params) is answered from the cache with no ffmpeg run and
//! marked with the job it reuses; identical jobs submitted together run once; `"cache": false`
//! runs anyway; an entry whose objects are gone is not used; the cache is bounded; S3 inputs
//! are hashed when first downloaded; `/metrics` has the hit rate. `Prefer: wait=N` answers 200
//! with the ended job, or 202 when it is still running, with `Preference-Applied`.

use std::path::PathBuf;
use std::sync::OnceLock;

use mediahost_e2e::host::StorageKind;
use mediahost_e2e::media::{pink_noise, sine};
use mediahost_e2e::video::ffmpeg_steps;
use mediahost_e2e::{Client, Host, process};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// Test media, made once per test binary.
struct Media {
    _dir: tempfile::TempDir,
    short: PathBuf,
    long: PathBuf,
}

fn media() -> &'static Media {
    static MEDIA: OnceLock<Media> = OnceLock::new();
    MEDIA.get_or_init(|| {
        let dir = process::fixture_dir("cache-media");
        let short = sine(&dir.path().join("short.wav"), 2.0);
        // Long enough that an MP3 encode of it still runs while duplicates arrive.
        let long = pink_noise(&dir.path().join("long.wav"), 240, 0.3);
        Media {
            _dir: dir,
            short,
            long,
        }
    })
}

fn convert(input: &str, codec: &str) -> Value {
    json!({
        "preset": "audio-convert", "version": "^1", "inputs": {"main": input},
        "params": {"codec": codec},
    })
}

/// `POST /v1/jobs` with `Prefer: wait=<seconds>`: the status, `Preference-Applied` and the job.
async fn submit_waiting(
    client: &Client,
    body: &Value,
    seconds: u64,
) -> (StatusCode, String, Value) {
    let resp = client
        .http()
        .post(client.url("/v1/jobs"))
        .header("prefer", format!("wait={seconds}"))
        .json(body)
        .send()
        .await
        .expect("POST /v1/jobs");
    let status = resp.status();
    let applied = resp
        .headers()
        .get("preference-applied")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let job: Value = resp.json().await.expect("a JSON job");
    (status, applied, job)
}

fn output_uris(job: &Value) -> Vec<String> {
    job["outputs"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|o| o["uri"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// The value of one `/metrics` series (0 when absent).
async fn metric(client: &Client, series: &str) -> f64 {
    let text = client
        .get("/metrics")
        .await
        .text()
        .await
        .expect("metrics text");
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(0.0)
}

fn cached_from(job: &Value) -> Option<String> {
    job["cached"]["job"].as_str().map(str::to_owned)
}

#[tokio::test]
async fn a_repeated_job_is_answered_in_the_request_from_the_cache_without_ffmpeg() {
    let client = Host::shared_local().client();
    let first_input = client.upload(&media().short).await;
    let (status, applied, first) =
        submit_waiting(&client, &convert(&first_input, "flac"), 30).await;
    assert_eq!(status, StatusCode::OK, "done within the wait: {first:#}");
    assert_eq!(applied, "wait=30");
    assert_eq!(first["state"], "COMPLETED", "{first:#}");
    assert_eq!(first["cached"], Value::Null, "the first run is not cached");
    assert_eq!(ffmpeg_steps(&client, &first).await.len(), 1, "{first:#}");
    let sha = first["input_sha256"]["main"]
        .as_str()
        .expect("the input hash");
    assert_eq!(sha.len(), 64, "{first:#}");

    // The same bytes under another name: the same work.
    let second_input = client.upload_as(&media().short, "again.wav").await;
    assert_ne!(first_input, second_input);
    let (status, _, second) = submit_waiting(&client, &convert(&second_input, "flac"), 30).await;
    assert_eq!(status, StatusCode::OK, "{second:#}");
    assert_eq!(second["state"], "COMPLETED", "{second:#}");
    assert_eq!(
        cached_from(&second).as_deref(),
        first["id"].as_str(),
        "marked with the job it reuses: {second:#}"
    );
    assert_eq!(output_uris(&second), output_uris(&first));
    assert!(
        ffmpeg_steps(&client, &second).await.is_empty(),
        "no ffmpeg ran for the cached job"
    );
    assert_eq!(second["timings"]["ffmpeg_s"], 0.0, "{second:#}");
    assert_eq!(second["input_sha256"]["main"], sha, "{second:#}");
    let download = second["outputs"][0]["download_url"].as_str().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let got = client
        .download(download, &dir.path().join("out.flac"))
        .await;
    assert!(std::fs::metadata(got).unwrap().len() > 1000);

    // Other params are other work.
    let (_, _, mp3) = submit_waiting(&client, &convert(&second_input, "mp3"), 30).await;
    assert_eq!(mp3["state"], "COMPLETED", "{mp3:#}");
    assert_eq!(mp3["cached"], Value::Null, "{mp3:#}");

    // Opting out runs again and makes new objects.
    let mut body = convert(&second_input, "flac");
    body["cache"] = json!(false);
    let (_, _, uncached) = submit_waiting(&client, &body, 30).await;
    assert_eq!(uncached["state"], "COMPLETED", "{uncached:#}");
    assert_eq!(uncached["cached"], Value::Null, "{uncached:#}");
    assert_eq!(uncached["cache"], false);
    assert_ne!(output_uris(&uncached), output_uris(&first));
    assert_eq!(ffmpeg_steps(&client, &uncached).await.len(), 1);

    // A replay asks for a run: the cache does not answer it.
    let replay = client
        .http()
        .post(client.url(&format!(
            "/v1/jobs/{}/replay",
            first["id"].as_str().unwrap()
        )))
        .send()
        .await
        .unwrap();
    let replay: Value = replay.json().await.unwrap();
    let replay = client.wait_terminal(replay["id"].as_str().unwrap()).await;
    assert_eq!(replay["state"], "COMPLETED", "{replay:#}");
    assert_eq!(replay["cached"], Value::Null, "{replay:#}");

    assert!(
        metric(
            &client,
            "mediahost_result_cache_lookups_total{result=\"hit\"}"
        )
        .await
            >= 1.0
    );
    let ratio = metric(&client, "mediahost_result_cache_hit_ratio").await;
    assert!(ratio > 0.0 && ratio < 1.0, "hit ratio {ratio}");
    assert!(metric(&client, "mediahost_result_cache_entries").await >= 2.0);
}

#[tokio::test]
async fn identical_jobs_submitted_together_run_once() {
    let client = Host::shared_local().client();
    let input = client.upload(&media().long).await;
    let body = convert(&input, "mp3");
    let mut ids = Vec::new();
    for _ in 0..4 {
        ids.push(client.submit_ok(&body).await);
    }
    let mut jobs = Vec::new();
    for id in &ids {
        jobs.push(client.wait_terminal(id).await);
    }
    let ran: Vec<&Value> = jobs.iter().filter(|j| j["cached"].is_null()).collect();
    assert_eq!(ran.len(), 1, "exactly one ran: {jobs:#?}");
    let leader = ran[0]["id"].as_str().unwrap();
    let mut steps = 0;
    let mut waited = false;
    for job in &jobs {
        assert_eq!(job["state"], "COMPLETED", "{job:#}");
        if job["id"] != leader {
            assert_eq!(cached_from(job).as_deref(), Some(leader), "{job:#}");
            assert_eq!(output_uris(job), output_uris(ran[0]));
        }
        steps += ffmpeg_steps(&client, job).await.len();
        let logs = client
            .get_json(&format!("/v1/jobs/{}/logs", job["id"].as_str().unwrap()))
            .await;
        waited |= logs
            .to_string()
            .contains("is running the same work; waiting");
    }
    assert_eq!(steps, 1, "one ffmpeg run for four identical jobs");
    assert!(
        waited,
        "a second worker slot took a duplicate while the first ran, and waited for it"
    );
}

#[tokio::test]
async fn an_entry_whose_objects_are_gone_is_not_used() {
    let host = Host::shared_local();
    let client = host.client();
    let input = client.upload(&media().short).await;
    let body = convert(&input, "opus");
    let (_, _, first) = submit_waiting(&client, &body, 30).await;
    assert_eq!(first["state"], "COMPLETED", "{first:#}");
    let stale_before = metric(&client, "mediahost_result_cache_stale_entries_total").await;
    let key = first["outputs"][0]["uri"]
        .as_str()
        .unwrap()
        .strip_prefix("local://")
        .unwrap();
    std::fs::remove_file(host.data_dir().join("objects").join(key)).unwrap();
    let (_, _, again) = submit_waiting(&client, &body, 30).await;
    assert_eq!(again["state"], "COMPLETED", "{again:#}");
    assert_eq!(
        again["cached"],
        Value::Null,
        "a stale entry is not used: {again:#}"
    );
    assert_eq!(ffmpeg_steps(&client, &again).await.len(), 1);
    assert!(metric(&client, "mediahost_result_cache_stale_entries_total").await > stale_before);
    let (_, _, third) = submit_waiting(&client, &body, 30).await;
    assert_eq!(
        cached_from(&third).as_deref(),
        again["id"].as_str(),
        "the new run filled the cache again: {third:#}"
    );
}

#[tokio::test]
async fn a_long_job_answers_202_when_the_wait_is_over_and_the_wait_is_capped() {
    let client = Host::shared_local().client();
    let input = client.upload_as(&media().long, "long-wait.wav").await;
    let mut body = convert(&input, "aac");
    body["cache"] = json!(false);
    let (status, applied, job) = submit_waiting(&client, &body, 1).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{job:#}");
    assert_eq!(applied, "wait=1");
    assert!(
        matches!(job["state"].as_str(), Some("PENDING" | "PROCESSING")),
        "{job:#}"
    );
    let (status, applied, other) = submit_waiting(&client, &body, 3600).await;
    assert_eq!(applied, "wait=60", "the wait is capped at 60 s");
    assert_eq!(status, StatusCode::OK, "{other:#}");
    assert_eq!(other["state"], "COMPLETED");
    let plain = client.submit(&convert(&input, "flac")).await;
    assert_eq!(plain.status(), StatusCode::ACCEPTED);
    assert!(plain.headers().get("preference-applied").is_none());
    client.wait_terminal(job["id"].as_str().unwrap()).await;
}

#[tokio::test]
async fn the_cache_holds_at_most_its_bound_dropping_the_least_recently_used() {
    let host = Host::start_with_args(
        StorageKind::Local,
        &mediahost_e2e::host::presets_dir(),
        &["--result-cache-entries", "2"],
    )
    .expect("a host");
    let client = host.client();
    let input = client.upload(&media().short).await;
    let mut runs = Vec::new();
    for codec in ["flac", "wav", "mp3"] {
        let (_, _, job) = submit_waiting(&client, &convert(&input, codec), 30).await;
        assert_eq!(job["state"], "COMPLETED", "{job:#}");
        runs.push(job);
    }
    assert_eq!(metric(&client, "mediahost_result_cache_entries").await, 2.0);
    let (_, _, newest) = submit_waiting(&client, &convert(&input, "mp3"), 30).await;
    assert_eq!(cached_from(&newest).as_deref(), runs[2]["id"].as_str());
    let (_, _, oldest) = submit_waiting(&client, &convert(&input, "flac"), 30).await;
    assert_eq!(oldest["cached"], Value::Null, "evicted: {oldest:#}");
}

#[tokio::test]
async fn s3_inputs_are_hashed_when_first_downloaded_and_known_from_then_on() {
    let client = Host::shared_s3().client();
    let first_input = client.upload(&media().short).await;
    let (_, _, first) = submit_waiting(&client, &convert(&first_input, "flac"), 30).await;
    assert_eq!(first["state"], "COMPLETED", "{first:#}");
    assert_eq!(
        first["input_sha256"]["main"].as_str().map(str::len),
        Some(64)
    );

    // Another object with the same bytes: unknown until downloaded, then a hit in the worker.
    let second_input = client.upload_as(&media().short, "copy.wav").await;
    let (_, _, second) = submit_waiting(&client, &convert(&second_input, "flac"), 30).await;
    assert_eq!(
        cached_from(&second).as_deref(),
        first["id"].as_str(),
        "{second:#}"
    );
    assert!(ffmpeg_steps(&client, &second).await.is_empty());
    let log = client
        .get_json(&format!("/v1/jobs/{}/logs", second["id"].as_str().unwrap()))
        .await
        .to_string();
    assert!(log.contains("downloaded input 'main'"), "{log}");

    // That object's hash is remembered: the next submission is answered at once, unqueued.
    let (status, _, third) = submit_waiting(&client, &convert(&second_input, "flac"), 30).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        cached_from(&third).as_deref(),
        first["id"].as_str(),
        "{third:#}"
    );
    assert!(
        third["history"]
            .to_string()
            .contains("answered from the result cache"),
        "{third:#}"
    );
    assert_eq!(third["attempts"], 0, "never queued: {third:#}");
}
