//! Interface versions side by side, as preset authors and users meet them: a 1.0 component built
//! from the frozen `wit/1.0.0` and the released 1.0 artifacts run unchanged, and a 2.0 preset
//! plans every new output kind (a still, a sprite-sheet image sequence, HLS renditions grouped
//! in a package, an optional output, a WebVTT document) through the dry run and a job whose
//! master playlist the host writes last, from what the segments measure.

use std::path::{Path, PathBuf};

use mediahost_e2e::host::StorageKind;
use mediahost_e2e::media::{self, Fixtures};
use mediahost_e2e::{Client, Host, interface_fixtures, released};
use serde_json::{Value, json};

/// A host whose presets are the interface fixtures and the released loudness-normalize 1.0.0.
fn host(storage: StorageKind, label: &str) -> Host {
    let dir = Fixtures::get().scratch(&format!("presets-{label}"));
    let fixtures = [
        interface_fixtures::v1_aac().expect("the 1.0 fixture builds"),
        interface_fixtures::v2_showcase().expect("the 2.0 fixture builds"),
        mediahost_e2e::repo_root().join("presets-wasm/released/loudness-normalize-1.0.0.wasm"),
    ];
    for file in fixtures {
        std::fs::copy(&file, dir.join(file.file_name().unwrap())).unwrap();
    }
    Host::start_with_presets(storage, &dir).expect("host starts")
}

fn video(dir: &Path) -> PathBuf {
    media::clip_with_audio(&dir.join("clip.mp4"))
}

/// Runs the showcase on the test clip (and, with `photo`, the test photo) with `params`, and
/// returns the completed job and the directory for its downloads.
async fn showcase(host: &Host, label: &str, photo_too: bool, params: Value) -> (Value, PathBuf) {
    let client = host.client();
    let dir = Fixtures::get().scratch(label);
    let mut inputs = json!({"main": client.upload(&video(&dir)).await});
    if photo_too {
        inputs["photo"] = json!(client.upload(&photo(&dir)).await);
    }
    let job = client
        .run_job_ok(&json!({
            "preset": "fixture-v2-showcase", "version": "1.0.0", "inputs": inputs, "params": params,
        }))
        .await;
    (job, dir)
}

/// The EXIF block (big-endian TIFF, one IFD entry: orientation 6) and XMP packet the test photo
/// carries.
const EXIF_TIFF: &[u8] = b"MM\0*\0\0\0\x08\0\x01\x01\x12\0\x03\0\0\0\x01\0\x06\0\0\0\0\0\0";
const XMP: &str = "<x:xmpmeta xmlns:x=\"adobe:ns:meta/\"><rdf:RDF xmlns:rdf=\
    \"http://www.w3.org/1999/02/22-rdf-syntax-ns#\"><rdf:Description mediahost-test=\"kept\"/>\
    </rdf:RDF></x:xmpmeta>";

/// A 320x240 JPEG made by ffmpeg, with an EXIF and an XMP APP1 segment put in after its SOI.
fn photo(dir: &Path) -> PathBuf {
    let plain = dir.join("plain.jpg");
    media::run(
        media::ffmpeg()
            .args(["-f", "lavfi", "-i", "testsrc2=size=320x240:duration=1"])
            .args(["-frames:v", "1", "-q:v", "3"])
            .arg(&plain),
        "ffmpeg test photo",
    );
    let jpeg = std::fs::read(&plain).unwrap();
    let segment = |payload: &[u8]| {
        let mut s = vec![0xff, 0xe1];
        s.extend_from_slice(&((payload.len() + 2) as u16).to_be_bytes());
        s.extend_from_slice(payload);
        s
    };
    let mut exif = b"Exif\0\0".to_vec();
    exif.extend_from_slice(EXIF_TIFF);
    let mut xmp = b"http://ns.adobe.com/xap/1.0/\0".to_vec();
    xmp.extend_from_slice(XMP.as_bytes());
    let mut out = jpeg[..2].to_vec();
    out.extend(segment(&exif));
    out.extend(segment(&xmp));
    out.extend_from_slice(&jpeg[2..]);
    let dest = dir.join("photo.jpg");
    std::fs::write(&dest, out).unwrap();
    dest
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

fn output<'a>(job: &'a Value, name: &str) -> &'a Value {
    job["outputs"]
        .as_array()
        .and_then(|o| o.iter().find(|o| o["name"] == name))
        .unwrap_or_else(|| panic!("no output '{name}':\n{job:#}"))
}

async fn get_text(client: &Client, url: &str) -> (String, String, String) {
    let resp = client
        .http()
        .get(url)
        .send()
        .await
        .expect("GET download url");
    assert!(resp.status().is_success(), "GET {url}: {}", resp.status());
    let header = |name: &str| {
        resp.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let (content_type, cache) = (header("content-type"), header("cache-control"));
    (resp.text().await.unwrap(), content_type, cache)
}

#[tokio::test]
async fn a_1_0_component_built_from_the_frozen_wit_runs_as_before() {
    let host = host(StorageKind::Local, "v1");
    let client = host.client();
    let f = Fixtures::get();
    let input = client.upload(&f.music).await;
    let job = client
        .run_job_ok(&json!({
            "preset": "fixture-v1-aac", "version": "1.0.0", "inputs": {"main": input},
        }))
        .await;
    let out = output(&job, "main");
    assert_eq!(out["codecs"], json!(["aac"]), "{job:#}");
    assert_eq!(out["kind"], "file");
    assert_eq!(job["outcome"], "complete");

    let lock = released::Lock::read(&mediahost_e2e::repo_root().join(released::LOCK_FILE))
        .expect("released.lock");
    let pinned = lock
        .entries
        .iter()
        .find(|e| e.name == "loudness-normalize" && e.version == "1.0.0")
        .expect("loudness-normalize 1.0.0 is released");
    let shown = client
        .get_json("/v1/presets/loudness-normalize/1.0.0")
        .await;
    assert_eq!(
        shown["sha256"], pinned.sha256,
        "the host runs the released bytes"
    );
    let job = client
        .run_job_ok(&json!({
            "preset": "loudness-normalize", "version": "=1.0.0", "inputs": {"main": input},
        }))
        .await;
    assert_eq!(job["preset"]["version"], "1.0.0");
}

#[tokio::test]
async fn a_2_0_dry_run_shows_every_output_kind_the_package_and_the_document() {
    let host = host(StorageKind::Local, "v2-dry");
    let client = host.client();
    let dir = Fixtures::get().scratch("v2-dry");
    let input = client.upload(&video(&dir)).await;
    let plan = |round: u32, analyses: Value| json!({"inputs": {"main": input}, "round": round, "analyses": analyses});
    let url = client.url("/v1/presets/fixture-v2-showcase/1.0.0/plan");
    let first: Value = client
        .http()
        .post(&url)
        .json(&plan(1, json!([])))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(first["decision"], "next", "{first:#}");
    assert_eq!(
        first["analyses"].as_array().map(Vec::len),
        Some(4),
        "{first:#}"
    );

    let analyses = json!([
        {"id": "black", "value": {"BlackIntervals": []}},
        {"id": "scenes", "value": {"SceneChanges": []}},
        {"id": "crop", "value": {"Crop": null}},
        {"id": "scan", "value": {"Interlacing": {"verdict": "Progressive",
            "progressive_frames": 10, "top_field_first_frames": 0,
            "bottom_field_first_frames": 0, "undetermined_frames": 0}}},
    ]);
    let second: Value = client
        .http()
        .post(&url)
        .json(&plan(2, analyses))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(second["decision"], "finish", "{second:#}");
    let commands = second["commands"].to_string();
    for expected in [
        "-frames:v",
        "hls",
        "index.m3u8",
        "init.mp4",
        "0001.jpg",
        "poster.jpg",
    ] {
        assert!(
            commands.contains(expected),
            "no {expected} in the commands:\n{second:#}"
        );
    }
    assert_eq!(second["packages"][0]["name"], "master", "{second:#}");
    assert_eq!(second["documents"][0]["name"], "thumbnails", "{second:#}");
}

#[tokio::test]
async fn a_2_0_job_stores_every_output_kind_and_writes_the_master_last() {
    let host = host(StorageKind::Local, "v2-job");
    let client = host.client();
    let (job, dir) = showcase(&host, "v2-job", true, json!({})).await;
    assert_eq!(job["outcome"], "complete", "{job:#}");
    assert_eq!(job["report"]["progressive"], true, "{job:#}");

    let poster = output(&job, "poster");
    assert_eq!(poster["kind"], "still");
    assert_eq!(poster["streams"][0]["width"], 320, "{poster:#}");
    let (_, content_type, _) = get_text(&client, poster["download_url"].as_str().unwrap()).await;
    assert_eq!(content_type, "image/jpeg");

    // ffmpeg 5.1 drops EXIF; the host copies the photo's EXIF and XMP into the WebP it keeps
    // them in, and leaves none in the JPEG that strips them.
    let kept = client
        .download(
            output(&job, "photo_kept")["download_url"].as_str().unwrap(),
            &dir.join("kept.webp"),
        )
        .await;
    let kept = std::fs::read(kept).unwrap();
    assert!(contains(&kept, EXIF_TIFF), "the WebP lost the photo's EXIF");
    assert!(
        contains(&kept, XMP.as_bytes()),
        "the WebP lost the photo's XMP"
    );
    let stripped = client
        .download(
            output(&job, "photo_stripped")["download_url"]
                .as_str()
                .unwrap(),
            &dir.join("stripped.jpg"),
        )
        .await;
    let stripped = std::fs::read(stripped).unwrap();
    assert!(!contains(&stripped, b"Exif\0\0") && !contains(&stripped, b"mediahost-test"));

    let sprites = output(&job, "sprites");
    assert_eq!(sprites["kind"], "image-sequence");
    assert_eq!(
        sprites["streams"][0]["width"], 640,
        "a 4x4 grid of 160x90 tiles"
    );

    let rendition = output(&job, "240p");
    assert_eq!(rendition["kind"], "hls-rendition");
    let objects = rendition["objects"]
        .as_array()
        .expect("a rendition's objects");
    let object = |suffix: &str| {
        objects
            .iter()
            .find(|o| o["key"].as_str().unwrap().ends_with(suffix))
            .unwrap_or_else(|| panic!("no object *{suffix}: {rendition:#}"))
    };
    for (suffix, content_type, cache) in [
        ("/index.m3u8", "application/vnd.apple.mpegurl", "max-age=10"),
        ("/init.mp4", "video/mp4", "immutable"),
        (".m4s", "video/iso.segment", "immutable"),
    ] {
        let o = object(suffix);
        assert_eq!(o["content_type"], content_type);
        let (_, served_type, served_cache) =
            get_text(&client, o["download_url"].as_str().unwrap()).await;
        assert_eq!(served_type, content_type, "{suffix}");
        assert!(
            served_cache.contains(cache),
            "{suffix}: Cache-Control {served_cache}"
        );
    }

    let thumbnails = output(&job, "thumbnails");
    let (vtt, content_type, _) =
        get_text(&client, thumbnails["download_url"].as_str().unwrap()).await;
    assert_eq!(content_type, "text/vtt");
    assert!(vtt.starts_with("WEBVTT"), "{vtt}");
    assert!(vtt.contains("sprites/0001.jpg#xywh=160,0,160,90"), "{vtt}");

    let package = output(&job, "master");
    assert_eq!(package["kind"], "hls-package");
    let (master, content_type, _) =
        get_text(&client, package["download_url"].as_str().unwrap()).await;
    assert_eq!(content_type, "application/vnd.apple.mpegurl");
    check_master(&master, &host, &job);
    master_is_stored_last(&host, &job);
}

/// The master names both variants and the audio group, with the figures the segments measure.
fn check_master(master: &str, host: &Host, job: &Value) {
    assert!(master.contains("#EXT-X-INDEPENDENT-SEGMENTS"), "{master}");
    assert!(
        master.contains("#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"audio\""),
        "{master}"
    );
    let objects = host.data_dir().join("objects");
    let id = job["id"].as_str().unwrap();
    let measure = |rendition: &str| -> (u64, u64) {
        let dir = objects.join("jobs").join(id).join(rendition);
        let playlist = std::fs::read_to_string(dir.join("index.m3u8")).unwrap();
        let (mut peak, mut bits, mut seconds) = (0f64, 0f64, 0f64);
        let mut duration = None;
        for line in playlist.lines() {
            if let Some(d) = line.strip_prefix("#EXTINF:") {
                duration = d
                    .trim_end_matches(',')
                    .split(',')
                    .next()
                    .and_then(|d| d.parse().ok());
            } else if !line.starts_with('#') && !line.is_empty() {
                let d: f64 = duration.take().expect("EXTINF before each segment");
                let b = std::fs::metadata(dir.join(line)).unwrap().len() as f64 * 8.0;
                peak = peak.max(b / d);
                bits += b;
                seconds += d;
            }
        }
        (peak.ceil() as u64, (bits / seconds).ceil() as u64)
    };
    let (audio_peak, audio_average) = measure("audio");
    for variant in ["240p", "144p"] {
        let (peak, average) = measure(variant);
        let line = master
            .lines()
            .zip(master.lines().skip(1))
            .find(|(_, uri)| *uri == format!("{variant}/index.m3u8"))
            .map(|(inf, _)| inf)
            .unwrap_or_else(|| panic!("no variant {variant}:\n{master}"));
        let attribute = |key: &str| -> u64 {
            line.split(&format!("{key}="))
                .nth(1)
                .and_then(|v| v.split(',').next())
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("no {key} in {line}"))
        };
        let near = |got: u64, want: u64| got.abs_diff(want) <= 2;
        assert!(
            near(attribute("BANDWIDTH"), peak + audio_peak),
            "{variant}: {line}"
        );
        assert!(
            near(attribute("AVERAGE-BANDWIDTH"), average + audio_average),
            "{variant}: {line}"
        );
        assert!(line.contains("CODECS=\"avc1."), "{line}");
        assert!(line.contains("mp4a.40.2"), "{line}");
        assert!(line.contains("FRAME-RATE=24.000"), "{line}");
        assert!(line.contains("AUDIO=\"audio\""), "{line}");
    }
    assert!(master.contains("RESOLUTION=320x240"), "{master}");
}

/// Every object of the job is older than its master playlist, except the manifest after it.
fn master_is_stored_last(host: &Host, job: &Value) {
    let root = host
        .data_dir()
        .join("objects/jobs")
        .join(job["id"].as_str().unwrap());
    let modified = |p: &Path| std::fs::metadata(p).unwrap().modified().unwrap();
    let master = modified(&root.join("master.m3u8"));
    let mut pending = vec![root.clone()];
    let mut seen = 0;
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                pending.push(path);
            } else if !path.ends_with("manifest.json") && !path.ends_with("master.m3u8") {
                seen += 1;
                assert!(
                    modified(&path) <= master,
                    "{} was stored after the master playlist",
                    path.display()
                );
            }
        }
    }
    assert!(
        seen > 10,
        "the job stored {seen} objects besides its master"
    );
}

#[tokio::test]
async fn an_optional_output_that_fails_leaves_the_job_partial_and_the_rest_whole() {
    let host = host(StorageKind::Local, "v2-partial");
    let client = host.client();
    let (job, _) = showcase(&host, "v2-partial", false, json!({"break_optional": true})).await;
    assert_eq!(job["outcome"], "partial", "{job:#}");
    let broken = output(&job, "broken");
    assert_eq!(broken["state"], "FAILED", "{broken:#}");
    assert_eq!(broken["error"]["code"], "FFMPEG_FAILED", "{broken:#}");
    for name in ["240p", "144p", "audio", "master", "poster"] {
        assert_eq!(output(&job, name)["state"], "COMPLETED", "{name}: {job:#}");
    }
    let (master, _, _) = get_text(
        &client,
        output(&job, "master")["download_url"].as_str().unwrap(),
    )
    .await;
    assert!(!master.contains("broken"), "{master}");
}

#[tokio::test]
async fn packaged_outputs_keep_their_content_type_and_cache_policy_on_s3() {
    let host = host(StorageKind::S3, "v2-s3");
    let client = host.client();
    let (job, _) = showcase(&host, "v2-s3", false, json!({})).await;
    let rendition = output(&job, "144p");
    let segment = rendition["objects"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["key"].as_str().unwrap().ends_with(".m4s"))
        .expect("a segment");
    let (_, content_type, cache) =
        get_text(&client, segment["download_url"].as_str().unwrap()).await;
    assert_eq!(content_type, "video/iso.segment");
    assert!(cache.contains("immutable"), "{cache}");
    let (_, content_type, cache) = get_text(
        &client,
        output(&job, "master")["download_url"].as_str().unwrap(),
    )
    .await;
    assert_eq!(content_type, "application/vnd.apple.mpegurl");
    assert!(cache.contains("max-age=10"), "{cache}");
}
