//! video-transcode's profiles as a user checks them with ffprobe: the codec, profile, tag,
//! measured bit rate and container each profile promises; interlaced sources come out
//! progressive, rotated ones upright; frame rate and colour tags are kept; a source with fewer
//! bits than the profile's target is not padded.
//!
//! x264's `ultrafast` drops CABAC and 8x8 transforms, which makes any stream Constrained
//! Baseline whatever profile is asked; the jobs whose H.264 profile is checked use `superfast`.

use std::path::PathBuf;

use mediahost_e2e::Host;
use mediahost_e2e::video::{self, Source, Sources, job_body, output, run_job_ok};
use serde_json::{Value, json};

/// A short clip's bit rate may miss an average-bit-rate target by this much.
const BIT_RATE_TOLERANCE: f64 = 0.20;

/// Runs video-transcode on `source` with `params`; returns the job, the downloaded output and
/// its probe.
async fn transcode(source: Source, params: Value, label: &str) -> (Value, PathBuf, Value) {
    let client = Host::shared_local().client();
    let sources = Sources::get();
    let input = client.upload(sources.path(source)).await;
    let started = std::time::Instant::now();
    let job = run_job_ok(&client, &job_body("video-transcode", &input, params)).await;
    eprintln!(
        "[e2e] {label}: video-transcode took {:.1}s, report {}",
        started.elapsed().as_secs_f64(),
        job["report"]
    );
    let out = output(&job, "main");
    let ext = out["container"].as_str().unwrap_or("bin");
    let path = sources.scratch(label).join(format!("out.{ext}"));
    client
        .download(out["download_url"].as_str().unwrap(), &path)
        .await;
    let probe = video::probe(&path);
    (job, path, probe)
}

fn video_stream(probe: &Value) -> &Value {
    video::stream(probe, "video").unwrap_or_else(|| panic!("no video stream: {probe:#}"))
}

fn audio_stream(probe: &Value) -> &Value {
    video::stream(probe, "audio").unwrap_or_else(|| panic!("no audio stream: {probe:#}"))
}

/// The measured video bit rate is within [`BIT_RATE_TOLERANCE`] of `target`; returns the
/// relative deviation.
fn bit_rate_near(path: &std::path::Path, kind: &str, target: f64, label: &str) -> f64 {
    let got = video::measured_bit_rate(path, kind).unwrap();
    let deviation = (got - target) / target;
    eprintln!(
        "[e2e] {label}: {kind} bit rate {got:.0} bps vs {target:.0} ({:+.1} %)",
        deviation * 100.0
    );
    assert!(
        deviation.abs() <= BIT_RATE_TOLERANCE,
        "{label}: {kind} bit rate {got:.0} vs {target:.0}"
    );
    deviation
}

/// Primaries, transfer, matrix and range of a stream.
fn colour(stream: &Value) -> [Value; 4] {
    [
        "color_primaries",
        "color_transfer",
        "color_space",
        "color_range",
    ]
    .map(|k| stream[k].clone())
}

fn source_video(source: Source) -> Value {
    let probe = video::probe(Sources::get().path(source));
    video_stream(&probe).clone()
}

#[tokio::test]
async fn web_hd_is_h264_high_at_4_mbps_in_a_faststart_mp4() {
    let (job, path, probe) =
        transcode(Source::P1080, json!({"speed": "superfast"}), "web-hd").await;
    let v = video_stream(&probe);
    assert_eq!(v["codec_name"], "h264", "{v:#}");
    assert_eq!(v["profile"], "High", "{v:#}");
    assert_eq!(v["pix_fmt"], "yuv420p", "{v:#}");
    assert_eq!(
        (v["width"].as_u64(), v["height"].as_u64()),
        (Some(1920), Some(1080))
    );
    assert_eq!(v["r_frame_rate"], "25/1", "frame rate kept: {v:#}");
    assert_eq!(
        colour(v),
        colour(&source_video(Source::P1080)),
        "colour tags kept"
    );
    let a = audio_stream(&probe);
    assert_eq!(a["codec_name"], "aac", "{a:#}");
    assert_eq!(a["channels"], 2, "{a:#}");
    assert!(
        probe["format"]["format_name"]
            .as_str()
            .unwrap()
            .contains("mp4")
    );
    assert!(
        video::moov_before_mdat(&path).unwrap(),
        "faststart: moov before mdat"
    );
    bit_rate_near(&path, "v", 4_000_000.0, "web-hd video");
    bit_rate_near(&path, "a", 128_000.0, "web-hd audio");

    let r = &job["report"];
    assert_eq!(r["profile"], "web-hd", "{r:#}");
    assert_eq!(
        (r["width"].as_u64(), r["height"].as_u64()),
        (Some(1920), Some(1080))
    );
    assert_eq!(r["frame_rate"], "25/1", "{r:#}");
    assert_eq!(r["video_bit_rate"], 4_000_000, "{r:#}");
    assert_eq!(r["bit_rate_capped"], false, "{r:#}");
    assert_eq!(r["audio_bit_rate"], 128_000, "{r:#}");
    assert_eq!(r["container"], "mp4", "{r:#}");
    assert_eq!(r["deinterlaced"], false, "{r:#}");
    assert_eq!(r["rotation_applied"], 0, "{r:#}");
}

#[tokio::test]
async fn social_is_h264_high_at_8_mbps() {
    let (job, path, probe) = transcode(
        Source::P1080,
        json!({"profile": "social", "speed": "superfast"}),
        "social",
    )
    .await;
    let v = video_stream(&probe);
    assert_eq!(v["codec_name"], "h264", "{v:#}");
    assert_eq!(v["profile"], "High", "{v:#}");
    assert!(video::moov_before_mdat(&path).unwrap());
    bit_rate_near(&path, "v", 8_000_000.0, "social video");
    assert_eq!(job["report"]["video_bit_rate"], 8_000_000, "{job:#}");
    assert_eq!(job["report"]["bit_rate_capped"], false, "{job:#}");
}

#[tokio::test]
async fn params_override_the_profile_height_and_bit_rate() {
    let (job, path, probe) = transcode(
        Source::P1080,
        json!({"max_height": 720, "video_bit_rate": 2_000_000, "audio_bit_rate": 96_000,
               "speed": "ultrafast"}),
        "web-hd-720",
    )
    .await;
    let v = video_stream(&probe);
    assert_eq!(
        (v["width"].as_u64(), v["height"].as_u64()),
        (Some(1280), Some(720))
    );
    bit_rate_near(&path, "v", 2_000_000.0, "web-hd at 2 Mbps");
    bit_rate_near(&path, "a", 96_000.0, "web-hd audio at 96 kbps");
    assert_eq!(job["report"]["video_bit_rate"], 2_000_000, "{job:#}");
    assert_eq!(job["report"]["height"], 720, "{job:#}");
}

#[tokio::test]
async fn web_4k_is_hevc_main_10_tagged_hvc1_at_15_mbps() {
    let (job, path, probe) = transcode(
        Source::P2160,
        json!({"profile": "web-4k", "speed": "ultrafast"}),
        "web-4k",
    )
    .await;
    let v = video_stream(&probe);
    assert_eq!(v["codec_name"], "hevc", "{v:#}");
    assert_eq!(v["profile"], "Main 10", "{v:#}");
    assert_eq!(v["codec_tag_string"], "hvc1", "{v:#}");
    assert_eq!(v["pix_fmt"], "yuv420p10le", "{v:#}");
    assert_eq!(
        (v["width"].as_u64(), v["height"].as_u64()),
        (Some(3840), Some(2160))
    );
    assert_eq!(
        colour(v),
        colour(&source_video(Source::P2160)),
        "colour tags kept"
    );
    assert!(video::moov_before_mdat(&path).unwrap());
    bit_rate_near(&path, "v", 15_000_000.0, "web-4k video");
    bit_rate_near(&path, "a", 192_000.0, "web-4k audio");
    let r = &job["report"];
    assert_eq!(r["video_codec"], "hevc", "{r:#}");
    assert_eq!(r["video_bit_rate"], 15_000_000, "{r:#}");
    assert_eq!(r["bit_rate_capped"], false, "{r:#}");
}

#[tokio::test]
async fn archive_is_hevc_crf_18_with_flac_in_matroska() {
    let (job, path, probe) = transcode(
        Source::P480,
        json!({"profile": "archive", "speed": "ultrafast"}),
        "archive",
    )
    .await;
    assert!(
        probe["format"]["format_name"]
            .as_str()
            .unwrap()
            .contains("matroska"),
        "{probe:#}"
    );
    let v = video_stream(&probe);
    assert_eq!(v["codec_name"], "hevc", "{v:#}");
    assert_eq!(v["profile"], "Main", "an 8-bit source stays 8-bit: {v:#}");
    assert_eq!(
        (v["width"].as_u64(), v["height"].as_u64()),
        (Some(854), Some(480))
    );
    assert_eq!(v["r_frame_rate"], "30000/1001", "frame rate kept: {v:#}");
    assert_eq!(
        colour(v),
        colour(&source_video(Source::P480)),
        "BT.601 tags kept"
    );
    assert_eq!(audio_stream(&probe)["codec_name"], "flac");
    let r = &job["report"];
    assert_eq!(r["crf"], 18, "{r:#}");
    assert!(r["video_bit_rate"].is_null(), "no bit rate for CRF: {r:#}");
    assert!(r["audio_bit_rate"].is_null(), "no bit rate for FLAC: {r:#}");
    assert_eq!(r["audio_codec"], "flac", "{r:#}");
    assert_eq!(r["container"], "mkv", "{r:#}");
    assert_eq!(r["frame_rate"], "30000/1001", "{r:#}");
    assert!(
        path.extension().is_some_and(|e| e == "mkv"),
        "{}",
        path.display()
    );
}

#[tokio::test]
async fn an_interlaced_source_comes_out_progressive() {
    let (job, path, probe) = transcode(
        Source::Interlaced,
        json!({"speed": "ultrafast"}),
        "interlaced",
    )
    .await;
    assert_eq!(job["report"]["deinterlaced"], true, "{job:#}");
    let v = video_stream(&probe);
    let order = v["field_order"].as_str().unwrap_or("progressive");
    assert_eq!(order, "progressive", "{v:#}");
    assert_eq!(v["r_frame_rate"], "25/1", "frame rate kept: {v:#}");
    // idet on the result: bwdif leaves no combing for it to find.
    let stderr = mediahost_e2e::media::run(
        mediahost_e2e::media::ffmpeg()
            .arg("-i")
            .arg(&path)
            .args(["-vf", "idet", "-f", "null", "-"]),
        "idet on the output",
    );
    let line = stderr
        .lines()
        .rfind(|l| l.contains("Multi frame detection"))
        .unwrap()
        .to_string();
    eprintln!("[e2e] interlaced source, output's idet: {line}");
    let count = |key: &str| -> u64 {
        let words: Vec<&str> = line.split_whitespace().collect();
        let at = words.iter().position(|w| *w == key).unwrap();
        words[at + 1].parse().unwrap()
    };
    assert!(
        count("TFF:") + count("BFF:") < count("Progressive:"),
        "the output still looks interlaced: {line}"
    );
}

#[tokio::test]
async fn a_rotated_phone_video_comes_out_upright() {
    let (job, _, probe) =
        transcode(Source::Rotated, json!({"speed": "ultrafast"}), "rotated").await;
    let v = video_stream(&probe);
    assert_eq!(video::rotation(v), 0, "no display matrix left: {v:#}");
    assert_eq!(
        (v["width"].as_u64(), v["height"].as_u64()),
        (Some(720), Some(1280)),
        "the pixels are upright: {v:#}"
    );
    let r = &job["report"];
    assert_eq!(
        r["rotation_applied"].as_i64().map(i64::abs),
        Some(90),
        "{r:#}"
    );
    assert_eq!(
        (r["width"].as_u64(), r["height"].as_u64()),
        (Some(720), Some(1280))
    );
}

#[tokio::test]
async fn a_low_bit_rate_source_is_not_padded_to_the_profiles_rate() {
    let (job, path, _) = transcode(
        Source::LowBitRate,
        json!({"speed": "ultrafast"}),
        "low-bit-rate",
    )
    .await;
    let r = &job["report"];
    assert_eq!(r["bit_rate_capped"], true, "{r:#}");
    assert!(r["bit_rate_reason"].is_string(), "{r:#}");
    let source = r["source_video_bit_rate"]
        .as_f64()
        .expect("source_video_bit_rate");
    assert!((200_000.0..450_000.0).contains(&source), "{r:#}");
    let target = r["video_bit_rate"].as_f64().expect("video_bit_rate");
    assert!(
        target <= source * 1.05,
        "target {target} over the source's {source}: {r:#}"
    );
    let got = video::measured_bit_rate(&path, "v").unwrap();
    eprintln!("[e2e] low-bit-rate: output video {got:.0} bps, target {target}, source {source}");
    assert!(
        got < 1_000_000.0,
        "the output carries {got:.0} bps for a {source:.0} bps source"
    );
}
