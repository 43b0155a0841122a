//! Budgets on plans, probes and uploads, tried as an attacker would: an upload over the cap
//! (announced, and streamed without a length), an upload of another size than the one declared
//! (local storage and S3), a preset padding a 1-second input forever with `apad`, a file whose
//! 1 MiB tag would swell ffprobe's JSON to megabytes, and an MKV claiming a duration of
//! 40,000,000 s.
//!
//! Every case must end with its code within its bound, leave nothing stored, and be followed by
//! an ordinary job that completes. Each case prints a row (attack, outcome, time to contain); run
//! with `--nocapture` to see the table.
//!
//! The hosts run with `--max-upload-mib 2`: large enough for the 1 MiB tag case, small enough to
//! send more than it in a test.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use mediahost_e2e::client::{expect_problem, json_body, refused_before_body};
use mediahost_e2e::host::{self, StorageKind};
use mediahost_e2e::{Client, Host, hostile, media, process};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const CAP_MIB: u64 = 2;
const CAP: u64 = CAP_MIB << 20;
/// An upload is refused as soon as its announced length or its count passes the cap.
const UPLOAD_BOUND: Duration = Duration::from_secs(10);
/// Validation happens before ffmpeg runs.
const PLAN_BOUND: Duration = Duration::from_secs(10);
/// Probing (with the measuring pass) and converting a second of audio.
const MEDIA_BOUND: Duration = Duration::from_secs(30);
/// What a job record, its log or a dry run may weigh when its input carries a 1 MiB tag.
const RECORD_BOUND: usize = 256 << 10;

// ---- hosts and media ----------------------------------------------------------------------------

struct Suite {
    host: Host,
    media: tempfile::TempDir,
    _presets: tempfile::TempDir,
}

/// A local-storage host with the upload cap, the built-in presets and `hostile-pad`.
fn suite() -> &'static Suite {
    static SUITE: OnceLock<Result<Suite, String>> = OnceLock::new();
    let started = SUITE.get_or_init(|| {
        let presets = hostile::presets_with("budgets-presets", &["hostile-pad-1.0.0.wasm"])?;
        let host = Host::start_with_args(
            StorageKind::Local,
            presets.path(),
            &["--max-upload-mib", &CAP_MIB.to_string()],
        )?;
        eprintln!(
            "[budgets] | {:<50} | {:<18} | {:>8} |",
            "attack", "outcome", "time"
        );
        Ok(Suite {
            host,
            media: process::fixture_dir("budgets-media"),
            _presets: presets,
        })
    });
    match started {
        Ok(suite) => suite,
        Err(why) => panic!("{why}"),
    }
}

fn ffmpeg() -> Command {
    let mut command = Command::new("ffmpeg");
    command.args(["-hide_banner", "-nostdin", "-nostats", "-v", "error", "-y"]);
    command
}

fn media_path(name: &str) -> PathBuf {
    suite().media.path().join(name)
}

fn row(attack: &str, outcome: &str, elapsed: Duration) {
    eprintln!(
        "[budgets] | {attack:<50} | {outcome:<18} | {:>7.2}s |",
        elapsed.as_secs_f64()
    );
}

fn job(preset: &str, uri: &str, params: Value) -> Value {
    json!({ "preset": preset, "inputs": { "main": uri }, "params": params })
}

/// The host still answers and still runs an ordinary job to completion.
async fn assert_still_works(client: &Client) {
    client.assert_healthy().await;
    let tone = media::sine(&media_path("ordinary.wav"), 1.0);
    let uri = client.upload(&tone).await;
    client
        .run_job_ok(&job("audio-convert", &uri, json!({ "codec": "flac" })))
        .await;
}

/// `POST /v1/uploads`, optionally declaring a size; the grant.
async fn grant(client: &Client, filename: &str, size: Option<u64>) -> reqwest::Response {
    let mut body = json!({ "filename": filename });
    if let Some(size) = size {
        body["size_bytes"] = size.into();
    }
    client
        .http()
        .post(client.url("/v1/uploads"))
        .json(&body)
        .send()
        .await
        .expect("POST /v1/uploads")
}

async fn granted(client: &Client, filename: &str, size: Option<u64>) -> (String, String) {
    let grant = json_body(
        grant(client, filename, size).await,
        StatusCode::CREATED,
        "POST /v1/uploads",
    )
    .await;
    (
        grant["uri"].as_str().expect("uri").to_owned(),
        grant["upload_url"].as_str().expect("upload_url").to_owned(),
    )
}

async fn put(client: &Client, url: &str, bytes: Vec<u8>) -> reqwest::Response {
    client
        .http()
        .put(url)
        .body(bytes)
        .send()
        .await
        .expect("PUT the upload")
}

/// Every file under the local object directory of an upload (its key's parent): the object
/// itself and any temporary file.
fn stored_under(uri: &str) -> Vec<PathBuf> {
    let key = uri.strip_prefix("local://").expect("a local URI");
    let dir = suite()
        .host
        .data_dir()
        .join("objects")
        .join(Path::new(key).parent().expect("keys have a parent"));
    std::fs::read_dir(&dir)
        .map(|entries| entries.flatten().map(|e| e.path()).collect())
        .unwrap_or_default()
}

/// PUTs `total` bytes with chunked transfer encoding (no Content-Length), as a client streaming
/// from a pipe would. Returns the status line, or `None` when the host closed the connection
/// before the client finished sending (what a server that stops reading may do).
async fn put_chunked(url: &str, total: usize) -> Option<String> {
    let rest = url.strip_prefix("http://").expect("an http URL");
    let (authority, path) = rest.split_at(rest.find('/').expect("a path"));
    let mut stream = tokio::net::TcpStream::connect(authority)
        .await
        .expect("connect to the host");
    let head = format!(
        "PUT {path} HTTP/1.1\r\nHost: {authority}\r\nTransfer-Encoding: chunked\r\n\
         Connection: close\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.ok()?;
    let chunk = vec![0u8; 64 << 10];
    let mut sent = 0;
    while sent < total {
        let framed = [format!("{:x}\r\n", chunk.len()).as_bytes(), &chunk, b"\r\n"].concat();
        if stream.write_all(&framed).await.is_err() {
            break;
        }
        sent += chunk.len();
    }
    let _ = stream.write_all(b"0\r\n\r\n").await;
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(UPLOAD_BOUND, stream.read_to_end(&mut answer)).await;
    let answer = String::from_utf8_lossy(&answer);
    answer
        .lines()
        .next()
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
}

// ---- uploads ------------------------------------------------------------------------------------

#[tokio::test]
async fn an_upload_over_the_cap_is_refused_and_stores_nothing() {
    let client = suite().host.client();
    let over = (CAP + (1 << 20)) as usize;

    let (uri, url) = granted(&client, "big.bin", None).await;
    let started = Instant::now();
    let (base, path) = url.split_at(url.find("/v1/").expect("a host URL"));
    let answer = refused_before_body(base, &format!("PUT {path}"), &[], over, UPLOAD_BOUND).await;
    let elapsed = started.elapsed();
    row("upload: 3 MiB PUT, cap 2 MiB", "UPLOAD_TOO_LARGE", elapsed);
    assert!(
        answer.starts_with("HTTP/1.1 413 "),
        "answered before the body: {answer}"
    );
    assert!(answer.contains("\"code\":\"UPLOAD_TOO_LARGE\""), "{answer}");
    assert!(
        answer.contains("--max-upload-mib"),
        "the message names the flag: {answer}"
    );
    assert!(elapsed < UPLOAD_BOUND, "took {elapsed:?}");
    assert!(stored_under(&uri).is_empty(), "{:?}", stored_under(&uri));

    // The same without a length: counted while streaming, stopped, removed.
    let (uri, url) = granted(&client, "streamed.bin", None).await;
    let started = Instant::now();
    let status = put_chunked(&url, over).await;
    let elapsed = started.elapsed();
    row(
        "upload: 3 MiB chunked PUT (no length), cap 2 MiB",
        if status.is_some() {
            "UPLOAD_TOO_LARGE"
        } else {
            "connection closed"
        },
        elapsed,
    );
    if let Some(status) = &status {
        assert!(status.contains(" 413 "), "answered {status}");
    }
    assert!(elapsed < UPLOAD_BOUND, "took {elapsed:?}");
    assert!(stored_under(&uri).is_empty(), "{:?}", stored_under(&uri));

    // A declared size over the cap is refused before any URL is handed out.
    let started = Instant::now();
    let resp = grant(&client, "declared.bin", Some(CAP + 1)).await;
    expect_problem(resp, 413, "UPLOAD_TOO_LARGE").await;
    row(
        "upload: size_bytes over the cap at POST",
        "UPLOAD_TOO_LARGE",
        started.elapsed(),
    );

    // Up to the cap is fine.
    let (uri, url) = granted(&client, "fits.bin", None).await;
    let resp = put(&client, &url, vec![7u8; CAP as usize]).await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    assert_eq!(stored_under(&uri).len(), 1);

    assert_still_works(&client).await;
}

#[tokio::test]
async fn a_local_upload_of_another_size_than_declared_is_refused() {
    let client = suite().host.client();
    let (uri, url) = granted(&client, "sized.bin", Some(1000)).await;
    assert!(url.contains("size=1000"), "{url}");

    let started = Instant::now();
    let resp = put(&client, &url, vec![1u8; 2000]).await;
    expect_problem(resp, 422, "UPLOAD_INVALID").await;
    row(
        "upload: 2000 bytes to a URL signed for 1000",
        "UPLOAD_INVALID",
        started.elapsed(),
    );
    let resp = put(&client, &url, vec![1u8; 500]).await;
    expect_problem(resp, 422, "UPLOAD_INVALID").await;
    // The size is signed: raising it in the URL breaks the signature.
    let forged = url.replace("size=1000", "size=2000");
    let resp = put(&client, &forged, vec![1u8; 2000]).await;
    expect_problem(resp, 403, "SIGNATURE_INVALID").await;
    assert!(stored_under(&uri).is_empty(), "{:?}", stored_under(&uri));

    let resp = put(&client, &url, vec![1u8; 1000]).await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    assert_eq!(stored_under(&uri).len(), 1);

    assert_still_works(&client).await;
}

#[tokio::test]
async fn an_s3_upload_of_another_size_than_declared_is_refused_by_the_store() {
    let s3_host = Host::start_with_args(
        StorageKind::S3,
        &host::presets_dir(),
        &["--max-upload-mib", &CAP_MIB.to_string()],
    )
    .expect("start an S3 host");
    let client = s3_host.client();
    let (uri, url) = granted(&client, "sized.bin", Some(1000)).await;
    let s3 = s3_host.s3().expect("an S3 host");
    let key = uri
        .strip_prefix(&format!("s3://{}/", s3.bucket))
        .expect("an s3 URI of the host's bucket");
    let object = s3.server.root().join(&s3.bucket).join(key);

    let started = Instant::now();
    let resp = put(&client, &url, vec![1u8; 2000]).await;
    let status = resp.status();
    let elapsed = started.elapsed();
    row(
        "upload (S3): 2000 bytes to a URL signed for 1000",
        &format!("{} from S3", status.as_u16()),
        elapsed,
    );
    assert!(status.is_client_error(), "S3 answered {status}");
    assert!(elapsed < UPLOAD_BOUND, "took {elapsed:?}");
    assert!(!object.exists(), "{} was stored", object.display());

    let resp = put(&client, &url, vec![1u8; 1000]).await;
    assert!(resp.status().is_success(), "S3 answered {}", resp.status());
    assert_eq!(std::fs::metadata(&object).map(|m| m.len()).ok(), Some(1000));

    let resp = grant(&client, "declared.bin", Some(CAP + 1)).await;
    expect_problem(resp, 413, "UPLOAD_TOO_LARGE").await;

    let tone = media::sine(&media_path("s3-ordinary.wav"), 1.0);
    let uri = client.upload(&tone).await;
    client
        .run_job_ok(&job("audio-convert", &uri, json!({ "codec": "flac" })))
        .await;
}

// ---- plans --------------------------------------------------------------------------------------

#[tokio::test]
async fn padding_forever_is_refused_before_ffmpeg_runs() {
    let client = suite().host.client();
    let tone = media::sine(&media_path("pad-input.wav"), 1.0);
    let uri = client.upload(&tone).await;
    let id = client.submit_ok(&job("hostile-pad", &uri, json!({}))).await;
    let started = Instant::now();
    let failed = client.wait_terminal(&id).await;
    let elapsed = started.elapsed();
    let code = failed["error"]["code"].as_str().unwrap_or("?");
    row("preset: apad without a length on 1 s", code, elapsed);
    assert_eq!(failed["state"], "FAILED", "{failed:#}");
    assert_eq!(code, "PLAN_REJECTED", "{failed:#}");
    assert_eq!(failed["error"]["step"], "validate", "{failed:#}");
    let message = failed["error"]["message"].as_str().unwrap_or("");
    assert!(
        message.contains("apad"),
        "the message names apad: {message}"
    );
    assert!(elapsed < PLAN_BOUND, "took {elapsed:?}");
    let written = suite().host.data_dir().join("objects/jobs").join(&id);
    assert!(!written.exists(), "{} exists", written.display());

    assert_still_works(&client).await;
}

/// The `-t` values in a job's ffmpeg command lines (its log).
fn output_bounds(logs: &Value) -> Vec<f64> {
    let text = logs.to_string();
    text.match_indices("ffmpeg -hide_banner")
        .flat_map(|(at, _)| {
            let line = &text[at..];
            let line = &line[..line.find('"').unwrap_or(line.len())];
            line.split(" -t ")
                .skip(1)
                .filter_map(|rest| rest.split(' ').next()?.parse::<f64>().ok())
                .collect::<Vec<_>>()
        })
        .collect()
}

#[tokio::test]
async fn every_output_gets_a_bound_from_its_input() {
    let client = suite().host.client();
    let tone = media::sine(&media_path("bounded.wav"), 2.0);
    let uri = client.upload(&tone).await;
    let done = client
        .run_job_ok(&job("audio-convert", &uri, json!({ "codec": "flac" })))
        .await;
    let id = done["id"].as_str().expect("a job id");
    let logs = client.get_json(&format!("/v1/jobs/{id}/logs")).await;
    let bounds = output_bounds(&logs);
    assert!(!bounds.is_empty(), "no -t in the log: {logs:#}");
    assert!(
        bounds.iter().all(|t| (2.0..4.0).contains(t)),
        "bounds {bounds:?}"
    );
}

// ---- probes -------------------------------------------------------------------------------------

/// A dry run of `audio-convert` to FLAC on `uri`.
async fn dry_run(client: &Client, uri: &str) -> reqwest::Response {
    client
        .http()
        .post(client.url("/v1/presets/audio-convert/1.0.0/plan"))
        .json(&json!({ "inputs": { "main": uri }, "params": { "codec": "flac" } }))
        .send()
        .await
        .expect("dry run")
}

/// A job that converted an input to FLAC: its final record, the time from submit to its end, and
/// its log.
struct Converted {
    job: Value,
    elapsed: Duration,
    logs: Value,
}

async fn convert_to_flac(client: &Client, uri: &str) -> Converted {
    let id = client
        .submit_ok(&job("audio-convert", uri, json!({ "codec": "flac" })))
        .await;
    let started = Instant::now();
    let job = client.wait_terminal(&id).await;
    let elapsed = started.elapsed();
    let logs = client.get_json(&format!("/v1/jobs/{id}/logs")).await;
    Converted { job, elapsed, logs }
}

/// A FLAC whose comment is 1 MiB, mostly control bytes that ffprobe escapes six-fold in JSON.
fn tagged_flac() -> PathBuf {
    let dir = suite().media.path();
    let meta = dir.join("huge-tag.ffmeta");
    let mut text = b";FFMETADATA1\ncomment=".to_vec();
    text.extend((0..(1 << 20)).map(|i| if i % 16 == 0 { b'x' } else { 1u8 }));
    text.push(b'\n');
    std::fs::write(&meta, text).expect("write the metadata file");
    let path = dir.join("huge-tag.flac");
    media::run(
        ffmpeg()
            .args(["-f", "lavfi", "-i", "sine=f=440:d=1:r=48000"])
            .arg("-i")
            .arg(&meta)
            .args(["-map", "0", "-map_metadata", "1"])
            .arg(&path),
        "ffmpeg huge tag",
    );
    let probed = media::probe(&path);
    let comment = probed["format"]["tags"]["comment"]
        .as_str()
        .or_else(|| probed["format"]["tags"]["COMMENT"].as_str())
        .unwrap_or("");
    assert!(comment.len() >= 1 << 20, "the fixture carries a 1 MiB tag");
    path
}

#[tokio::test]
async fn a_probe_that_would_amplify_stays_bounded() {
    let client = suite().host.client();
    let uri = client.upload(&tagged_flac()).await;

    // A dry run probes in the API process and returns the media info.
    let started = Instant::now();
    let text = dry_run(&client, &uri)
        .await
        .text()
        .await
        .expect("dry run body");
    row(
        "probe: 1 MiB tag in a dry run",
        &format!("{} bytes", text.len()),
        started.elapsed(),
    );
    assert!(
        text.len() < RECORD_BOUND,
        "the dry run is {} bytes",
        text.len()
    );
    let answer: Value = serde_json::from_str(&text).expect("dry run JSON");
    let tags = answer["inputs"]["main"]["container"]["tags"]
        .as_array()
        .expect("tags");
    let comment = tags
        .iter()
        .find(|t| {
            t["key"]
                .as_str()
                .is_some_and(|k| k.eq_ignore_ascii_case("comment"))
        })
        .expect("the comment tag is kept, cut");
    assert!(comment["value"].as_str().unwrap().len() <= 1100);

    let Converted {
        job: done,
        elapsed,
        logs,
    } = convert_to_flac(&client, &uri).await;
    let weight = done.to_string().len() + logs.to_string().len();
    row(
        "probe: 1 MiB tag in a job",
        done["state"].as_str().unwrap_or("?"),
        elapsed,
    );
    assert_eq!(done["state"], "COMPLETED", "{done:#}");
    assert!(elapsed < MEDIA_BOUND, "took {elapsed:?}");
    assert!(weight < RECORD_BOUND, "job and log weigh {weight} bytes");

    assert_still_works(&client).await;
}

/// A 1-second PCM MKV whose segment duration claims 40,000,000 s (the Duration element patched
/// in place; ffprobe reports the claim).
fn lying_mkv() -> PathBuf {
    let path = media_path("lying.mkv");
    media::run(
        ffmpeg()
            .args(["-f", "lavfi", "-i", "sine=f=440:d=1:r=48000"])
            .args(["-c:a", "pcm_s16le"])
            .arg(&path),
        "ffmpeg mkv",
    );
    let mut bytes = std::fs::read(&path).expect("read the mkv");
    // Duration (0x4489), an 8-byte float, in milliseconds at the default timecode scale.
    let at = bytes
        .windows(3)
        .position(|w| w == [0x44, 0x89, 0x88])
        .expect("the mkv has an 8-byte Duration element");
    bytes[at + 3..at + 11].copy_from_slice(&4.0e10f64.to_be_bytes());
    std::fs::write(&path, bytes).expect("write the mkv");
    let claimed: f64 = media::probe(&path)["format"]["duration"]
        .as_str()
        .and_then(|d| d.parse().ok())
        .unwrap_or(0.0);
    assert!(claimed >= 4.0e7, "ffprobe reports the claim, {claimed}");
    path
}

#[tokio::test]
async fn a_lying_duration_gets_limits_from_the_real_length() {
    let client = suite().host.client();
    let uri = client.upload(&lying_mkv()).await;

    let answer = json_body(dry_run(&client, &uri).await, StatusCode::OK, "dry run").await;
    let container = &answer["inputs"]["main"]["container"];
    let measured = container["duration_s"].as_f64().unwrap_or(f64::MAX);
    assert!(measured < 2.0, "the measured length is used: {container:#}");
    let noted = container["tags"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|t| t["key"] == "mediahost_claimed_duration_s");
    assert!(
        noted.is_some_and(|t| t["value"] == "40000000"),
        "the claim is noted: {container:#}"
    );

    let Converted {
        job: done,
        elapsed,
        logs,
    } = convert_to_flac(&client, &uri).await;
    let bounds = output_bounds(&logs);
    row(
        "media: MKV claiming 40,000,000 s",
        &format!("{} -t {:?}", done["state"].as_str().unwrap_or("?"), bounds),
        elapsed,
    );
    assert_eq!(done["state"], "COMPLETED", "{done:#}");
    assert!(elapsed < MEDIA_BOUND, "took {elapsed:?}");
    assert!(
        !bounds.is_empty() && bounds.iter().all(|t| *t < 3.0),
        "the output bound comes from the real length: {bounds:?}\n{logs:#}"
    );
    let duration = done["outputs"][0]["duration_s"]
        .as_f64()
        .unwrap_or(f64::MAX);
    assert!(duration < 2.0, "the output is {duration} s");

    assert_still_works(&client).await;
}
