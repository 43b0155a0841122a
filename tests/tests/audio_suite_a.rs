//! extract-audio, channel-normalize and loudness-normalize 1.1.0 end to end on local storage,
//! each result measured with ffmpeg the way a user checking a delivery would: stream copies
//! compared bit for bit with the source stream (`-c copy -f md5`), channels, layouts and rates
//! with ffprobe, levels with `volumedetect` and loudness with `ebur128`.
//!
//! Run with `--nocapture` to see the measured figures.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use mediahost_e2e::media::{self, Fixtures};
use mediahost_e2e::{Client, Host};
use serde_json::{Value, json};

/// Integrated loudness must land within this many LU of the target.
const LOUDNESS_TOLERANCE: f64 = 0.5;

// ---- media made for this file -------------------------------------------------------------

/// Media only these tests use; made once, on first use.
struct Suite {
    _dir: tempfile::TempDir,
    /// Matroska, 4 s: H.264 (or MPEG-4) video; audio 1 AAC stereo 440 Hz tagged `eng`;
    /// audio 2 Opus stereo 880 Hz tagged `deu`, quieter.
    film: PathBuf,
    /// MP4, 3 s: video and one AAC stream.
    clip: PathBuf,
    /// Stereo 48 kHz s16 WAV, 4 s: a 440 Hz sine on the left and the same sine inverted on the
    /// right (the mis-wired microphone).
    out_of_phase: PathBuf,
    /// 5.1(side) 48 kHz s16 WAV, 4 s: a 1 kHz sine at -6 dBFS on the centre, silence elsewhere.
    centre_only: PathBuf,
}

impl Suite {
    fn get() -> &'static Suite {
        static SUITE: OnceLock<Suite> = OnceLock::new();
        SUITE.get_or_init(Suite::make)
    }

    fn make() -> Suite {
        let dir = tempfile::Builder::new()
            .prefix("mediahost-suite-a-")
            .tempdir()
            .expect("a temp dir");
        let d = dir.path();
        Suite {
            film: film(&d.join("film.mkv")),
            clip: clip(&d.join("clip.mp4")),
            out_of_phase: out_of_phase(&d.join("out-of-phase.wav")),
            centre_only: centre_only(&d.join("centre-only.wav")),
            _dir: dir,
        }
    }
}

fn ffmpeg() -> Command {
    let mut command = Command::new("ffmpeg");
    command.args(["-hide_banner", "-nostdin", "-nostats", "-y"]);
    command
}

/// The video codec args: libx264 when ffmpeg has it, MPEG-4 part 2 otherwise.
fn video_codec() -> &'static [&'static str] {
    static HAS_X264: OnceLock<bool> = OnceLock::new();
    let has = *HAS_X264.get_or_init(|| {
        Command::new("ffmpeg")
            .args(["-hide_banner", "-encoders"])
            .output()
            .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("libx264"))
    });
    if has {
        &[
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-pix_fmt",
            "yuv420p",
        ]
    } else {
        &["-c:v", "mpeg4", "-pix_fmt", "yuv420p"]
    }
}

fn film(dest: &Path) -> PathBuf {
    media::run(
        ffmpeg()
            .args([
                "-f",
                "lavfi",
                "-i",
                "testsrc=size=160x120:rate=25:duration=4",
            ])
            .args(["-f", "lavfi", "-i", "sine=f=440:d=4:r=48000,volume=0.3"])
            .args(["-f", "lavfi", "-i", "sine=f=880:d=4:r=48000,volume=0.05"])
            .args(["-map", "0:v", "-map", "1:a", "-map", "2:a"])
            .args(video_codec())
            .args(["-c:a:0", "aac", "-b:a:0", "128k", "-ac:a:0", "2"])
            .args(["-c:a:1", "libopus", "-b:a:1", "96k", "-ac:a:1", "2"])
            .args(["-metadata:s:a:0", "language=eng"])
            .args(["-metadata:s:a:1", "language=deu"])
            .arg(dest),
        "ffmpeg film",
    );
    dest.to_path_buf()
}

fn clip(dest: &Path) -> PathBuf {
    media::run(
        ffmpeg()
            .args([
                "-f",
                "lavfi",
                "-i",
                "testsrc=size=160x120:rate=25:duration=3",
            ])
            .args(["-f", "lavfi", "-i", "sine=f=330:d=3:r=44100,volume=0.2"])
            .args(video_codec())
            .args(["-c:a", "aac", "-b:a", "96k"])
            .arg(dest),
        "ffmpeg clip",
    );
    dest.to_path_buf()
}

fn out_of_phase(dest: &Path) -> PathBuf {
    media::run(
        ffmpeg()
            .args([
                "-filter_complex",
                "sine=f=440:d=4:r=48000,volume=0.25,pan=stereo|c0=c0|c1=-1*c0[out]",
            ])
            .args(["-map", "[out]", "-c:a", "pcm_s16le"])
            .arg(dest),
        "ffmpeg out-of-phase stereo",
    );
    dest.to_path_buf()
}

fn centre_only(dest: &Path) -> PathBuf {
    media::run(
        ffmpeg()
            .args([
                "-filter_complex",
                "sine=f=1000:d=4:r=48000,volume=0.5,pan=5.1(side)|FC=c0[out]",
            ])
            .args(["-map", "[out]", "-c:a", "pcm_s16le"])
            .arg(dest),
        "ffmpeg centre-only 5.1(side)",
    );
    dest.to_path_buf()
}

// ---- measurements -------------------------------------------------------------------------

/// MD5 of the packets of stream `spec` ("a:1", "v:0") as `-c copy` reads them: equal for a
/// stream and its bit-exact copy, whatever the container.
fn stream_md5(path: &Path, spec: &str) -> String {
    let output = ffmpeg()
        .args(["-v", "error", "-i"])
        .arg(path)
        .args(["-map", &format!("0:{spec}"), "-c", "copy", "-f", "md5", "-"])
        .output()
        .expect("run ffmpeg");
    assert!(
        output.status.success(),
        "md5 of {spec} in {}: {}",
        path.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

/// EBU R128 loudness of audio stream `index` (among audio streams) of `path`.
fn stream_loudness(path: &Path, index: usize) -> media::Loudness {
    let stderr = media::run(
        ffmpeg()
            .arg("-i")
            .arg(path)
            .args(["-map", &format!("0:a:{index}")])
            .args(["-af", "ebur128=peak=true", "-f", "null", "-"]),
        "ebur128",
    );
    media::parse_ebur128_summary(&stderr).unwrap_or_else(|| panic!("no summary:\n{stderr}"))
}

/// `volumedetect`'s max_volume (dBFS) after `filter` (e.g. a `pan` picking one channel).
fn max_volume(path: &Path, filter: &str) -> f64 {
    let stderr = media::run(
        ffmpeg().arg("-i").arg(path).args([
            "-af",
            &format!("{filter},volumedetect"),
            "-f",
            "null",
            "-",
        ]),
        "volumedetect",
    );
    stderr
        .lines()
        .find_map(|l| l.split("max_volume:").nth(1))
        .and_then(|v| v.trim().trim_end_matches("dB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no max_volume:\n{stderr}"))
}

fn audio_streams(probe: &Value) -> Vec<&Value> {
    probe["streams"]
        .as_array()
        .map(|s| s.iter().filter(|s| s["codec_type"] == "audio").collect())
        .unwrap_or_default()
}

// ---- running jobs -------------------------------------------------------------------------

/// Uploads `input`, runs `preset` with `params` (and `version` when given); returns the job.
async fn run(
    client: &Client,
    preset: &str,
    version: Option<&str>,
    input: &Path,
    params: Value,
) -> Value {
    let uri = client.upload(input).await;
    let mut body = json!({ "preset": preset, "inputs": { "main": uri }, "params": params });
    if let Some(version) = version {
        body["version"] = json!(version);
    }
    client.run_job(&body).await
}

/// Runs a job that must complete, and downloads its output.
async fn run_ok(
    preset: &str,
    version: Option<&str>,
    input: &Path,
    params: Value,
    stem: &str,
) -> (Value, PathBuf) {
    let client = Host::shared_local().client();
    let job = run(&client, preset, version, input, params).await;
    mediahost_e2e::client::assert_completed(&job);
    let out = client
        .download_output(&job, &Fixtures::get().scratch(stem), stem)
        .await;
    (job, out)
}

/// Runs a job that the preset must refuse with `code`.
async fn expect_refusal(preset: &str, input: &Path, params: Value, code: &str) {
    let client = Host::shared_local().client();
    let job = run(&client, preset, None, input, params).await;
    assert_eq!(job["state"], "FAILED", "{job:#}");
    assert_eq!(job["error"]["code"], "PRESET_REFUSED", "{job:#}");
    let message = job["error"]["message"].as_str().unwrap_or("");
    assert!(message.contains(code), "the refusal names {code}: {job:#}");
}

// ---- extract-audio ------------------------------------------------------------------------

#[tokio::test]
async fn extract_audio_copies_the_aac_of_an_mp4_bit_exact() {
    let s = Suite::get();
    let (job, out) = run_ok(
        "extract-audio",
        Some("^1"),
        &s.clip,
        json!({}),
        "extract-mp4",
    )
    .await;
    assert_eq!(job["preset"]["version"], "1.1.0", "{job:#}");
    let report = &job["report"];
    assert_eq!(report["copied"], true, "{job:#}");
    assert_eq!(report["codec"], "aac", "{job:#}");
    assert_eq!(report["stream"], 1, "{job:#}");
    assert_eq!(job["outputs"][0]["container"], "m4a", "{job:#}");
    let probe = media::probe(&out);
    assert_eq!(
        probe["streams"].as_array().map(Vec::len),
        Some(1),
        "{probe:#}"
    );
    let (source, copy) = (stream_md5(&s.clip, "a:0"), stream_md5(&out, "a:0"));
    eprintln!("[extract] mp4 aac: source {source}, extracted {copy}");
    assert_eq!(
        copy, source,
        "the extracted AAC is the source stream bit for bit"
    );
}

#[tokio::test]
async fn extract_audio_by_language_picks_that_stream_bit_exact() {
    let s = Suite::get();
    let (job, out) = run_ok(
        "extract-audio",
        None,
        &s.film,
        json!({ "language": "de" }),
        "extract-deu",
    )
    .await;
    assert_eq!(job["report"]["stream"], 2, "{job:#}");
    assert_eq!(job["report"]["language"], "deu", "{job:#}");
    assert_eq!(job["report"]["copied"], true, "{job:#}");
    assert_eq!(job["outputs"][0]["container"], "opus", "{job:#}");
    let probe = media::probe(&out);
    let audio = media::audio_stream(&probe);
    assert_eq!(audio["codec_name"], "opus", "{probe:#}");
    assert_eq!(audio["tags"]["language"], "deu", "{probe:#}");
    let copy = stream_md5(&out, "a:0");
    let (deu, eng) = (stream_md5(&s.film, "a:1"), stream_md5(&s.film, "a:0"));
    eprintln!("[extract] language de: extracted {copy}, source deu {deu}, eng {eng}");
    assert_eq!(copy, deu, "the German stream, bit for bit");
    assert_ne!(copy, eng);

    // By index, English, re-encoded to FLAC on request.
    let (job, out) = run_ok(
        "extract-audio",
        None,
        &s.film,
        json!({ "stream": 1, "codec": "flac" }),
        "extract-eng-flac",
    )
    .await;
    assert_eq!(job["report"]["copied"], false, "{job:#}");
    assert_eq!(job["report"]["stream"], 1, "{job:#}");
    let probe = media::probe(&out);
    assert_eq!(
        media::audio_stream(&probe)["codec_name"],
        "flac",
        "{probe:#}"
    );
    // The English tone peaks near -31 dBFS, the German one near -47.
    let level = max_volume(&out, "anull");
    assert!(
        level > -38.0,
        "the English stream peaks near -31 dBFS, got {level}"
    );
}

#[tokio::test]
async fn extract_audio_refuses_what_is_not_there() {
    let s = Suite::get();
    let f = Fixtures::get();
    expect_refusal(
        "extract-audio",
        &s.film,
        json!({ "stream": 7 }),
        "STREAM_NOT_FOUND",
    )
    .await;
    expect_refusal(
        "extract-audio",
        &s.film,
        json!({ "stream": 0 }),
        "NOT_AUDIO",
    )
    .await;
    expect_refusal(
        "extract-audio",
        &s.film,
        json!({ "language": "fra" }),
        "LANGUAGE_NOT_FOUND",
    )
    .await;
    expect_refusal("extract-audio", &f.video_only, json!({}), "NO_AUDIO").await;
}

// ---- channel-normalize --------------------------------------------------------------------

#[tokio::test]
async fn channel_normalize_mono_to_stereo_duplicates_the_channel() {
    let f = Fixtures::get();
    let (job, out) = run_ok(
        "channel-normalize",
        None,
        &f.tone_mono,
        json!({ "channels": 2, "sample_rate": 44_100, "bit_depth": "24" }),
        "mono-to-stereo",
    )
    .await;
    let probe = media::probe(&out);
    let audio = media::audio_stream(&probe);
    assert_eq!(audio["channels"], 2, "{probe:#}");
    assert_eq!(audio["channel_layout"], "stereo", "{probe:#}");
    assert_eq!(audio["codec_name"], "pcm_s24le", "{probe:#}");
    assert_eq!(media::sample_rate(audio), 44_100, "{probe:#}");
    // A 16-bit mono WAV stores no channel layout: the preset names the channel by position.
    assert_eq!(
        job["report"]["pan_formula"], "stereo|FL=c0|FR=c0",
        "{job:#}"
    );
    let source = max_volume(&f.tone_mono, "anull");
    let left = max_volume(&out, "pan=mono|c0=c0");
    let difference = max_volume(&out, "pan=mono|c0=c0-c1");
    eprintln!(
        "[channels] mono {source:.2} dBFS -> left {left:.2} dBFS, left-right {difference:.1} dBFS"
    );
    assert!(
        (left - source).abs() <= 0.2,
        "left {left} vs source {source}"
    );
    assert!(
        difference <= -80.0,
        "both sides identical: L-R peaks at {difference} dBFS"
    );
}

#[tokio::test]
async fn channel_normalize_stereo_to_mono_average_cancels_out_of_phase_left_does_not() {
    let s = Suite::get();
    let source = max_volume(&s.out_of_phase, "pan=mono|c0=c0");
    let mut levels = Vec::new();
    for downmix in ["average", "left"] {
        let (job, out) = run_ok(
            "channel-normalize",
            None,
            &s.out_of_phase,
            json!({ "channels": 1, "downmix": downmix }),
            &format!("phase-{downmix}"),
        )
        .await;
        let probe = media::probe(&out);
        let audio = media::audio_stream(&probe);
        assert_eq!(audio["channels"], 1, "{probe:#}");
        // A 16-bit mono WAV has no channel mask (plain WAVEFORMAT), so ffprobe may name no
        // layout; any layout it names must be mono.
        assert!(
            audio["channel_layout"].is_null() || audio["channel_layout"] == "mono",
            "{probe:#}"
        );
        assert_eq!(audio["codec_name"], "pcm_s16le", "{probe:#}");
        assert_eq!(job["report"]["downmix"], downmix, "{job:#}");
        assert_eq!(job["report"]["layout"], "mono", "{job:#}");
        levels.push(max_volume(&out, "anull"));
    }
    let (average, left) = (levels[0], levels[1]);
    eprintln!(
        "[channels] out-of-phase stereo (left {source:.2} dBFS) -> average {average:.1} dBFS, left {left:.2} dBFS"
    );
    assert!(
        average <= -80.0,
        "average of opposite channels is silence, got {average}"
    );
    assert!(
        (left - source).abs() <= 0.2,
        "left keeps its level: {left} vs {source}"
    );
}

#[tokio::test]
async fn channel_normalize_5_1_to_stereo_with_itu_coefficients() {
    let f = Fixtures::get();
    let s = Suite::get();
    let (job, out) = run_ok(
        "channel-normalize",
        None,
        &f.tone_51,
        json!({ "channels": 2, "sample_rate": 48_000, "bit_depth": "32f" }),
        "surround-stereo",
    )
    .await;
    let probe = media::probe(&out);
    let audio = media::audio_stream(&probe);
    assert_eq!(audio["channels"], 2, "{probe:#}");
    assert_eq!(audio["channel_layout"], "stereo", "{probe:#}");
    assert_eq!(audio["codec_name"], "pcm_f32le", "{probe:#}");
    assert_eq!(
        job["report"]["pan_formula"], "stereo|FL=FL+0.707*FC+0.707*BL|FR=FR+0.707*FC+0.707*BR",
        "{job:#}"
    );

    // 5.1(side) with only the centre: each side gets it at 0.707, 3 dB down.
    let (job, out) = run_ok(
        "channel-normalize",
        None,
        &s.centre_only,
        json!({ "channels": 2 }),
        "centre-stereo",
    )
    .await;
    assert_eq!(
        job["report"]["pan_formula"], "stereo|FL=FL+0.707*FC+0.707*SL|FR=FR+0.707*FC+0.707*SR",
        "{job:#}"
    );
    let centre = max_volume(&s.centre_only, "pan=mono|c0=FC");
    let left = max_volume(&out, "pan=mono|c0=c0");
    let right = max_volume(&out, "pan=mono|c0=c1");
    eprintln!(
        "[channels] 5.1(side) centre {centre:.2} dBFS -> left {left:.2}, right {right:.2} dBFS"
    );
    for side in [left, right] {
        let gain = side - centre;
        assert!(
            (gain - -3.01).abs() <= 0.15,
            "centre to each side at -3 dB, got {gain:+.2}"
        );
    }
}

// ---- loudness-normalize 1.1.0 -------------------------------------------------------------

/// Runs the newest loudness-normalize from 1.1 on (1.2.0: 1.1's features on interface 2.0) on
/// `input` with `params`; checks the version, the delivery's
/// loudness against `expect_lufs` and the true peak against the default ceiling.
async fn normalize(label: &str, input: &Path, params: Value, expect_lufs: f64) -> Value {
    let before = media::loudness(input);
    let (job, out) = run_ok(
        "loudness-normalize",
        Some("^1.1"),
        input,
        params,
        "normalize-1-1",
    )
    .await;
    assert_eq!(job["preset"]["version"], "1.2.0", "{job:#}");
    let after = media::loudness(&out);
    let deviation = after.integrated - expect_lufs;
    eprintln!(
        "[loudness 1.1] {label}: input I={:.1} TP={:.1} -> output I={:.2} LUFS ({deviation:+.2} LU \
         from {expect_lufs}) TP={:.2} dBTP; gain {} limited {}",
        before.integrated,
        before.true_peak,
        after.integrated,
        after.true_peak,
        job["report"]["gain_db"],
        job["report"]["limited"]
    );
    assert!(
        deviation.abs() <= LOUDNESS_TOLERANCE,
        "{label}: {:.2} LUFS, {deviation:+.2} LU from {expect_lufs}",
        after.integrated
    );
    assert!(
        after.true_peak <= -1.5,
        "{label}: true peak {}",
        after.true_peak
    );
    job
}

#[tokio::test]
async fn loudness_1_1_named_targets() {
    let f = Fixtures::get();
    let cases = [
        ("typical speech, ebu-r128", &f.speech, "ebu-r128", -23.0),
        ("quiet speech, podcast", &f.speech_quiet, "podcast", -16.0),
        ("hot speech, streaming", &f.speech_hot, "streaming", -14.0),
        ("stereo music, atsc-a85", &f.music, "atsc-a85", -24.0),
    ];
    let jobs = cases.map(|(label, input, target, lufs)| async move {
        let job = normalize(label, input, json!({ "target": target }), lufs).await;
        assert_eq!(job["report"]["target"], target, "{job:#}");
        assert_eq!(job["report"]["target_lufs"], lufs, "{job:#}");
    });
    let [a, b, c, d] = jobs;
    tokio::join!(a, b, c, d);
}

#[tokio::test]
async fn loudness_1_1_lower_only_leaves_a_quiet_file_alone() {
    let f = Fixtures::get();
    let before = media::loudness(&f.speech_quiet);
    let job = normalize(
        "quiet speech, lower_only podcast",
        &f.speech_quiet,
        json!({ "target": "podcast", "lower_only": true }),
        before.integrated,
    )
    .await;
    assert_eq!(job["report"]["gain_db"], 0.0, "{job:#}");
    assert_eq!(
        job["report"]["effective_target_lufs"],
        job["report"]["input_integrated_lufs"]
    );
}

#[tokio::test]
async fn loudness_1_1_measure_mode_reports_and_writes_nothing() {
    let f = Fixtures::get();
    let client = Host::shared_local().client();
    let ours = media::loudness(&f.speech);
    let job = run(
        &client,
        "loudness-normalize",
        Some("1.1.0"),
        &f.speech,
        json!({ "mode": "measure", "target": "ebu-r128" }),
    )
    .await;
    assert_eq!(job["state"], "COMPLETED", "{job:#}");
    assert!(
        job["outputs"].as_array().is_none_or(Vec::is_empty),
        "measure mode writes no output: {job:#}"
    );
    let report = &job["report"];
    let measured = report["input_integrated_lufs"]
        .as_f64()
        .expect("a measurement");
    let peak = report["input_true_peak_dbtp"]
        .as_f64()
        .expect("a measurement");
    eprintln!(
        "[loudness 1.1] measure: report I={measured:.2} TP={peak:.2}, ebur128 here I={:.2} TP={:.2}; gain {}",
        ours.integrated, ours.true_peak, report["gain_db"]
    );
    assert!((measured - ours.integrated).abs() <= 0.2, "{job:#}");
    assert!((peak - ours.true_peak).abs() <= 0.3, "{job:#}");
    let gain = report["gain_db"].as_f64().unwrap();
    assert!((gain - (-23.0 - measured)).abs() <= 0.01, "{job:#}");
}

#[tokio::test]
async fn loudness_1_1_normalizes_one_stream_and_keeps_the_others_bit_exact() {
    let s = Suite::get();
    let job = normalize_stream(&s.film).await;
    assert_eq!(job["report"]["kept_streams"], "0,1", "{job:#}");
}

async fn normalize_stream(film: &Path) -> Value {
    let (job, out) = run_ok(
        "loudness-normalize",
        Some("^1.1"),
        film,
        json!({ "stream": 2, "target_lufs": -16.0 }),
        "normalize-stream",
    )
    .await;
    assert_eq!(job["outputs"][0]["container"], "mkv", "{job:#}");
    let probe = media::probe(&out);
    let audio = audio_streams(&probe);
    assert_eq!(audio.len(), 2, "both audio streams are there: {probe:#}");
    assert_eq!(
        probe["streams"].as_array().map(Vec::len),
        Some(3),
        "{probe:#}"
    );
    assert_eq!(audio[1]["tags"]["language"], "deu", "{probe:#}");
    let (before, after) = (stream_loudness(film, 1), stream_loudness(&out, 1));
    let kept = (stream_md5(film, "a:0"), stream_md5(&out, "a:0"));
    let video = (stream_md5(film, "v:0"), stream_md5(&out, "v:0"));
    eprintln!(
        "[loudness 1.1] stream 2 of the film: {:.2} -> {:.2} LUFS (TP {:.2}); English copy {}, video copy {}",
        before.integrated,
        after.integrated,
        after.true_peak,
        if kept.0 == kept.1 {
            "bit-exact"
        } else {
            "DIFFERENT"
        },
        if video.0 == video.1 {
            "bit-exact"
        } else {
            "DIFFERENT"
        },
    );
    assert!(
        (after.integrated - -16.0).abs() <= LOUDNESS_TOLERANCE,
        "{after:?}"
    );
    assert!(after.true_peak <= -1.5, "{after:?}");
    assert_eq!(kept.0, kept.1, "the English stream is copied bit for bit");
    assert_eq!(video.0, video.1, "the video is copied bit for bit");
    job
}

#[tokio::test]
async fn loudness_versions_resolve_newest_unless_pinned() {
    let f = Fixtures::get();
    let client = Host::shared_local().client();
    for (version, expect) in [
        (None, "1.2.0"),
        (Some("^1"), "1.2.0"),
        (Some("=1.1.0"), "1.1.0"),
        (Some("=1.0.0"), "1.0.0"),
    ] {
        let job = run(
            &client,
            "loudness-normalize",
            version,
            &f.tone_mono,
            json!({}),
        )
        .await;
        mediahost_e2e::client::assert_completed(&job);
        assert_eq!(
            job["preset"]["version"], expect,
            "version {version:?}: {job:#}"
        );
        // 1.0.0's report has no named target; 1.1.0's and 1.2.0's do.
        assert_eq!(
            job["report"]["target"].is_null(),
            expect == "1.0.0",
            "version {version:?}: {job:#}"
        );
    }
}
