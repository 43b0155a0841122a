//! Stills from video as a page uses them: video-thumbnail's automatic pick is not black and is
//! the frame it says; web-video's poster is the frame at its time beside a faststart H.264
//! MP4; every sprite-sheet cue points at a tile that is the frame at the cue's time (SSIM
//! against a frame ffmpeg extracts there, scaled to the tile).

use std::path::{Path, PathBuf};

use mediahost_e2e::video::{self, Source, Sources, job_body, output, run_job_ok};
use mediahost_e2e::{Client, Host};
use serde_json::{Value, json};

/// A still or tile and the frame ffmpeg extracts at its time (scaled alike) score at least this
/// (luma SSIM). Frames of the test pattern half a second apart score about 0.7.
const SAME_FRAME_SSIM: f64 = 0.9;

async fn run(preset: &str, source: Source, params: Value, label: &str) -> (Client, Value, PathBuf) {
    let client = Host::shared_local().client();
    let sources = Sources::get();
    let input = client.upload(sources.path(source)).await;
    let started = std::time::Instant::now();
    let job = run_job_ok(&client, &job_body(preset, &input, params)).await;
    eprintln!(
        "[e2e] {label}: {preset} took {:.1}s, report {}",
        started.elapsed().as_secs_f64(),
        job["report"]
    );
    (client, job, sources.scratch(label))
}

async fn download(client: &Client, output: &Value, dest: PathBuf) -> PathBuf {
    client
        .download(output["download_url"].as_str().unwrap(), &dest)
        .await
}

fn size(image: &Path) -> (u64, u64) {
    let probe = video::probe(image);
    let s = video::stream(&probe, "video").unwrap();
    (s["width"].as_u64().unwrap(), s["height"].as_u64().unwrap())
}

/// SSIM of `still` against the source's frame at `time_s`, scaled to the still's size.
fn ssim_at(source: Source, time_s: f64, still: &Path, dir: &Path, label: &str) -> f64 {
    let (w, h) = size(still);
    let frame = video::frame_at(
        Sources::get().path(source),
        time_s,
        w as u32,
        h as u32,
        &dir.join(format!("{label}-reference-{time_s:.3}.png")),
    );
    video::ssim(&frame, still).unwrap()
}

#[tokio::test]
async fn an_automatic_thumbnail_skips_the_black_lead_in() {
    let (client, job, dir) = run(
        "video-thumbnail",
        Source::BlackLeadIn,
        json!({}),
        "thumb-auto",
    )
    .await;
    let r = &job["report"];
    let time = r["time_s"].as_f64().expect("time_s");
    assert!(
        time >= 2.0,
        "the thumbnail is inside the 2 s of black: {r:#}"
    );
    assert!(
        matches!(
            r["chosen_by"].as_str(),
            Some("scene_change" | "after_black")
        ),
        "{r:#}"
    );
    let thumb = output(&job, "thumbnail");
    assert_eq!(thumb["kind"], "still");
    let path = download(&client, thumb, dir.join("thumb.jpg")).await;
    assert_eq!(video::probe(&path)["streams"][0]["codec_name"], "mjpeg");
    let luma = video::luma(&path).unwrap();
    assert!(!luma.is_black(), "the thumbnail is black: {luma:?}");
    assert_eq!(size(&path), (640, 360), "640 wide by default");
    let ssim = ssim_at(Source::BlackLeadIn, time, &path, &dir, "thumb");
    eprintln!("[e2e] automatic thumbnail at {time}s: {luma:?}, SSIM vs the frame there {ssim:.4}");
    assert!(
        ssim >= SAME_FRAME_SSIM,
        "the thumbnail is not the frame at {time}s: {ssim}"
    );
}

#[tokio::test]
async fn a_thumbnail_at_a_time_is_that_frame_in_the_format_and_width_asked() {
    let (client, job, dir) = run(
        "video-thumbnail",
        Source::P720,
        json!({"time": 3.0, "format": "png", "width": 320}),
        "thumb-time",
    )
    .await;
    assert_eq!(job["report"]["chosen_by"], "time", "{job:#}");
    assert_eq!(job["report"]["time_s"], 3.0, "{job:#}");
    let path = download(&client, output(&job, "thumbnail"), dir.join("thumb.png")).await;
    assert_eq!(video::probe(&path)["streams"][0]["codec_name"], "png");
    assert_eq!(size(&path), (320, 180));
    let ssim = ssim_at(Source::P720, 3.0, &path, &dir, "thumb");
    eprintln!("[e2e] thumbnail at 3 s: SSIM {ssim:.4}");
    assert!(ssim >= SAME_FRAME_SSIM, "{ssim}");

    let input = client.upload(Sources::get().path(Source::P720)).await;
    video::expect_refusal(
        &client,
        &job_body("video-thumbnail", &input, json!({"time": 60.0})),
        "TIME_OUT_OF_RANGE",
    )
    .await;
}

#[tokio::test]
async fn a_thumbnail_of_a_phone_video_is_upright_and_never_upscaled() {
    let (client, job, dir) = run(
        "video-thumbnail",
        Source::Rotated,
        json!({"fraction": 0.5, "width": 1000}),
        "thumb-rotated",
    )
    .await;
    let path = download(&client, output(&job, "thumbnail"), dir.join("thumb.jpg")).await;
    assert_eq!(
        size(&path),
        (720, 1280),
        "upright, and not wider than the source"
    );
    assert_eq!(job["report"]["chosen_by"], "fraction", "{job:#}");
}

#[tokio::test]
async fn web_video_gives_a_poster_and_a_faststart_720p_mp4() {
    let (client, job, dir) = run(
        "web-video",
        Source::P1080,
        json!({"speed": "superfast"}),
        "web-video",
    )
    .await;
    let r = &job["report"];
    assert_eq!(
        (r["width"].as_u64(), r["height"].as_u64()),
        (Some(1280), Some(720))
    );
    // 10 % of 8 s.
    let poster_time = r["poster_time_s"].as_f64().expect("poster_time_s");
    assert!((poster_time - 0.8).abs() < 0.05, "{r:#}");
    let poster = download(&client, output(&job, "poster"), dir.join("poster.jpg")).await;
    assert_eq!(video::probe(&poster)["streams"][0]["codec_name"], "mjpeg");
    assert_eq!(size(&poster), (1280, 720));
    assert!(!video::luma(&poster).unwrap().is_black());
    let ssim = ssim_at(Source::P1080, poster_time, &poster, &dir, "poster");
    eprintln!("[e2e] web-video poster at {poster_time}s: SSIM {ssim:.4}");
    assert!(ssim >= SAME_FRAME_SSIM, "{ssim}");

    let mp4 = download(&client, output(&job, "video"), dir.join("video.mp4")).await;
    assert!(video::moov_before_mdat(&mp4).unwrap(), "faststart");
    let probe = video::probe(&mp4);
    let v = video::stream(&probe, "video").unwrap();
    assert_eq!(v["codec_name"], "h264", "{v:#}");
    assert_eq!(v["profile"], "High", "{v:#}");
    assert_eq!(v["pix_fmt"], "yuv420p", "{v:#}");
    assert_eq!(
        (v["width"].as_u64(), v["height"].as_u64()),
        (Some(1280), Some(720))
    );
    assert_eq!(v["r_frame_rate"], "25/1");
    let a = video::stream(&probe, "audio").unwrap();
    assert_eq!(
        (a["codec_name"].as_str(), a["channels"].as_u64()),
        (Some("aac"), Some(2))
    );
    let rate = video::measured_bit_rate(&mp4, "v").unwrap();
    eprintln!("[e2e] web-video: {rate:.0} bps (max_bit_rate 3000000)");
    assert!(rate <= 3_000_000.0 * 1.1, "{rate}");
}

/// One WebVTT cue: start, end, and the `#xywh` fragment's target.
#[derive(Debug)]
struct Cue {
    start: f64,
    end: f64,
    sheet: String,
    xywh: [u32; 4],
}

fn vtt_time(t: &str) -> f64 {
    let parts: Vec<f64> = t.trim().split(':').map(|p| p.parse().unwrap()).collect();
    parts.iter().fold(0.0, |acc, p| acc * 60.0 + p)
}

fn parse_vtt(vtt: &str) -> Vec<Cue> {
    assert!(vtt.starts_with("WEBVTT"), "{vtt}");
    let lines: Vec<&str> = vtt.lines().collect();
    let mut cues = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        if let Some((start, end)) = line.split_once("-->") {
            let target = lines[i + 1].trim();
            let (sheet, fragment) = target
                .split_once("#xywh=")
                .unwrap_or_else(|| panic!("{target}"));
            let v: Vec<u32> = fragment.split(',').map(|n| n.parse().unwrap()).collect();
            cues.push(Cue {
                start: vtt_time(start),
                end: vtt_time(end.split_whitespace().next().unwrap()),
                sheet: sheet.to_string(),
                xywh: [v[0], v[1], v[2], v[3]],
            });
        }
    }
    cues
}

/// Runs sprite-sheet and checks every cue's tile against the frame at its time; returns the
/// job and the lowest SSIM.
async fn sprites(source: Source, params: Value, label: &str) -> (Value, Vec<Cue>, f64) {
    let (client, job, dir) = run("sprite-sheet", source, params, label).await;
    let vtt = video::get_text(
        &client,
        output(&job, "thumbnails")["download_url"].as_str().unwrap(),
    )
    .await;
    let index: Value = serde_json::from_str(
        &video::get_text(
            &client,
            output(&job, "index")["download_url"].as_str().unwrap(),
        )
        .await,
    )
    .expect("the JSON index");
    let cues = parse_vtt(&vtt);
    let tiles = index["tiles"].as_array().expect("tiles");
    assert_eq!(cues.len(), tiles.len(), "{vtt}\n{index:#}");
    assert_eq!(job["report"]["thumbnails"], cues.len(), "{job:#}");
    let interval = index["interval_s"].as_f64().unwrap();
    let (tw, th) = (
        index["tile_width"].as_u64().unwrap() as u32,
        index["tile_height"].as_u64().unwrap() as u32,
    );
    let mut sheets = std::collections::BTreeMap::new();
    let mut lowest = f64::INFINITY;
    let mut mismatched = Vec::new();
    for (k, (cue, tile)) in cues.iter().zip(tiles).enumerate() {
        let t = k as f64 * interval;
        assert!(
            (cue.start - t).abs() < 0.002,
            "cue {k}: {cue:?}, interval {interval}"
        );
        assert!(
            (cue.end - cue.start - interval).abs() < 0.002,
            "cue {k}: {cue:?}"
        );
        assert_eq!(
            tile["time_s"].as_f64().map(|x| (x - t).abs() < 0.002),
            Some(true)
        );
        assert_eq!(tile["sheet"], cue.sheet.as_str(), "{tile}");
        assert_eq!(
            [tile["x"].as_u64(), tile["y"].as_u64()],
            [Some(cue.xywh[0] as u64), Some(cue.xywh[1] as u64)]
        );
        assert_eq!(
            [
                tile["column"].as_u64().unwrap() * u64::from(tw),
                tile["row"].as_u64().unwrap() * u64::from(th)
            ],
            [u64::from(cue.xywh[0]), u64::from(cue.xywh[1])]
        );
        assert_eq!([cue.xywh[2], cue.xywh[3]], [tw, th], "{cue:?}");
        let stem = cue.sheet.trim_end_matches(".jpg").trim_end_matches(".webp");
        if !sheets.contains_key(stem) {
            let path = download(&client, output(&job, stem), dir.join(&cue.sheet)).await;
            sheets.insert(stem.to_string(), path);
        }
    }
    // Measured after every download: ffmpeg runs block the test's thread.
    for (k, cue) in cues.iter().enumerate() {
        let stem = cue.sheet.trim_end_matches(".jpg").trim_end_matches(".webp");
        let tile_png = video::crop(
            &sheets[stem],
            cue.xywh[0],
            cue.xywh[1],
            tw,
            th,
            &dir.join(format!("tile-{k}.png")),
        );
        let ssim = ssim_at(source, cue.start, &tile_png, &dir, "tile");
        eprintln!(
            "[e2e] {label}: cue {k} at {:.2}s in {}: SSIM {ssim:.4}",
            cue.start, cue.sheet
        );
        lowest = lowest.min(ssim);
        if ssim < SAME_FRAME_SSIM && mismatched.len() < 3 {
            // Which nearby frame the tile is, to say how far off it is.
            let rate = video::rate_value(source.pattern().rate);
            let (best_t, best) = (-6..=6)
                .map(|j| {
                    let t = cue.start + f64::from(j) / rate;
                    (t, ssim_at(source, t.max(0.0), &tile_png, &dir, "near"))
                })
                .fold((cue.start, ssim), |a, b| if b.1 > a.1 { b } else { a });
            mismatched.push(format!(
                "cue {k} at {:.2}s: SSIM {ssim:.4}; best match the frame at {best_t:.2}s \
                 (SSIM {best:.4})",
                cue.start
            ));
        } else if ssim < SAME_FRAME_SSIM {
            mismatched.push(format!("cue {k} at {:.2}s: SSIM {ssim:.4}", cue.start));
        }
    }
    assert_eq!(job["report"]["sheets"], sheets.len(), "{job:#}");
    eprintln!(
        "[e2e] {label}: {} tiles, lowest SSIM {lowest:.4}",
        cues.len()
    );
    assert!(
        mismatched.is_empty(),
        "{label}: tiles that are not the frame at their cue's time (SSIM under \
         {SAME_FRAME_SSIM}): {mismatched:#?}"
    );
    (job, cues, lowest)
}

#[tokio::test]
async fn every_sprite_cue_points_at_the_frame_at_its_time() {
    let (job, cues, _) = sprites(Source::P720, json!({"interval": 1.0}), "sprites-seek").await;
    assert_eq!(cues.len(), 6, "one a second over 6 s");
    assert_eq!(job["report"]["decode"], "seek", "{job:#}");
    assert_eq!(job["report"]["tile_width"], 160);
    assert_eq!(job["report"]["tile_height"], 90);
    assert!(cues.iter().all(|c| c.sheet == "sheet_001.jpg"), "{cues:?}");
}

#[tokio::test]
async fn a_large_grid_decodes_the_span_and_fills_several_sheets() {
    let (job, cues, _) = sprites(
        Source::P720,
        // 30 over 6 s: every 0.2 s, five frames apart, so a tile's time is a frame's time.
        json!({"count": 30, "columns": 5, "rows": 4, "tile_width": 128}),
        "sprites-span",
    )
    .await;
    assert_eq!(cues.len(), 30);
    assert_eq!(job["report"]["decode"], "span", "{job:#}");
    assert_eq!(job["report"]["sheets"], 2, "{job:#}");
    assert_eq!(job["report"]["tile_height"], 72, "{job:#}");
    assert_eq!(cues[20].sheet, "sheet_002.jpg", "{cues:?}");
    assert_eq!(cues[20].xywh[..2], [0, 0], "{cues:?}");
}

#[tokio::test]
async fn a_thumbnail_of_an_interlaced_source_is_deinterlaced() {
    let (client, job, dir) = run(
        "video-thumbnail",
        Source::Interlaced,
        json!({"time": 2.0}),
        "thumb-interlaced",
    )
    .await;
    assert_eq!(job["report"]["deinterlaced"], true, "{job:#}");
    let path = download(&client, output(&job, "thumbnail"), dir.join("thumb.jpg")).await;
    assert_eq!(size(&path), (640, 360));
    assert!(!video::luma(&path).unwrap().is_black());
}
