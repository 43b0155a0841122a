//! image-variants as a web page and its author meet it: the default ladder of WebP widths from a
//! 12-megapixel photo at exact sizes; every format what it claims (progressive JPEG); quality
//! against what ffmpeg itself makes of the same photo (SSIM); custom boxes filled as `fit` says,
//! checked by where the colours land; phone photos upright exactly once; EXIF, XMP and ICC kept
//! or stripped (Display P3 converted to sRGB when stripped); transparency kept where the format
//! holds it; GIF, TIFF and BMP read; what is not an image or too large refused with a reason.
//!
//! Every source is drawn with ffmpeg's lavfi at test time and its metadata built in
//! `mediahost_e2e::image`; every output is read back with ffprobe, ffmpeg and that module's own
//! parsers, never with the host's.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use mediahost_e2e::image::{self, Exif, Metadata, Picture};
use mediahost_e2e::media;
use mediahost_e2e::video::{self, job_body, output, output_names};
use mediahost_e2e::{Client, Host};
use serde_json::{Value, json};

const PRESET: &str = "image-variants";

/// Our WebP and JPEG at their default qualities against ffmpeg's own lanczos downscale of the
/// same photo (luma SSIM): visually the same picture.
const DEFAULT_QUALITY_SSIM: f64 = 0.98;
/// AVIF at its default quality 60 (libaom, cpu-used 6) is allowed to be a little softer.
const AVIF_SSIM: f64 = 0.95;
/// PNG is lossless: its picture is ffmpeg's own downscale, even beside WebP and AVIF in one job
/// (whose 4:2:0 conversions happen on their own branches).
const PNG_SSIM: f64 = 0.999;

/// The shared scratch directory and the 12-megapixel photo, made once per test binary.
struct Media {
    dir: tempfile::TempDir,
    photo: OnceLock<PathBuf>,
}

fn media() -> &'static Media {
    static MEDIA: OnceLock<Media> = OnceLock::new();
    MEDIA.get_or_init(|| Media {
        dir: mediahost_e2e::process::fixture_dir("image-variants"),
        photo: OnceLock::new(),
    })
}

/// A fresh directory for one test's sources and downloads.
fn scratch(label: &str) -> PathBuf {
    media::scratch_in(media().dir.path(), label)
}

/// The 4000x3000 photo-like JPEG (about 12 MP).
fn photo() -> &'static Path {
    media().photo.get_or_init(|| {
        let started = std::time::Instant::now();
        let path = image::photo(4000, 3000, &media().dir.path().join("photo-4000x3000.jpg"));
        eprintln!(
            "[e2e] made the 4000x3000 photo in {:.1}s ({} KiB)",
            started.elapsed().as_secs_f64(),
            std::fs::metadata(&path).unwrap().len() / 1024
        );
        path
    })
}

/// Submits every job first (the host runs them side by side), then waits for each.
async fn run_jobs(client: &Client, bodies: &[Value]) -> Vec<Value> {
    let mut ids = Vec::new();
    for body in bodies {
        ids.push(client.submit_ok(body).await);
    }
    let mut jobs = Vec::new();
    for id in ids {
        jobs.push(client.wait_terminal(&id).await);
    }
    jobs
}

/// Runs one image-variants job on `source` that must complete.
async fn variants(client: &Client, source: &Path, params: Value) -> Value {
    let input = client.upload(source).await;
    let started = std::time::Instant::now();
    let job = video::run_job_ok(client, &job_body(PRESET, &input, params.clone())).await;
    eprintln!(
        "[e2e] {} with {params}: {:.1}s{}, outputs {:?}",
        source.file_name().unwrap().to_string_lossy(),
        started.elapsed().as_secs_f64(),
        if job["cached"] == true {
            " (cached)"
        } else {
            ""
        },
        output_names(&job)
    );
    job
}

/// Downloads output `name` into `dir` as `<name>.<ext>` and checks its bytes are the
/// `size_bytes` the job record states.
async fn download(client: &Client, job: &Value, name: &str, dir: &Path) -> PathBuf {
    let out = output(job, name);
    let ext = match name.rsplit('-').next().unwrap() {
        "jpeg" => "jpg",
        other => other,
    };
    let path = client
        .download(
            out["download_url"]
                .as_str()
                .unwrap_or_else(|| panic!("{name} has no download_url: {job:#}")),
            &dir.join(format!("{name}.{ext}")),
        )
        .await;
    let len = std::fs::metadata(&path).unwrap().len();
    assert_eq!(
        out["size_bytes"].as_u64(),
        Some(len),
        "{name}: size_bytes in the job record vs the bytes downloaded"
    );
    path
}

/// ffprobe's codec name, pixel format and size of an image.
fn probed(path: &Path) -> (String, String, (u32, u32)) {
    let probe = video::probe(path);
    let s = video::stream(&probe, "video")
        .unwrap_or_else(|| panic!("{}: no picture: {probe:#}", path.display()));
    (
        s["codec_name"].as_str().unwrap_or("").to_string(),
        s["pix_fmt"].as_str().unwrap_or("").to_string(),
        (
            s["width"].as_u64().unwrap() as u32,
            s["height"].as_u64().unwrap() as u32,
        ),
    )
}

/// `dir/name`, created.
fn subdir(dir: &Path, name: &str) -> PathBuf {
    let sub = dir.join(name);
    std::fs::create_dir_all(&sub).unwrap();
    sub
}

fn sorted(mut names: Vec<String>) -> Vec<String> {
    names.sort();
    names
}

fn names(list: &[&str]) -> Vec<String> {
    sorted(list.iter().map(|s| s.to_string()).collect())
}

/// `round(height * width / source_width)`, the height the README promises for a ladder width.
fn ladder_height(source: (u32, u32), width: u32) -> u32 {
    (f64::from(source.1) * f64::from(width) / f64::from(source.0)).round() as u32
}

// ---------------------------------------------------------------------------------------------
// The ladder and the formats
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn the_default_ladder_is_five_webp_widths_of_exact_size_growing_in_bytes() {
    let client = Host::shared_local().client();
    let dir = scratch("ladder");
    let job = variants(&client, photo(), json!({})).await;
    assert_eq!(job["preset"]["version"], "1.0.0", "{job:#}");
    let widths = [320, 640, 1280, 1920, 2560];
    assert_eq!(
        sorted(output_names(&job)),
        sorted(widths.iter().map(|w| format!("w{w}-webp")).collect()),
        "{job:#}"
    );
    let mut previous = 0;
    let mut sizes = Vec::new();
    for w in widths {
        let name = format!("w{w}-webp");
        let path = download(&client, &job, &name, &dir).await;
        let (codec, _, size) = probed(&path);
        assert_eq!(codec, "webp", "{name}");
        assert_eq!(size, (w, ladder_height((4000, 3000), w)), "{name}");
        let bytes = std::fs::metadata(&path).unwrap().len();
        assert!(
            bytes > previous,
            "{name} is {bytes} bytes, not more than the narrower one's {previous}"
        );
        previous = bytes;
        sizes.push(format!("{name} {}x{} {} KiB", size.0, size.1, bytes / 1024));
    }
    eprintln!("[e2e] default ladder: {}", sizes.join(", "));
}

#[tokio::test]
async fn every_format_is_what_it_says_and_the_jpeg_is_progressive() {
    let client = Host::shared_local().client();
    let dir = scratch("formats");
    let job = variants(
        &client,
        photo(),
        json!({"widths": "320,480", "formats": "webp,jpeg,png,avif"}),
    )
    .await;
    let formats = [
        ("webp", "webp"),
        ("jpeg", "mjpeg"),
        ("png", "png"),
        ("avif", "av1"),
    ];
    let mut expected = Vec::new();
    for w in [320, 480] {
        for (format, codec) in formats {
            let name = format!("w{w}-{format}");
            expected.push(name.clone());
            let path = download(&client, &job, &name, &dir).await;
            let (got, pix_fmt, size) = probed(&path);
            assert_eq!(got, codec, "{name} ({pix_fmt})");
            assert_eq!(size, (w, ladder_height((4000, 3000), w)), "{name}");
            if format == "jpeg" {
                let bytes = std::fs::read(&path).unwrap();
                let sof = image::jpeg_frame_marker(&bytes).unwrap();
                assert_eq!(
                    sof, 0xc2,
                    "{name}: frame marker 0x{sof:02x}; a progressive JPEG has SOF2 (0xc2) \
                     before its first scan"
                );
            }
            // Every output decodes cleanly, as a browser would need it to.
            video::play(&path).unwrap_or_else(|e| panic!("{name}: {e}"));
        }
    }
    assert_eq!(sorted(output_names(&job)), sorted(expected), "{job:#}");
}

#[tokio::test]
async fn default_qualities_look_like_ffmpegs_own_downscale() {
    let client = Host::shared_local().client();
    let dir = scratch("quality");
    let job = variants(
        &client,
        photo(),
        json!({"widths": "640,1280", "formats": "webp,jpeg,png,avif"}),
    )
    .await;
    let mut failures = Vec::new();
    for w in [1280, 640] {
        let reference = dir.join(format!("reference-{w}.png"));
        media::run(
            media::ffmpeg()
                .arg("-i")
                .arg(photo())
                .args(["-vf", &format!("scale={w}:-1:flags=lanczos")])
                .arg(&reference),
            "ffmpeg reference downscale",
        );
        for (format, floor) in [
            ("webp", DEFAULT_QUALITY_SSIM),
            ("jpeg", DEFAULT_QUALITY_SSIM),
            ("png", PNG_SSIM),
            ("avif", AVIF_SSIM),
        ] {
            let name = format!("w{w}-{format}");
            let path = download(&client, &job, &name, &dir).await;
            assert_eq!(probed(&path).2, probed(&reference).2, "{name}");
            let ssim = video::ssim(&reference, &path).unwrap();
            let bytes = std::fs::metadata(&path).unwrap().len();
            eprintln!(
                "[e2e] quality: {name} SSIM {ssim:.4} vs ffmpeg's lanczos {w} px ({} KiB)",
                bytes / 1024
            );
            if ssim < floor {
                failures.push(format!("{name}: SSIM {ssim:.4} < {floor}"));
            }
        }
    }
    assert!(failures.is_empty(), "{failures:?}");
}

/// How much detail a picture has: the mean absolute difference between horizontally and
/// vertically neighbouring pixels' green values (green carries most of the luma).
fn detail(path: &Path) -> f64 {
    let p = Picture::decode(path);
    let g = |x: u32, y: u32| f64::from(p.pixel(x, y)[1]);
    let mut sum = 0.0;
    for y in 0..p.height - 1 {
        for x in 0..p.width - 1 {
            sum += (g(x + 1, y) - g(x, y)).abs() + (g(x, y + 1) - g(x, y)).abs();
        }
    }
    sum / f64::from((p.width - 1) * (p.height - 1))
}

#[tokio::test]
async fn quality_and_sharpen_params_change_what_they_say() {
    let client = Host::shared_local().client();
    let dir = scratch("params");
    let source = image::photo(1600, 1200, &dir.join("photo-1600x1200.jpg"));
    let input = client.upload(&source).await;
    let base = json!({"widths": "640", "formats": "jpeg,webp"});
    let with = |extra: Value| {
        let mut params = base.clone();
        for (k, v) in extra.as_object().unwrap() {
            params[k] = v.clone();
        }
        job_body(PRESET, &input, params)
    };
    let jobs = run_jobs(
        &client,
        &[
            with(json!({})),
            with(json!({"jpeg_quality": 40, "webp_quality": 40})),
            with(json!({"sharpen": 1.5})),
        ],
    )
    .await;
    let reference = dir.join("reference.png");
    media::run(
        media::ffmpeg()
            .arg("-i")
            .arg(&source)
            .args(["-vf", "scale=640:-1:flags=lanczos"])
            .arg(&reference),
        "ffmpeg reference downscale",
    );
    let mut measured = Vec::new();
    for (label, job) in ["default", "quality 40", "sharpen 1.5"].iter().zip(&jobs) {
        mediahost_e2e::client::assert_completed(job);
        let out = subdir(&dir, &label.replace(' ', "-"));
        let mut row = Vec::new();
        for format in ["jpeg", "webp"] {
            let path = download(&client, job, &format!("w640-{format}"), &out).await;
            let bytes = std::fs::metadata(&path).unwrap().len();
            let ssim = video::ssim(&reference, &path).unwrap();
            let detail = detail(&path);
            eprintln!(
                "[e2e] params {label}: {format} {} KiB, SSIM {ssim:.4}, detail {detail:.2}",
                bytes / 1024
            );
            row.push((bytes, ssim, detail));
        }
        measured.push(row);
    }
    let reference_detail = detail(&reference);
    eprintln!("[e2e] params: ffmpeg's reference detail {reference_detail:.2}");
    for (i, format) in ["jpeg", "webp"].iter().enumerate() {
        let (default, low, sharp) = (measured[0][i], measured[1][i], measured[2][i]);
        assert!(
            low.0 < default.0 && low.1 < default.1,
            "{format}: quality 40 is smaller and less faithful than the default: \
             {low:?} vs {default:?}"
        );
        assert!(
            sharp.2 > default.2 * 1.1,
            "{format}: sharpen 1.5 adds detail: {:.2} vs {:.2}",
            sharp.2,
            default.2
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Custom boxes
// ---------------------------------------------------------------------------------------------

/// The first column, left to right, of row `y` whose pixel is more blue than red.
fn blue_from(picture: &Picture, y: u32) -> u32 {
    (0..picture.width)
        .find(|&x| {
            let p = picture.pixel(x, y);
            p[2] > p[0]
        })
        .unwrap_or(picture.width)
}

#[tokio::test]
async fn custom_boxes_are_filled_as_fit_says() {
    let client = Host::shared_local().client();
    let dir = scratch("fit");
    // 4000x2000: the left half red, the right half blue.
    let source = image::halves(4000, 2000, "red", "blue", &dir.join("halves.png"));
    let input = client.upload(&source).await;
    let cases = [
        json!({"fit": "inside"}),
        json!({"fit": "contain"}),
        json!({"fit": "contain", "background": "black", "position": "top"}),
        json!({"fit": "cover", "position": "left"}),
        json!({"fit": "cover", "position": "right"}),
        json!({"fit": "fill"}),
    ];
    let bodies: Vec<Value> = cases
        .iter()
        .map(|c| {
            let mut params = json!({"widths": "", "sizes": "400x300", "formats": "png"});
            for (k, v) in c.as_object().unwrap() {
                params[k] = v.clone();
            }
            job_body(PRESET, &input, params)
        })
        .collect();
    let jobs = run_jobs(&client, &bodies).await;
    for (i, (case, job)) in cases.iter().zip(&jobs).enumerate() {
        mediahost_e2e::client::assert_completed(job);
        assert_eq!(output_names(job), vec!["400x300-png"], "{case}: {job:#}");
        let path = download(&client, job, "400x300-png", &subdir(&dir, &i.to_string())).await;
        let p = Picture::decode(&path);
        let size = (p.width, p.height);
        let mid = p.height / 2;
        let row = |y: u32| blue_from(&p, y);
        let colour = |x: u32, y: u32| image::colour_name(&p.mean(x, y, 8, 8)[..3]);
        eprintln!(
            "[e2e] fit {case}: {}x{}, blue from x={} on the middle row",
            size.0,
            size.1,
            row(mid)
        );
        match (case["fit"].as_str().unwrap(), case["position"].as_str()) {
            ("inside", _) => {
                assert_eq!(size, (400, 200), "inside keeps the 2:1 aspect in the box");
                assert!(row(mid).abs_diff(200) <= 2, "{}", row(mid));
            }
            ("contain", None) => {
                assert_eq!(size, (400, 300));
                // The 400x200 picture centred: 50 rows of white above and below.
                for (x, y) in [(10, 10), (300, 35), (10, 260), (300, 288)] {
                    assert_eq!(colour(x, y), "white", "padding at {x},{y}");
                }
                assert_eq!(colour(96, 146), "red");
                assert_eq!(colour(296, 146), "blue");
                assert!(row(mid).abs_diff(200) <= 2, "{}", row(mid));
            }
            ("contain", Some(_)) => {
                assert_eq!(size, (400, 300));
                // At the top, padded with black below.
                assert_eq!(colour(96, 4), "red", "the picture starts at the top");
                assert_eq!(colour(296, 190), "blue");
                for (x, y) in [(10, 210), (300, 288)] {
                    assert_eq!(colour(x, y), "black", "padding at {x},{y}");
                }
            }
            ("cover", Some("left")) => {
                assert_eq!(size, (400, 300));
                // Scaled to 600x300, the left 400 columns kept: red to x=300.
                assert!(row(mid).abs_diff(300) <= 2, "{}", row(mid));
                assert!(row(2).abs_diff(300) <= 2 && row(297).abs_diff(300) <= 2);
            }
            ("cover", Some("right")) => {
                assert_eq!(size, (400, 300));
                // The right 400 columns of 600: red only to x=100.
                assert!(row(mid).abs_diff(100) <= 2, "{}", row(mid));
            }
            ("fill", _) => {
                assert_eq!(size, (400, 300));
                // Stretched: the halves still meet in the middle, top to bottom.
                for y in [1, mid, 298] {
                    assert!(row(y).abs_diff(200) <= 2, "row {y}: {}", row(y));
                }
            }
            other => unreachable!("{other:?}"),
        }
    }
}

#[tokio::test]
async fn widths_over_the_source_are_skipped_unless_upscaling_is_asked() {
    let client = Host::shared_local().client();
    let dir = scratch("upscale");
    let source = image::lavfi_image("testsrc2=s=300x200", &[], &dir.join("small.png"));
    let input = client.upload(&source).await;
    let params =
        |upscale: bool| json!({"widths": "160,320,640", "formats": "png", "upscale": upscale});
    let jobs = run_jobs(
        &client,
        &[
            job_body(PRESET, &input, params(false)),
            job_body(PRESET, &input, params(true)),
        ],
    )
    .await;
    let (plain, upscaled) = (&jobs[0], &jobs[1]);
    mediahost_e2e::client::assert_completed(plain);
    assert_eq!(output_names(plain), vec!["w160-png"], "{plain:#}");
    let skipped = plain["report"]["skipped"].as_str().unwrap_or_default();
    assert!(
        skipped.contains("w320") && skipped.contains("w640"),
        "the report says what was skipped: {:#}",
        plain["report"]
    );
    mediahost_e2e::client::assert_completed(upscaled);
    assert_eq!(
        sorted(output_names(upscaled)),
        names(&["w160-png", "w320-png", "w640-png"])
    );
    for w in [160, 320, 640] {
        let name = format!("w{w}-png");
        let path = download(&client, upscaled, &name, &dir).await;
        assert_eq!(probed(&path).2, (w, ladder_height((300, 200), w)), "{name}");
    }
    let path = download(&client, plain, "w160-png", &subdir(&dir, "plain")).await;
    assert_eq!(probed(&path).2, (160, 107));
}

// ---------------------------------------------------------------------------------------------
// Orientation
// ---------------------------------------------------------------------------------------------

/// The 320x240 marked picture (red top-left, blue top-right, as stored) with `exif` in it, as
/// JPEG or PNG.
fn oriented_source(dir: &Path, png: bool, exif: &[u8]) -> PathBuf {
    let ext = if png { "png" } else { "jpg" };
    let plain = image::marked(320, 240, &["-q:v", "2"], &dir.join(format!("plain.{ext}")));
    let bytes = std::fs::read(&plain).unwrap();
    let meta = Metadata {
        exif: Some(exif.to_vec()),
        ..Metadata::default()
    };
    let tagged = if png {
        image::png_with(&bytes, &meta)
    } else {
        image::jpeg_with(&bytes, &meta)
    };
    let orientation = image::exif_orientation(exif).unwrap();
    let path = dir.join(format!("oriented-{orientation}.{ext}"));
    std::fs::write(&path, tagged).unwrap();
    path
}

/// Checks one output of the marked picture with EXIF `orientation`: the size a viewer shows,
/// the markers where the viewer shows them, and EXIF saying no further turn is needed.
fn check_upright(path: &Path, orientation: u16, what: &str) {
    let swapped = orientation >= 5;
    let shown = if swapped {
        (240.0, 320.0)
    } else {
        (320.0, 240.0)
    };
    let p = Picture::decode(path);
    let expected = (160, ladder_height((shown.0 as u32, shown.1 as u32), 160));
    assert_eq!(
        (p.width, p.height),
        expected,
        "{what}: the upright picture is {}x{} shown, so w160 is {expected:?}",
        shown.0,
        shown.1
    );
    let scale = f64::from(p.width) / shown.0;
    let (mw, mh) = (f64::from(image::MARK_W), f64::from(image::MARK_H));
    for (colour, stored_x) in [("red", mw / 2.0), ("blue", 320.0 - mw / 2.0)] {
        let (x, y) = image::displayed_at(orientation, 320.0, 240.0, stored_x, mh / 2.0);
        let mean = p.mean_around(x * scale, y * scale, 8);
        assert_eq!(
            image::colour_name(&mean[..3]),
            colour,
            "{what}: the {colour} marker should be shown at ({:.0}, {:.0}) of {}x{}; found \
             {mean:?} there",
            x * scale,
            y * scale,
            p.width,
            p.height
        );
    }
    let bytes = std::fs::read(path).unwrap();
    let meta = image::read_metadata(&bytes).unwrap();
    let exif = meta
        .exif
        .unwrap_or_else(|| panic!("{what}: metadata keep, yet no EXIF"));
    assert_eq!(
        image::exif_orientation(&exif),
        Some(1),
        "{what}: the pixels are upright, so EXIF must not ask a viewer to turn them again"
    );
    assert_eq!(
        image::exif_ascii(&exif, image::TAG_MAKE).as_deref(),
        Some("OrientCam"),
        "{what}: the rest of EXIF is kept"
    );
}

#[tokio::test]
async fn a_turned_photo_comes_out_upright_exactly_once() {
    let client = Host::shared_local().client();
    let dir = scratch("orientation");
    let exif = |orientation: u16, big_endian: bool| {
        Exif {
            make: Some("OrientCam"),
            orientation: Some(orientation),
            big_endian,
            ..Exif::default()
        }
        .tiff()
    };
    // JPEG with every orientation (alternating byte orders), and PNG with eXIf 6.
    let mut sources: Vec<(u16, PathBuf)> = (1..=8)
        .map(|o| {
            let d = subdir(&dir, &format!("jpeg-{o}"));
            (o, oriented_source(&d, false, &exif(o, o % 2 == 0)))
        })
        .collect();
    let png_dir = subdir(&dir, "png-6");
    sources.push((6, oriented_source(&png_dir, true, &exif(6, false))));
    let mut bodies = Vec::new();
    for (_, path) in &sources {
        let input = client.upload(path).await;
        bodies.push(job_body(
            PRESET,
            &input,
            json!({"widths": "160", "formats": "jpeg,png,webp"}),
        ));
    }
    let jobs = run_jobs(&client, &bodies).await;
    for ((orientation, source), job) in sources.iter().zip(&jobs) {
        let kind = source.extension().unwrap().to_string_lossy().into_owned();
        let what = format!("{kind} with EXIF orientation {orientation}");
        mediahost_e2e::client::assert_completed(job);
        assert_eq!(
            job["report"]["orientation"],
            i64::from(*orientation),
            "{what}: {:#}",
            job["report"]
        );
        let out = source.parent().unwrap();
        for format in ["jpeg", "png", "webp"] {
            let path = download(&client, job, &format!("w160-{format}"), out).await;
            check_upright(&path, *orientation, &format!("{what}, {format} output"));
        }
        eprintln!(
            "[e2e] {what}: upright, markers in place, EXIF orientation 1 in jpeg, png and webp"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Metadata
// ---------------------------------------------------------------------------------------------

fn tagged(dir: &Path, name: &str, plain: &Path, meta: &Metadata) -> PathBuf {
    let bytes = std::fs::read(plain).unwrap();
    let tagged = if name.ends_with(".png") {
        image::png_with(&bytes, meta)
    } else {
        image::jpeg_with(&bytes, meta)
    };
    let path = dir.join(name);
    std::fs::write(&path, tagged).unwrap();
    path
}

fn camera_meta(profile: &[u8]) -> Metadata {
    Metadata {
        exif: Some(
            Exif {
                make: Some("MediahostCam"),
                orientation: Some(1),
                artist: Some("Image Variants E2E"),
                big_endian: false,
            }
            .tiff(),
        ),
        xmp: Some(image::xmp_packet("kept-by-image-variants")),
        icc: Some(profile.to_vec()),
    }
}

#[tokio::test]
async fn kept_metadata_survives_into_jpeg_png_and_webp() {
    let client = Host::shared_local().client();
    let dir = scratch("keep");
    let meta = camera_meta(&image::icc_profile("sRGB (test)", image::SRGB_COLORANTS));
    let mut sources = Vec::new();
    for ext in ["jpg", "png"] {
        let plain =
            image::lavfi_image("testsrc2=s=320x240", &[], &dir.join(format!("plain.{ext}")));
        sources.push(tagged(&dir, &format!("tagged.{ext}"), &plain, &meta));
    }
    let mut bodies = Vec::new();
    for source in &sources {
        let input = client.upload(source).await;
        bodies.push(job_body(
            PRESET,
            &input,
            json!({"widths": "160", "formats": "jpeg,png,webp"}),
        ));
    }
    let jobs = run_jobs(&client, &bodies).await;
    for (source, job) in sources.iter().zip(&jobs) {
        mediahost_e2e::client::assert_completed(job);
        let source_kind = source.extension().unwrap().to_string_lossy().into_owned();
        let out = subdir(&dir, &format!("from-{source_kind}"));
        for format in ["jpeg", "png", "webp"] {
            let what = format!("{source_kind} source, {format} output");
            let path = download(&client, job, &format!("w160-{format}"), &out).await;
            let bytes = std::fs::read(&path).unwrap();
            let got = image::read_metadata(&bytes).unwrap_or_else(|e| panic!("{what}: {e}"));
            let exif = got
                .exif
                .as_deref()
                .unwrap_or_else(|| panic!("{what}: no EXIF"));
            assert_eq!(
                image::exif_ascii(exif, image::TAG_ARTIST).as_deref(),
                Some("Image Variants E2E"),
                "{what}"
            );
            assert_eq!(
                image::exif_ascii(exif, image::TAG_MAKE).as_deref(),
                Some("MediahostCam"),
                "{what}"
            );
            assert_eq!(got.exif, meta.exif, "{what}: EXIF as it was");
            assert_eq!(got.xmp, meta.xmp, "{what}: the XMP packet as it was");
            assert_eq!(got.icc, meta.icc, "{what}: the ICC profile as it was");
            if format == "webp" {
                assert_eq!(
                    image::webp_flags(&bytes).map(|f| f & 0x2c),
                    Some(0x2c),
                    "{what}: VP8X flags ICC, EXIF and XMP"
                );
            }
            video::play(&path).unwrap_or_else(|e| panic!("{what}: {e}"));
        }
    }
    eprintln!("[e2e] keep: EXIF, XMP and ICC identical in jpeg, png and webp from jpeg and png");
}

/// A Display P3 orange-red whose sRGB equivalent is inside sRGB's gamut, so a correct
/// conversion is checkable to a few units: P3 (220, 60, 40) is sRGB (239.4, 35.2, 17.2).
const P3_PATCH: [u8; 3] = [220, 60, 40];

/// Mean RGB of the left (patch) and right (grey) halves' centres of a 128x64 output.
fn patch_and_grey(path: &Path) -> ([f64; 3], [f64; 3]) {
    let p = Picture::decode(path);
    assert_eq!((p.width, p.height), (128, 64), "{}", path.display());
    let rgb = |m: [f64; 4]| [m[0], m[1], m[2]];
    (rgb(p.mean(20, 22, 24, 20)), rgb(p.mean(84, 22, 24, 20)))
}

fn within(got: [f64; 3], want: [f64; 3], tolerance: f64) -> bool {
    got.iter()
        .zip(want)
        .all(|(g, w)| (g - w).abs() <= tolerance)
}

#[tokio::test]
async fn stripped_metadata_is_gone_and_display_p3_is_converted_to_srgb() {
    let client = Host::shared_local().client();
    let dir = scratch("strip");
    let patch = format!(
        "0x{:02x}{:02x}{:02x}",
        P3_PATCH[0], P3_PATCH[1], P3_PATCH[2]
    );
    let p3_profile = image::icc_profile("Display P3 (test)", image::DISPLAY_P3_COLORANTS);
    let srgb_profile = image::icc_profile("sRGB (test)", image::SRGB_COLORANTS);
    let adobe_profile = image::icc_profile("Adobe RGB (test)", image::ADOBE_RGB_COLORANTS);
    // 256x128: the patch on the left, mid grey on the right. As PNG (RGB, exact values) and as
    // JPEG (YUV, what a phone writes).
    let plain_png = image::halves(256, 128, &patch, "0x808080", &dir.join("plain.png"));
    let plain_jpeg = image::halves(256, 128, &patch, "0x808080", &dir.join("plain.jpg"));
    let p3_png = tagged(&dir, "p3.png", &plain_png, &camera_meta(&p3_profile));
    let p3_jpeg = tagged(&dir, "p3.jpg", &plain_jpeg, &camera_meta(&p3_profile));
    let srgb_png = tagged(&dir, "srgb.png", &plain_png, &camera_meta(&srgb_profile));
    let srgb_jpeg = tagged(&dir, "srgb.jpg", &plain_jpeg, &camera_meta(&srgb_profile));
    let adobe = tagged(&dir, "adobe.png", &plain_png, &camera_meta(&adobe_profile));
    let stored_jpeg = patch_and_grey_of(&plain_jpeg);

    let expected = image::display_p3_to_srgb(P3_PATCH);
    let stored = P3_PATCH.map(f64::from);
    // (label, source, what its patch should read after stripping)
    let stripped: [(&str, &PathBuf, [f64; 3]); 4] = [
        ("P3 PNG", &p3_png, expected),
        ("P3 JPEG", &p3_jpeg, expected),
        ("sRGB PNG", &srgb_png, stored),
        ("sRGB JPEG", &srgb_jpeg, stored_jpeg.0),
    ];
    let params =
        |metadata: &str| json!({"widths": "128", "formats": "png,jpeg,webp", "metadata": metadata});
    let mut bodies = Vec::new();
    for (_, source, _) in &stripped {
        let input = client.upload(source).await;
        bodies.push(job_body(PRESET, &input, params("strip")));
    }
    let input = client.upload(&p3_png).await;
    bodies.push(job_body(PRESET, &input, params("keep")));
    let input = client.upload(&adobe).await;
    bodies.push(job_body(PRESET, &input, params("strip")));
    let jobs = run_jobs(&client, &bodies).await;

    // Stripped: no EXIF, XMP or ICC anywhere; P3's colours now in sRGB numbers, sRGB's as
    // they were. Every source is checked before failing, so one report shows them all.
    let grey = [128.0; 3];
    let mut failures = Vec::new();
    for ((label, _, want), job) in stripped.iter().zip(&jobs) {
        if job["state"] != "COMPLETED" {
            failures.push(format!(
                "{label} source, strip: {} {}",
                job["state"], job["error"]
            ));
            continue;
        }
        let out = subdir(&dir, &label.replace(' ', "-"));
        for format in ["png", "jpeg", "webp"] {
            let what = format!("{label} source, strip, {format} output");
            let path = download(&client, job, &format!("w128-{format}"), &out).await;
            let meta = image::read_metadata(&std::fs::read(&path).unwrap()).unwrap();
            if meta != Metadata::default() {
                failures.push(format!("{what}: metadata left: {meta:?}"));
            }
            let (got, got_grey) = patch_and_grey(&path);
            // PNG from PNG is exact up to zscale's rounding; 4:2:0 chroma costs a few units.
            let tolerance = if format == "png" && label.ends_with("PNG") {
                3.0
            } else {
                8.0
            };
            eprintln!(
                "[e2e] {what}: patch {got:.1?} (want {want:.1?}, stored {stored:.0?}), \
                 grey {got_grey:.1?}"
            );
            if !within(got, *want, tolerance) {
                failures.push(format!(
                    "{what}: the patch is {got:.1?}, {want:.1?} ± {tolerance} expected (the \
                     stored, unconverted value is {stored:.0?})"
                ));
            }
            if !within(got_grey, grey, tolerance) {
                failures.push(format!("{what}: grey reads {got_grey:.1?}"));
            }
        }
    }

    // Kept: the P3 profile travels with the unconverted numbers, which it describes.
    let p3_keep = &jobs[4];
    mediahost_e2e::client::assert_completed(p3_keep);
    let path = download(&client, p3_keep, "w128-png", &dir).await;
    let meta = image::read_metadata(&std::fs::read(&path).unwrap()).unwrap();
    assert_eq!(
        meta.icc.as_ref(),
        Some(&p3_profile),
        "the P3 profile is kept"
    );
    let (got, _) = patch_and_grey(&path);
    assert!(
        within(got, stored, 3.0),
        "P3 kept: the pixels are not converted: {got:.1?}"
    );

    // A profile ffmpeg 5.1 cannot convert is not silently dropped with shifted colours.
    let adobe_strip = &jobs[5];
    assert_eq!(adobe_strip["state"], "FAILED", "{adobe_strip:#}");
    let error = &adobe_strip["error"];
    assert_eq!(error["code"], "PLAN_REJECTED", "{error:#}");
    let message = error["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("sRGB") && message.contains("keep"),
        "the refusal says what to do: {error:#}"
    );
    eprintln!(
        "[e2e] strip, Adobe RGB source: {} at {}: {message}",
        error["code"], error["step"]
    );
    assert!(failures.is_empty(), "{failures:#?}");
}

/// [`patch_and_grey`] of a source at its own 256x128, read the same way at twice the scale.
fn patch_and_grey_of(source: &Path) -> ([f64; 3], [f64; 3]) {
    let p = Picture::decode(source);
    let rgb = |m: [f64; 4]| [m[0], m[1], m[2]];
    (rgb(p.mean(40, 44, 48, 40)), rgb(p.mean(168, 44, 48, 40)))
}

// ---------------------------------------------------------------------------------------------
// Inputs
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn transparency_is_kept_in_png_and_webp() {
    let client = Host::shared_local().client();
    let dir = scratch("alpha");
    // 128x96, the left half fully transparent, the right half opaque.
    let source = image::lavfi_image(
        "testsrc2=s=128x96,format=rgba,geq=r='r(X,Y)':g='g(X,Y)':b='b(X,Y)':a='if(lt(X,64),0,255)'",
        &[],
        &dir.join("alpha.png"),
    );
    let job = variants(
        &client,
        &source,
        json!({"widths": "64", "formats": "png,webp,jpeg"}),
    )
    .await;
    for (format, pix_fmt) in [("png", "rgba"), ("webp", "yuva420p")] {
        let path = download(&client, &job, &format!("w64-{format}"), &dir).await;
        let (_, got, size) = probed(&path);
        assert_eq!(size, (64, 48));
        assert_eq!(got, pix_fmt, "{format} keeps an alpha channel");
        let p = Picture::decode(&path);
        let (left, right) = (p.mean(4, 8, 20, 32)[3], p.mean(40, 8, 20, 32)[3]);
        eprintln!("[e2e] alpha: {format} {pix_fmt}: left alpha {left:.1}, right {right:.1}");
        assert!(
            left < 8.0 && right > 247.0,
            "{format}: alpha {left} (transparent half), {right} (opaque half)"
        );
    }
    let jpeg = download(&client, &job, "w64-jpeg", &dir).await;
    assert_eq!(probed(&jpeg).0, "mjpeg");
    let notes = job["report"]["notes"].as_str().unwrap_or_default();
    assert!(
        notes.contains("transparency") && notes.contains("jpeg"),
        "the report says JPEG drops the transparency: {:#}",
        job["report"]
    );
}

#[tokio::test]
async fn gif_tiff_and_bmp_are_read() {
    let client = Host::shared_local().client();
    let dir = scratch("inputs");
    // An animated GIF: 5 frames of the moving pattern; its first frame is the image.
    let gif = dir.join("animated.gif");
    media::run(
        media::ffmpeg()
            .args(["-f", "lavfi", "-i", "testsrc2=s=160x120:r=5:d=1"])
            .arg(&gif),
        "ffmpeg animated GIF",
    );
    let first = dir.join("gif-first.png");
    let last = dir.join("gif-last.png");
    media::run(
        media::ffmpeg()
            .arg("-i")
            .arg(&gif)
            .args(["-vf", "select=eq(n\\,0),scale=80:60", "-frames:v", "1"])
            .arg(&first),
        "GIF first frame",
    );
    media::run(
        media::ffmpeg()
            .arg("-i")
            .arg(&gif)
            .args(["-vf", "select=eq(n\\,4),scale=80:60", "-frames:v", "1"])
            .arg(&last),
        "GIF last frame",
    );
    let tiff = image::lavfi_image("testsrc2=s=160x120", &[], &dir.join("still.tiff"));
    let bmp = image::lavfi_image("testsrc2=s=160x120", &[], &dir.join("still.bmp"));
    let sources = [("gif", &gif), ("tiff", &tiff), ("bmp", &bmp)];
    let mut bodies = Vec::new();
    for (_, path) in sources {
        let input = client.upload(path).await;
        bodies.push(job_body(
            PRESET,
            &input,
            json!({"widths": "80", "formats": "png"}),
        ));
    }
    let jobs = run_jobs(&client, &bodies).await;
    for ((kind, source), job) in sources.iter().zip(&jobs) {
        mediahost_e2e::client::assert_completed(job);
        assert_eq!(output_names(job), vec!["w80-png"], "{kind}: {job:#}");
        let path = download(&client, job, "w80-png", &subdir(&dir, kind)).await;
        assert_eq!(probed(&path).2, (80, 60), "{kind}");
        if *kind == "gif" {
            let (to_first, to_last) = (
                video::ssim(&first, &path).unwrap(),
                video::ssim(&last, &path).unwrap(),
            );
            eprintln!("[e2e] gif: SSIM vs frame 0 {to_first:.4}, vs frame 4 {to_last:.4}");
            assert!(
                to_first > 0.9 && to_first > to_last + 0.05,
                "the GIF's first frame is the image: {to_first} vs {to_last}"
            );
        } else {
            let reference = dir.join(format!("{kind}-reference.png"));
            media::run(
                media::ffmpeg()
                    .arg("-i")
                    .arg(source)
                    .args(["-vf", "scale=80:60:flags=lanczos"])
                    .arg(&reference),
                "reference",
            );
            let ssim = video::ssim(&reference, &path).unwrap();
            eprintln!("[e2e] {kind}: SSIM vs ffmpeg's own 80x60 {ssim:.4}");
            assert!(ssim > 0.95, "{kind}: {ssim}");
        }
    }
}

/// The job failed with the preset's refusal `code` at the plan step, with a message a person
/// can act on.
fn assert_refused(job: &Value, code: &str, what: &str) {
    assert_eq!(job["state"], "FAILED", "{what}: {job:#}");
    let error = &job["error"];
    assert_eq!(error["code"], "PRESET_REFUSED", "{what}: {error:#}");
    assert_eq!(error["step"], "plan", "{what}: {error:#}");
    let message = error["message"].as_str().unwrap_or_default();
    assert!(message.contains(code), "{what}: names {code}: {error:#}");
    assert!(
        message.len() > code.len() + 20,
        "{what}: says why, not just the code: {error:#}"
    );
    eprintln!("[e2e] {what}: {message}");
}

#[tokio::test]
async fn what_is_not_a_usable_image_or_request_is_refused_with_a_reason() {
    let client = Host::shared_local().client();
    let dir = scratch("refusals");
    let audio = media::sine(&dir.join("tone.wav"), 1.0);
    let h264 = media::video_only(&dir.join("clip.mp4"));
    let big = image::lavfi_image("testsrc2=s=1600x1000", &[], &dir.join("big.png"));
    let small = image::lavfi_image("testsrc2=s=320x240", &[], &dir.join("small.png"));
    let (audio, h264, big, small) = (
        client.upload(&audio).await,
        client.upload(&h264).await,
        client.upload(&big).await,
        client.upload(&small).await,
    );
    let cases: [(&str, &str, Value, &str); 9] = [
        ("a WAV file", &audio, json!({}), "NOT_AN_IMAGE"),
        ("an H.264 video", &h264, json!({}), "NOT_AN_IMAGE"),
        (
            "1.6 MP with max_megapixels 1",
            &big,
            json!({"max_megapixels": 1}),
            "SOURCE_TOO_LARGE",
        ),
        (
            "widths with an empty entry",
            &small,
            json!({"widths": "160,,320"}),
            "WIDTHS_INVALID",
        ),
        (
            "widths not numbers",
            &small,
            json!({"widths": "160,wide"}),
            "WIDTHS_INVALID",
        ),
        (
            "a width under 16",
            &small,
            json!({"widths": "8"}),
            "WIDTHS_INVALID",
        ),
        (
            "sizes not WxH",
            &small,
            json!({"sizes": "400by300"}),
            "SIZES_INVALID",
        ),
        (
            "a format not offered",
            &small,
            json!({"formats": "webp,gif"}),
            "FORMATS_INVALID",
        ),
        (
            "no widths and no sizes",
            &small,
            json!({"widths": "", "sizes": ""}),
            "NO_VARIANTS",
        ),
    ];
    let bodies: Vec<Value> = cases
        .iter()
        .map(|(_, input, params, _)| job_body(PRESET, input, params.clone()))
        .collect();
    let jobs = run_jobs(&client, &bodies).await;
    for ((what, _, _, code), job) in cases.iter().zip(&jobs) {
        assert_refused(job, code, what);
    }
    // The same 1.6 MP image is fine under the default cap.
    let job = variants(&client, &dir.join("big.png"), json!({"widths": "320"})).await;
    assert_eq!(output_names(&job), vec!["w320-webp"]);
}
