//! media-info as a media library uses it: the JSON document and the report say what ffprobe
//! says of the same file (duration, dimensions, display size and rotation, frame rate, codecs
//! and profiles, bit rates, size, colour, field order, audio layout, tags), and nothing is made.

use std::path::Path;

use mediahost_e2e::video::{self, Source, Sources, job_body, output, run_job_ok};
use mediahost_e2e::{Host, media};
use serde_json::{Value, json};

/// Runs media-info on `path`; returns the job and its `info` document.
async fn describe(path: &Path) -> (Value, Value) {
    let client = Host::shared_local().client();
    let input = client.upload(path).await;
    let job = run_job_ok(&client, &job_body("media-info", &input, json!({}))).await;
    let document = output(&job, "info");
    assert_eq!(document["kind"], "document", "{job:#}");
    let outputs = job["outputs"].as_array().unwrap();
    assert!(
        outputs.iter().all(|o| o["kind"] == "document"),
        "media-info makes no media: {job:#}"
    );
    let text = video::get_text(&client, document["download_url"].as_str().unwrap()).await;
    let info: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
    (job, info)
}

fn number(v: &Value) -> Option<f64> {
    v.as_f64()
        .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
}

fn near(a: &Value, b: &Value, tolerance: f64) -> bool {
    matches!((number(a), number(b)), (Some(x), Some(y)) if (x - y).abs() <= tolerance)
}

/// The document's video entry agrees with ffprobe's stream.
fn video_agrees(got: &Value, probe: &Value) {
    assert_eq!(got["index"], probe["index"], "{got:#}");
    assert_eq!(got["codec"], probe["codec_name"], "{got:#}");
    assert_eq!(got["profile"], probe["profile"], "{got:#}");
    assert_eq!(got["width"], probe["width"], "{got:#}");
    assert_eq!(got["height"], probe["height"], "{got:#}");
    let (dw, dh) = video::display_size(probe);
    assert_eq!(
        (
            got["display_width"].as_u64(),
            got["display_height"].as_u64()
        ),
        (Some(dw), Some(dh)),
        "{got:#}"
    );
    assert_eq!(got["frame_rate"], probe["r_frame_rate"], "{got:#}");
    assert_eq!(got["pixel_format"], probe["pix_fmt"], "{got:#}");
    for (ours, theirs) in [
        ("color_range", "color_range"),
        ("color_space", "color_space"),
        ("color_transfer", "color_transfer"),
        ("color_primaries", "color_primaries"),
    ] {
        assert_eq!(got[ours], probe[theirs], "{ours}: {got:#}");
    }
    assert!(
        near(&got["bit_rate"], &probe["bit_rate"], 1.0),
        "bit_rate: {got:#} vs {probe:#}"
    );
    assert_eq!(
        got["rotation"].as_i64().unwrap_or(0).abs(),
        video::rotation(probe).abs(),
        "{got:#}"
    );
}

#[tokio::test]
async fn a_clip_is_described_as_ffprobe_sees_it() {
    let path = Sources::get().path(Source::P1080);
    let (job, info) = describe(path).await;
    let probe = video::probe(path);
    eprintln!(
        "[e2e] media-info of the 1080p clip: {info:#}\nreport {}",
        job["report"]
    );

    let c = &info["container"];
    assert!(
        c["format"].as_str().is_some_and(|f| f.contains("mp4")),
        "{c:#}"
    );
    assert!(
        near(&c["duration_s"], &probe["format"]["duration"], 0.05),
        "{c:#}"
    );
    assert_eq!(
        c["size_bytes"].as_u64(),
        Some(std::fs::metadata(path).unwrap().len()),
        "{c:#}"
    );
    assert!(
        near(&c["bit_rate"], &probe["format"]["bit_rate"], 1.0),
        "{c:#}"
    );
    assert_eq!(
        c["tags"]["major_brand"], probe["format"]["tags"]["major_brand"],
        "{c:#}"
    );

    let videos = info["video"].as_array().expect("video list");
    assert_eq!(videos.len(), 1, "{info:#}");
    let v = &videos[0];
    video_agrees(v, video::stream(&probe, "video").unwrap());
    assert_eq!(v["frame_rate"], "25/1");
    assert_eq!(v["color_primaries"], "bt709");
    assert_eq!(v["field_order"], "progressive", "{v:#}");

    let audios = info["audio"].as_array().expect("audio list");
    assert_eq!(audios.len(), 1, "{info:#}");
    let a = &audios[0];
    let pa = video::stream(&probe, "audio").unwrap();
    assert_eq!(a["index"], pa["index"]);
    assert_eq!(a["codec"], "aac", "{a:#}");
    assert_eq!(a["profile"], "LC", "{a:#}");
    assert!(near(&a["sample_rate"], &json!(48000), 0.0), "{a:#}");
    assert_eq!(a["channels"], 2, "{a:#}");
    assert_eq!(a["channel_layout"], "stereo", "{a:#}");
    assert!(near(&a["bit_rate"], &pa["bit_rate"], 1.0), "{a:#}");

    let r = &job["report"];
    assert!(
        near(&r["duration_s"], &probe["format"]["duration"], 0.05),
        "{r:#}"
    );
    assert_eq!(
        (r["width"].as_u64(), r["height"].as_u64()),
        (Some(1920), Some(1080)),
        "{r:#}"
    );
    assert_eq!(r["video_codec"], "h264", "{r:#}");
    assert_eq!(r["audio_codec"], "aac", "{r:#}");
    assert_eq!(r["frame_rate"], "25/1", "{r:#}");
}

#[tokio::test]
async fn a_phone_video_reports_its_rotation_and_display_size() {
    let path = Sources::get().path(Source::Rotated);
    let (job, info) = describe(path).await;
    let v = &info["video"][0];
    video_agrees(v, video::stream(&video::probe(path), "video").unwrap());
    assert_eq!(v["rotation"].as_i64().map(i64::abs), Some(90), "{v:#}");
    assert_eq!(
        (v["width"].as_u64(), v["height"].as_u64()),
        (Some(1280), Some(720))
    );
    assert_eq!(
        (v["display_width"].as_u64(), v["display_height"].as_u64()),
        (Some(720), Some(1280))
    );
    eprintln!(
        "[e2e] media-info of the phone video: report {}",
        job["report"]
    );
}

#[tokio::test]
async fn an_interlaced_ntsc_and_a_silent_clip_say_so() {
    let sources = Sources::get();
    let path = sources.path(Source::Interlaced);
    let (_, info) = describe(path).await;
    let order = info["video"][0]["field_order"].as_str().unwrap_or_default();
    assert!(matches!(order, "tt" | "tff"), "{info:#}");

    let path = sources.path(Source::P480);
    let (job, info) = describe(path).await;
    video_agrees(
        &info["video"][0],
        video::stream(&video::probe(path), "video").unwrap(),
    );
    assert_eq!(info["video"][0]["frame_rate"], "30000/1001");
    assert_eq!(info["video"][0]["color_primaries"], "smpte170m");
    assert_eq!(job["report"]["frame_rate"], "30000/1001", "{job:#}");

    let (job, info) = describe(sources.path(Source::Silent)).await;
    assert_eq!(info["audio"], json!([]), "{info:#}");
    assert!(job["report"]["audio_codec"].is_null(), "{job:#}");

    let wav = media::sine(&sources.scratch("info-audio").join("tone.wav"), 2.0);
    let (job, info) = describe(&wav).await;
    assert_eq!(info["video"], json!([]), "{info:#}");
    assert_eq!(info["audio"][0]["codec"], "pcm_s16le", "{info:#}");
    assert!(job["report"]["video_codec"].is_null(), "{job:#}");
}
