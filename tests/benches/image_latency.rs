//! How long a user waits for an image job with `Prefer: wait`, from the cache, and against bare
//! ffmpeg.
//!
//! Two inputs generated here with lavfi and uploaded once to one host (`mediahost serve`, local
//! storage): a 4000x3000 (12-megapixel) photo-like JPEG (a mandelbrot blended over gradients,
//! with grain; quality 2, a few MB) and a 60 s 1080p25 H.264 clip (testsrc2, ultrafast). Every
//! host design is one `POST /v1/jobs` with `Prefer: wait=60`, timed from sending the request to
//! having the whole `200` body: the latency a user of the synchronous answer sees. Every answer
//! must be `200` COMPLETED with `Preference-Applied: wait=60` and every output checked (name,
//! codec, size); a `202` means the job did not end within the wait, and fails the bench.
//!
//! The designs, interleaved run by run (the order rotating each round, so that drift in the
//! shared machine's load hits them all alike):
//!
//! 1. *image-variants, cold*: `widths: "640,1280,1920"`, `formats: "webp"` (quality 80, its
//!    default), `"cache": false`, so ffmpeg really runs every time;
//! 2. *bare ffmpeg*: the same three resizes of the same JPEG as one ffmpeg command line, run
//!    here as a subprocess: one decode, `split` into three lanczos `scale`s, libwebp quality 80,
//!    three outputs (each checked with ffprobe after the clock stops);
//! 3. *image-variants, cached*: the same job body without `"cache": false`, answered from the
//!    result cache (filled by one untimed job first; each answer must name that job in
//!    `cached`), several times per round;
//! 4. *video-thumbnail at 30 s, cold*: `time: 30`, width 640, JPEG, `"cache": false`;
//! 5. *video-thumbnail automatic, cold*: no time, so the preset asks for the analyses that
//!    choose a representative frame;
//! 6. *bare ffmpeg thumbnail*: `-ss 30`, one frame scaled to 640 wide, MJPEG;
//! 7. *video-thumbnail at 30 s, cached*.
//!
//! Every host design runs once untimed first (the worker's first plan with a preset, the page
//! cache). Prints per design p50, p99 (nearest rank), min and max, the ratios of the medians
//! (preset cold / bare ffmpeg, cached / cold), and for the cold host designs the medians of the
//! job's own `timings` (`queue_s`: submission to the attempt's start; `run_s`: the attempt;
//! `ffmpeg_s`: its ffprobe and ffmpeg children), of `run_s - ffmpeg_s` (the host's own work in
//! the attempt: input copy and hashing, the sandboxed plan calls, storing the outputs) and of
//! the latency outside `queue_s + run_s` (the HTTP request, the submission's checks, noticing
//! the end, the view).
//!
//! `IMAGE_LATENCY_RUNS` sets the runs of each cold design (default 30; the cached image design
//! gets 4 per round, 120 by default). The default run takes about 3 minutes on the 2-core
//! machine, inputs included. Run:
//!
//! ```text
//! cargo build -p mediahost
//! cargo bench -p mediahost-e2e --bench image_latency
//! ```
//!
//! A smoke run (test profile): `IMAGE_LATENCY_RUNS=2 cargo test -p mediahost-e2e --bench
//! image_latency`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use mediahost_e2e::client::json_body;
use mediahost_e2e::host::{StorageKind, mediahost_binary};
use mediahost_e2e::video::Pattern;
use mediahost_e2e::{Client, Host, media, process};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// Runs of each cold design unless `IMAGE_LATENCY_RUNS` says otherwise.
const DEFAULT_RUNS: usize = 30;
/// Cached answers per round: they take milliseconds, so more of them for a steadier p99.
const CACHED_PER_ROUND: usize = 4;
/// The `Prefer: wait` of every submission, the most the host grants.
const WAIT_S: u64 = 60;
/// The image ladder, and the source's size.
const WIDTHS: [u32; 3] = [640, 1280, 1920];
const PHOTO: (u32, u32) = (4000, 3000);
const WEBP_QUALITY: u32 = 80;
/// Where the fixed-time thumbnail is taken, and its width.
const THUMBNAIL_AT_S: f64 = 30.0;
const THUMBNAIL_WIDTH: u32 = 640;

/// The host designs' places in `hosts`, and the bare ones' in `bares`.
const IMAGE_COLD: usize = 0;
const THUMBNAIL_COLD: usize = 1;
const THUMBNAIL_AUTOMATIC: usize = 2;
const IMAGE_CACHED: usize = 3;
const THUMBNAIL_CACHED: usize = 4;
const BARE_IMAGE: usize = 0;
const BARE_THUMBNAIL: usize = 1;

// ---------------------------------------------------------------------------------------------
// Inputs
// ---------------------------------------------------------------------------------------------

/// A 4000x3000 4:2:0 JPEG at quality 2 that compresses like a photo: a mandelbrot (made at a
/// quarter of the size, bicubic-upscaled, so it takes seconds rather than minutes) blended over
/// soft gradients, with luma and chroma grain.
fn photo(dest: &Path) -> PathBuf {
    let (w, h) = PHOTO;
    media::run(
        media::ffmpeg()
            .args(["-f", "lavfi", "-i"])
            .arg(format!(
                "mandelbrot=size={}x{}:rate=1:maxiter=300:end_pts=1",
                w / 4,
                h / 4
            ))
            .args(["-f", "lavfi", "-i"])
            .arg(format!("gradients=size={w}x{h}:n=6:seed=7:rate=1"))
            .arg("-filter_complex")
            .arg(format!(
                "[0:v]scale={w}:{h}:flags=bicubic,format=yuvj420p[m];[1:v]format=yuvj420p[g];\
                 [m][g]blend=all_mode=overlay:all_opacity=0.6,noise=c0s=12:c1s=4:c2s=4"
            ))
            .args(["-frames:v", "1", "-q:v", "2"])
            .arg(dest),
        "generate the 12-megapixel JPEG",
    );
    dest.to_path_buf()
}

fn megabytes(path: &Path) -> f64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0) as f64 / 1e6
}

// ---------------------------------------------------------------------------------------------
// Through the host
// ---------------------------------------------------------------------------------------------

/// `POST /v1/jobs` with `Prefer: wait=60`: the seconds from sending it to having the whole body,
/// and the job. Asserts the answer is `200` with the preference applied and the job COMPLETED.
async fn submit_waiting(client: &Client, body: &Value) -> (f64, Value) {
    let url = client.url("/v1/jobs");
    let request = client
        .http()
        .post(&url)
        .header("prefer", format!("wait={WAIT_S}"))
        // The client's own 60 s timeout would fire before the host's 202.
        .timeout(Duration::from_secs(WAIT_S + 15))
        .json(body);
    let started = Instant::now();
    let resp = request
        .send()
        .await
        .unwrap_or_else(|e| panic!("POST {url}: {e}"));
    let status = resp.status();
    let applied = resp.headers().get("preference-applied").cloned();
    let text = resp
        .text()
        .await
        .unwrap_or_else(|e| panic!("POST {url}: read the body: {e}"));
    let wall = started.elapsed().as_secs_f64();
    assert!(
        status != StatusCode::ACCEPTED,
        "POST /v1/jobs {body} answered 202 after {wall:.1} s: the job did not end within \
         Prefer: wait={WAIT_S}, which fails this bench (it measures the synchronous answer):\n{text}"
    );
    assert_eq!(status, StatusCode::OK, "POST /v1/jobs {body}: {text}");
    assert_eq!(
        applied.as_ref().and_then(|v| v.to_str().ok()),
        Some(format!("wait={WAIT_S}").as_str()),
        "Preference-Applied of the answer to {body}"
    );
    let job: Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("POST /v1/jobs: the body is not JSON ({e}): {text}"));
    assert_eq!(job["state"], "COMPLETED", "{job:#}");
    assert_eq!(job["outcome"], "complete", "{job:#}");
    assert!(job["error"].is_null(), "{job:#}");
    (wall, job)
}

/// What a finished job must hold: these outputs, each a stored still of this codec and width.
struct Expected {
    /// Output name and width.
    outputs: Vec<(String, u32)>,
    codec: &'static str,
}

impl Expected {
    fn check(&self, job: &Value) {
        let outputs = job["outputs"].as_array().expect("outputs");
        assert_eq!(outputs.len(), self.outputs.len(), "{job:#}");
        for (name, width) in &self.outputs {
            let output = outputs.iter().find(|o| o["name"] == name.as_str());
            let output = output.unwrap_or_else(|| panic!("no output {name}: {job:#}"));
            assert_eq!(output["state"], "COMPLETED", "{output:#}");
            assert_eq!(output["kind"], "still", "{output:#}");
            assert!(output["size_bytes"].as_u64() > Some(0), "{output:#}");
            let stream = &output["streams"][0];
            assert_eq!(stream["codec"], self.codec, "{name}: {output:#}");
            assert_eq!(stream["width"], *width, "{name}: {output:#}");
        }
    }
}

/// A host design: one job body, asked with `Prefer: wait`, cold (`"cache": false`) or from the
/// cache (then `cached` must name `cached_from`).
struct HostDesign {
    label: &'static str,
    body: Value,
    expected: Expected,
    cached_from: Option<String>,
    wall: Vec<f64>,
    queue: Vec<f64>,
    run: Vec<f64>,
    ffmpeg: Vec<f64>,
    /// The last job recorded, whose log shows where its time went.
    last: Option<Value>,
}

impl HostDesign {
    fn cold(label: &'static str, mut body: Value, expected: Expected) -> HostDesign {
        body["cache"] = json!(false);
        HostDesign {
            label,
            body,
            expected,
            cached_from: None,
            wall: Vec::new(),
            queue: Vec::new(),
            run: Vec::new(),
            ffmpeg: Vec::new(),
            last: None,
        }
    }

    /// The same job as `cold`, served from the cache: runs it once (untimed, cacheable) so that
    /// its outputs fill the cache.
    async fn cached(client: &Client, label: &'static str, cold: &HostDesign) -> HostDesign {
        let mut body = cold.body.clone();
        body.as_object_mut().expect("a job body").remove("cache");
        let (_, job) = submit_waiting(client, &body).await;
        cold.expected.check(&job);
        assert!(
            job["cached"].is_null(),
            "the first run filled the cache: {job:#}"
        );
        let filler = job["id"].as_str().expect("job id").to_owned();
        HostDesign {
            label,
            body,
            expected: Expected {
                outputs: cold.expected.outputs.clone(),
                codec: cold.expected.codec,
            },
            cached_from: Some(filler),
            wall: Vec::new(),
            queue: Vec::new(),
            run: Vec::new(),
            ffmpeg: Vec::new(),
            last: None,
        }
    }

    /// One job, checked; returns it.
    async fn once(&self, client: &Client) -> (f64, Value) {
        let (wall, job) = submit_waiting(client, &self.body).await;
        self.expected.check(&job);
        match &self.cached_from {
            Some(filler) => assert_eq!(
                job["cached"]["job"].as_str(),
                Some(filler.as_str()),
                "{}: not answered from the cache: {job:#}",
                self.label
            ),
            None => assert!(job["cached"].is_null(), "{}: {job:#}", self.label),
        }
        (wall, job)
    }

    async fn record(&mut self, client: &Client) -> Value {
        let (wall, job) = self.once(client).await;
        let seconds = |field: &str| {
            job["timings"][field]
                .as_f64()
                .unwrap_or_else(|| panic!("no timings.{field}: {job:#}"))
        };
        self.wall.push(wall);
        self.queue.push(seconds("queue_s"));
        self.run.push(seconds("run_s"));
        self.ffmpeg.push(seconds("ffmpeg_s"));
        self.last = Some(job.clone());
        job
    }
}

/// Seconds since midnight of an RFC 3339 UTC timestamp (`2026-11-24T22:30:01.123Z`).
fn clock_s(at: &str) -> Option<f64> {
    let time = at.split('T').nth(1)?.trim_end_matches('Z');
    let mut parts = time.split(':');
    let (h, m, s) = (parts.next()?, parts.next()?, parts.next()?);
    Some(h.parse::<f64>().ok()? * 3600.0 + m.parse::<f64>().ok()? * 60.0 + s.parse::<f64>().ok()?)
}

/// Prints the job's log (`GET /v1/jobs/{id}/logs`), each line at its offset from the job's
/// creation: where one job's time went.
async fn print_timeline(client: &Client, label: &str, job: &Value) {
    let id = job["id"].as_str().expect("job id");
    let logs = client.get_json(&format!("/v1/jobs/{id}/logs")).await;
    let created = job["timings"]["created_at"].as_str().and_then(clock_s);
    println!("{label}, job {id}:");
    for line in logs["logs"].as_array().into_iter().flatten() {
        let at = line["at"].as_str().and_then(clock_s);
        let offset = match (at, created) {
            // A job that runs over midnight.
            (Some(at), Some(created)) => (at - created).rem_euclid(86_400.0) * 1e3,
            _ => f64::NAN,
        };
        let message = line["message"].as_str().unwrap_or_default();
        let message: String = message.chars().take(130).collect();
        println!(
            "  {offset:>7.1} ms  {:<6} {message}",
            line["source"].as_str().unwrap_or_default()
        );
    }
}

/// The preset's own command for `body`'s job, from a dry run (round 1), if it finishes in one.
async fn dry_run_argv(client: &Client, body: &Value) -> Option<Vec<String>> {
    let url = client.url(&format!(
        "/v1/presets/{}/{}/plan",
        body["preset"].as_str()?,
        body["version"].as_str()?
    ));
    let request = json!({"inputs": body["inputs"], "params": body["params"], "round": 1,
        "analyses": []});
    let resp = client.http().post(&url).json(&request).send().await;
    let resp = resp.unwrap_or_else(|e| panic!("POST {url}: {e}"));
    let plan = json_body(resp, StatusCode::OK, "dry run").await;
    if plan["decision"] != "finish" {
        return None;
    }
    let commands = plan["commands"].as_array()?;
    let argv = commands.first()?["argv"].as_array()?;
    Some(
        argv.iter()
            .map(|a| a.as_str().unwrap_or_default().to_owned())
            .collect(),
    )
}

// ---------------------------------------------------------------------------------------------
// Bare ffmpeg
// ---------------------------------------------------------------------------------------------

/// A bare ffmpeg design: one command line, its outputs (file name, codec, width) checked.
struct BareDesign {
    label: &'static str,
    argv: Vec<String>,
    outputs: Vec<(String, &'static str, u32)>,
    wall: Vec<f64>,
}

impl BareDesign {
    /// The three resizes as one command: one decode, split, lanczos, libwebp quality 80.
    fn variants(photo: &Path) -> BareDesign {
        let n = WIDTHS.len();
        let (w, h) = PHOTO;
        let mut graph = format!("[0:v]split={n}");
        for i in 0..n {
            graph.push_str(&format!("[s{i}]"));
        }
        let mut argv: Vec<String> = ["-hide_banner", "-nostdin", "-nostats", "-v", "error"]
            .map(String::from)
            .to_vec();
        argv.extend(["-i".into(), photo.display().to_string()]);
        let mut outputs = Vec::new();
        for (i, width) in WIDTHS.iter().enumerate() {
            graph.push_str(&format!(
                ";[s{i}]scale={width}:{}:flags=lanczos[o{i}]",
                width * h / w
            ));
        }
        argv.extend(["-filter_complex".into(), graph]);
        for (i, width) in WIDTHS.iter().enumerate() {
            let name = format!("w{width}.webp");
            argv.extend(
                [
                    "-map",
                    &format!("[o{i}]"),
                    "-c:v",
                    "libwebp",
                    "-quality",
                    &WEBP_QUALITY.to_string(),
                    "-frames:v",
                    "1",
                    "-f",
                    "webp",
                    &name,
                ]
                .map(String::from),
            );
            outputs.push((name, "webp", *width));
        }
        BareDesign {
            label: "bare ffmpeg: split, 3 lanczos scales, libwebp q80",
            argv,
            outputs,
            wall: Vec::new(),
        }
    }

    /// The fixed-time thumbnail as one command: input seek, one frame, 640 wide, MJPEG.
    fn thumbnail(clip: &Path) -> BareDesign {
        let argv = [
            "-hide_banner",
            "-nostdin",
            "-nostats",
            "-v",
            "error",
            "-ss",
            &THUMBNAIL_AT_S.to_string(),
            "-i",
            &clip.display().to_string(),
            "-vf",
            &format!("scale={THUMBNAIL_WIDTH}:-2:flags=lanczos"),
            "-frames:v",
            "1",
            "-c:v",
            "mjpeg",
            "-f",
            "image2",
            "thumbnail.jpg",
        ]
        .map(String::from)
        .to_vec();
        BareDesign {
            label: "bare ffmpeg thumbnail: -ss 30, scale 640, mjpeg",
            argv,
            outputs: vec![("thumbnail.jpg".into(), "mjpeg", THUMBNAIL_WIDTH)],
            wall: Vec::new(),
        }
    }

    /// Runs the command in a fresh `dir`, timed from spawn to exit; checks its outputs after.
    fn record(&mut self, dir: &Path) {
        std::fs::create_dir_all(dir).expect("create the scratch directory");
        let log = dir.join("ffmpeg.log");
        let stderr = std::fs::File::create(&log).expect("create the ffmpeg log");
        let mut command = Command::new("ffmpeg");
        command
            .args(&self.argv)
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr);
        let started = Instant::now();
        let status = command.status().expect("run ffmpeg");
        let wall = started.elapsed().as_secs_f64();
        assert!(
            status.success(),
            "{} failed ({status}):\n{}\n{}",
            self.label,
            media::shown_ffmpeg(&self.argv),
            process::log_tail(&log, 30)
        );
        for (name, codec, width) in &self.outputs {
            let stream = media::probe(&dir.join(name))["streams"][0].clone();
            assert_eq!(stream["codec_name"], *codec, "{}: {name}", self.label);
            assert_eq!(stream["width"], *width, "{}: {name}", self.label);
        }
        std::fs::remove_dir_all(dir).expect("remove the scratch directory");
        self.wall.push(wall);
    }
}

// ---------------------------------------------------------------------------------------------
// Figures
// ---------------------------------------------------------------------------------------------

/// The nearest-rank `p` percentile (0 < p ≤ 1) of `v`.
fn percentile(v: &[f64], p: f64) -> f64 {
    let mut sorted = v.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = (p * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn p50(v: &[f64]) -> f64 {
    percentile(v, 0.5)
}

/// One table row in milliseconds: label, n, p50, p99, min, max.
fn row(label: &str, v: &[f64]) {
    let ms = |s: f64| s * 1e3;
    println!(
        "| {label:<50} | {:>3} | {:>8.1} | {:>8.1} | {:>8.1} | {:>8.1} |",
        v.len(),
        ms(p50(v)),
        ms(percentile(v, 0.99)),
        ms(percentile(v, 0.0)),
        ms(percentile(v, 1.0)),
    );
}

/// `/proc/loadavg`'s three averages: the 2 cores are shared, so the figures come with the load.
fn load_average() -> String {
    let text = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    text.split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

fn today() -> String {
    let out = Command::new("date").args(["-u", "+%F %H:%M UTC"]).output();
    out.map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}

fn runs() -> usize {
    process::count_from_env("IMAGE_LATENCY_RUNS", DEFAULT_RUNS)
}

// ---------------------------------------------------------------------------------------------

/// The designs in the order of the loop's rotation.
#[derive(Clone, Copy)]
enum Turn {
    Host(usize),
    /// A host design run `CACHED_PER_ROUND` times in its turn.
    HostCached(usize),
    Bare(usize),
}

#[tokio::main]
async fn main() {
    let runs = runs();
    let bench_started = Instant::now();
    println!("binary: {}", mediahost_binary().display());
    println!("load average at the start: {}", load_average());
    let dir = process::fixture_dir("image-latency-bench");
    let started = Instant::now();
    let photo = photo(&dir.path().join("photo.jpg"));
    let clip = Pattern::new(1920, 1080, "25", 60.0).make(&dir.path().join("clip-1080p-60s.mp4"));
    println!(
        "inputs generated in {:.1} s: {}x{} JPEG {:.2} MB, 60 s 1080p25 H.264 {:.1} MB",
        started.elapsed().as_secs_f64(),
        PHOTO.0,
        PHOTO.1,
        megabytes(&photo),
        megabytes(&clip)
    );

    let host = Host::start(StorageKind::Local).expect("host starts");
    let client = host.client();
    let photo_uri = client.upload(&photo).await;
    let clip_uri = client.upload(&clip).await;

    let widths = WIDTHS.map(|w| w.to_string()).join(",");
    let variants = json!({"preset": "image-variants", "version": "1.0.0",
        "inputs": {"main": photo_uri},
        "params": {"widths": widths, "formats": "webp", "webp_quality": WEBP_QUALITY}});
    let variant_outputs = Expected {
        outputs: WIDTHS.map(|w| (format!("w{w}-webp"), w)).to_vec(),
        codec: "webp",
    };
    let thumbnail_output = || Expected {
        outputs: vec![("thumbnail".into(), THUMBNAIL_WIDTH)],
        codec: "mjpeg",
    };
    let at_time = json!({"preset": "video-thumbnail", "version": "1.0.0",
        "inputs": {"main": clip_uri},
        "params": {"time": THUMBNAIL_AT_S, "width": THUMBNAIL_WIDTH, "format": "jpeg"}});
    let automatic = json!({"preset": "video-thumbnail", "version": "1.0.0",
        "inputs": {"main": clip_uri},
        "params": {"width": THUMBNAIL_WIDTH, "format": "jpeg"}});

    if let Some(argv) = dry_run_argv(&client, &variants).await {
        println!(
            "image-variants' command (dry run): {}",
            media::shown_ffmpeg(&argv)
        );
    }
    let mut hosts = vec![
        HostDesign::cold(
            "image-variants, cold (\"cache\": false)",
            variants,
            variant_outputs,
        ),
        HostDesign::cold("video-thumbnail at 30 s, cold", at_time, thumbnail_output()),
        HostDesign::cold(
            "video-thumbnail automatic, cold",
            automatic,
            thumbnail_output(),
        ),
    ];
    let mut bares = [BareDesign::variants(&photo), BareDesign::thumbnail(&clip)];
    for bare in &bares {
        println!("bare ffmpeg: {}", media::shown_ffmpeg(&bare.argv));
    }

    // Untimed: the first plan with each preset, the inputs into the page cache.
    for design in &hosts {
        design.once(&client).await;
    }
    let cached_variants =
        HostDesign::cached(&client, "image-variants, cached", &hosts[IMAGE_COLD]).await;
    let cached_thumbnail = HostDesign::cached(
        &client,
        "video-thumbnail at 30 s, cached",
        &hosts[THUMBNAIL_COLD],
    )
    .await;
    hosts.push(cached_variants);
    hosts.push(cached_thumbnail);
    let mut chosen = std::collections::BTreeSet::new();

    let turns = [
        Turn::Host(IMAGE_COLD),
        Turn::Bare(BARE_IMAGE),
        Turn::HostCached(IMAGE_CACHED),
        Turn::Host(THUMBNAIL_COLD),
        Turn::Host(THUMBNAIL_AUTOMATIC),
        Turn::Bare(BARE_THUMBNAIL),
        Turn::Host(THUMBNAIL_CACHED),
    ];
    let loop_started = Instant::now();
    for round in 0..runs {
        for k in 0..turns.len() {
            match turns[(round + k) % turns.len()] {
                Turn::Host(i) => {
                    let job = hosts[i].record(&client).await;
                    if let Some(by) = job["report"]["chosen_by"].as_str() {
                        chosen.insert(format!("{by} at {} s", job["report"]["time_s"]));
                    }
                }
                Turn::HostCached(i) => {
                    for _ in 0..CACHED_PER_ROUND {
                        hosts[i].record(&client).await;
                    }
                }
                Turn::Bare(i) => {
                    let scratch = dir.path().join(format!("bare-{round}-{i}"));
                    bares[i].record(&scratch);
                }
            }
        }
        eprintln!("[bench] round {} of {runs} done", round + 1);
    }
    let loop_s = loop_started.elapsed().as_secs_f64();

    println!(
        "\nsubmit -> 200 body with Prefer: wait={WAIT_S} (host), spawn -> exit (bare ffmpeg); \
         ms, nearest-rank percentiles (with n < 100 the p99 is the max)"
    );
    println!(
        "| {:<50} | {:>3} | {:>8} | {:>8} | {:>8} | {:>8} |",
        "design", "n", "p50", "p99", "min", "max"
    );
    println!(
        "|{:-<52}|{:->5}|{:->10}|{:->10}|{:->10}|{:->10}|",
        "", "", "", "", "", ""
    );
    for turn in turns {
        match turn {
            Turn::Host(i) | Turn::HostCached(i) => row(hosts[i].label, &hosts[i].wall),
            Turn::Bare(i) => row(bares[i].label, &bares[i].wall),
        }
    }
    if !chosen.is_empty() {
        println!(
            "(automatic thumbnail: frame chosen by {})",
            chosen.into_iter().collect::<Vec<_>>().join("; ")
        );
    }

    let median = |v: &[f64]| p50(v);
    println!("\nratios of medians");
    let ratio = |label: &str, a: &[f64], b: &[f64]| {
        let r = median(a) / median(b);
        // A cached answer is a few hundredths of a percent of a cold one: say it as 1/N.
        let r = if r < 0.1 {
            format!("1/{:.0}", 1.0 / r)
        } else {
            format!("{r:.2}")
        };
        println!(
            "  {label:<56} {r:>7} ({:.1} ms / {:.1} ms)",
            median(a) * 1e3,
            median(b) * 1e3
        );
    };
    let (h, b) = (&hosts, &bares);
    ratio(
        "image-variants cold / bare ffmpeg",
        &h[IMAGE_COLD].wall,
        &b[BARE_IMAGE].wall,
    );
    ratio(
        "image-variants cached / cold",
        &h[IMAGE_CACHED].wall,
        &h[IMAGE_COLD].wall,
    );
    ratio(
        "video-thumbnail at 30 s cold / bare ffmpeg thumbnail",
        &h[THUMBNAIL_COLD].wall,
        &b[BARE_THUMBNAIL].wall,
    );
    ratio(
        "video-thumbnail automatic / at 30 s, cold",
        &h[THUMBNAIL_AUTOMATIC].wall,
        &h[THUMBNAIL_COLD].wall,
    );
    ratio(
        "video-thumbnail at 30 s cached / cold",
        &h[THUMBNAIL_CACHED].wall,
        &h[THUMBNAIL_COLD].wall,
    );

    println!(
        "\nwhere a cold job's time goes: medians in ms of the job's timings (queue_s, run_s, \
         ffmpeg_s = its ffprobe and ffmpeg children), run_s - ffmpeg_s (the host's own work in \
         the attempt) and latency - queue_s - run_s (HTTP, submission checks, noticing the end)"
    );
    println!(
        "| {:<50} | {:>8} | {:>8} | {:>8} | {:>8} | {:>8} | {:>8} |",
        "design", "latency", "queue_s", "run_s", "ffmpeg_s", "run-ffm", "outside"
    );
    println!(
        "|{:-<52}|{:->10}|{:->10}|{:->10}|{:->10}|{:->10}|{:->10}|",
        "", "", "", "", "", "", ""
    );
    for design in &hosts[..=THUMBNAIL_AUTOMATIC] {
        let host_work: Vec<f64> = design
            .run
            .iter()
            .zip(&design.ffmpeg)
            .map(|(r, f)| r - f)
            .collect();
        let outside: Vec<f64> = design
            .wall
            .iter()
            .zip(design.queue.iter().zip(&design.run))
            .map(|(w, (q, r))| w - q - r)
            .collect();
        println!(
            "| {:<50} | {:>8.1} | {:>8.1} | {:>8.1} | {:>8.1} | {:>8.1} | {:>8.1} |",
            design.label,
            median(&design.wall) * 1e3,
            median(&design.queue) * 1e3,
            median(&design.run) * 1e3,
            median(&design.ffmpeg) * 1e3,
            median(&host_work) * 1e3,
            median(&outside) * 1e3,
        );
    }

    println!("\nthe last cold job of each host design, by its log (offsets from its creation):");
    for design in &hosts[..=THUMBNAIL_AUTOMATIC] {
        if let Some(job) = &design.last {
            print_timeline(&client, design.label, job).await;
        }
    }

    let nproc = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!(
        "\n{}: {runs} runs of each cold design, {} cached image answers, {runs} cached \
         thumbnails, interleaved; {nproc} cores (nproc); the runs took {loop_s:.0} s, the whole \
         bench {:.0} s; load average at the end: {}",
        today(),
        runs * CACHED_PER_ROUND,
        bench_started.elapsed().as_secs_f64(),
        load_average()
    );
}
