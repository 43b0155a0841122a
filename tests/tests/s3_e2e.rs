//! The same user path as audio_e2e, with the host on S3 storage (a real s3s-fs): uploads go
//! straight to the S3 server through a presigned PUT, deliveries come back through a presigned
//! GET, and the objects really are in the bucket.

use std::path::Path;

use mediahost_e2e::media::{self, Fixtures};
use mediahost_e2e::{Client, Host};
use serde_json::{Value, json};

/// Checks that `uri`/`url` point at the host's S3 server and bucket, and that the object named by
/// `uri` is in the bucket with exactly the bytes in `local`.
fn assert_in_bucket(host: &Host, uri: &str, url: &str, local: &Path) {
    let s3 = host.s3().expect("S3 host");
    let prefix = format!("s3://{}/", s3.bucket);
    let key = uri
        .strip_prefix(&prefix)
        .unwrap_or_else(|| panic!("URI {uri} is not in bucket {}", s3.bucket));
    assert!(
        url.starts_with(&format!("{}/{}/", s3.server.endpoint(), s3.bucket)),
        "{url} should be a path-style URL on the S3 server {}",
        s3.server.endpoint()
    );
    assert!(
        url.contains("X-Amz-Signature="),
        "{url} should be presigned (SigV4)"
    );
    // s3s-fs keeps objects as files under <root>/<bucket>/<key>.
    let stored = s3.server.root().join(&s3.bucket).join(key);
    let stored_bytes = std::fs::read(&stored).unwrap_or_else(|e| {
        panic!(
            "object {uri} not in the bucket at {}: {e}",
            stored.display()
        )
    });
    let local_bytes = std::fs::read(local).unwrap();
    assert!(
        stored_bytes == local_bytes,
        "object {uri} differs from {}",
        local.display()
    );
}

/// Uploads through the host's grant, which must be a presigned PUT straight to the S3 server,
/// and checks the bytes landed in the bucket.
async fn upload(client: &Client, host: &Host, path: &Path) -> String {
    let filename = path.file_name().unwrap().to_str().unwrap();
    let (uri, grant) = client.upload_with_grant(path, filename).await;
    let s3 = host.s3().expect("S3 host");
    assert!(
        uri.starts_with(&format!("s3://{}/uploads/", s3.bucket)),
        "upload URI {uri} should be under s3://{}/uploads/",
        s3.bucket
    );
    assert_eq!(grant["method"], "PUT", "{grant:#}");
    let upload_url = grant["upload_url"].as_str().unwrap();
    assert_in_bucket(host, &uri, upload_url, path);
    uri
}

fn output(job: &Value) -> (&str, &str) {
    let output = &job["outputs"][0];
    (
        output["uri"]
            .as_str()
            .unwrap_or_else(|| panic!("no output uri: {job:#}")),
        output["download_url"]
            .as_str()
            .unwrap_or_else(|| panic!("no download_url: {job:#}")),
    )
}

#[tokio::test]
async fn loudness_normalize_through_s3() {
    let host = Host::shared_s3();
    let client = host.client();
    let f = Fixtures::get();
    let target = -16.0;

    let uri = upload(&client, host, &f.speech).await;
    let job = client
        .run_job_ok(&json!({
            "preset": "loudness-normalize",
            "version": "^1",
            "inputs": { "main": uri },
            "params": { "target_lufs": target },
        }))
        .await;
    let out = client
        .download_output(&job, &f.scratch("s3-normalize"), "normalized")
        .await;
    let (out_uri, download_url) = output(&job);
    assert_in_bucket(host, out_uri, download_url, &out);

    let measured = media::loudness(&out);
    eprintln!(
        "[loudness] S3 typical speech -> {target}: I={:.1} LUFS (deviation {:+.2} LU) TP={:.1} dBTP",
        measured.integrated,
        measured.integrated - target,
        measured.true_peak
    );
    assert!(
        (measured.integrated - target).abs() <= 0.5,
        "integrated {measured:?} vs target {target}"
    );
    assert!(
        measured.true_peak <= -1.5,
        "true peak above the default ceiling: {measured:?}"
    );
    let probe = media::probe(&out);
    assert_eq!(probe["format"]["format_name"], "wav", "{probe:#}");
    assert!(job["report"]["gain_db"].is_number(), "report: {job:#}");
}

#[tokio::test]
async fn audio_convert_through_s3() {
    let host = Host::shared_s3();
    let client = host.client();
    let f = Fixtures::get();

    let uri = upload(&client, host, &f.music).await;
    let job = client
        .run_job_ok(&json!({
            "preset": "audio-convert",
            "inputs": { "main": uri },
            "params": { "codec": "flac", "sample_rate": 48_000, "channels": 2 },
        }))
        .await;
    let out = client
        .download_output(&job, &f.scratch("s3-convert"), "converted")
        .await;
    let (out_uri, download_url) = output(&job);
    assert_in_bucket(host, out_uri, download_url, &out);

    let probe = media::probe(&out);
    let audio = media::audio_stream(&probe);
    assert_eq!(audio["codec_name"], "flac", "{probe:#}");
    assert_eq!(probe["format"]["format_name"], "flac", "{probe:#}");
    assert_eq!(media::sample_rate(audio), 48_000, "{probe:#}");
    assert_eq!(audio["channels"], 2, "{probe:#}");
}

#[tokio::test]
async fn missing_s3_object_is_input_not_found() {
    let host = Host::shared_s3();
    let client = host.client();
    let bucket = &host.s3().expect("S3 host").bucket;
    let resp = client
        .submit(&json!({
            "preset": "loudness-normalize",
            "inputs": { "main": format!("s3://{bucket}/uploads/{}/nothing.wav", uuid::Uuid::new_v4()) },
            "params": {},
        }))
        .await;
    let problem = mediahost_e2e::client::expect_problem(resp, 422, "INPUT_NOT_FOUND").await;
    assert_eq!(problem.body["input"], "main", "{:#}", problem.body);
}
