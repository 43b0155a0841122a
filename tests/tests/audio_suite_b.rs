//! dialogue-clean and voice-music-mix end to end on local storage, measured the way a user
//! checking a delivery would: integrated loudness and true peak with ffmpeg's `ebur128`,
//! channels and length with ffprobe, and the ducking depth on the mix itself.
//!
//! Run with `--nocapture` to see every measured figure.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use mediahost_e2e::client::expect_problem;
use mediahost_e2e::media::{self, run};
use mediahost_e2e::{Fixtures, Host};
use serde_json::{Value, json};

/// The presets' default true-peak ceiling (dBTP).
const CEILING: f64 = -1.5;
/// Integrated loudness must land within this many LU of the target.
const LOUDNESS_TOLERANCE: f64 = 0.5;

/// The voice track's layout: speech, silence, speech, each this long (s).
const SEGMENT_S: f64 = 3.0;
/// The music bed's tone: above anything 22.05 kHz speech holds, so a high-pass isolates it.
const BED_TONE_HZ: u32 = 16_000;
/// The high-pass that keeps only the bed's tone.
const BED_BAND: &str = "highpass=f=14000:poles=2,highpass=f=14000:poles=2";

/// Media made once for this binary.
struct SuiteMedia {
    _dir: tempfile::TempDir,
    /// espeak-ng speech with white noise about 25 dB under it, around -20 LUFS.
    noisy_speech: PathBuf,
    /// The same turned down to -40 LUFS.
    noisy_quiet: PathBuf,
    /// The same turned up to -8 LUFS, clipped in s16.
    noisy_hot: PathBuf,
    /// 9 s: 3 s of speech, 3 s of digital silence, 3 s of speech (22.05 kHz mono).
    voice: PathBuf,
    /// 14 s stereo 44.1 kHz bed: a steady 16 kHz tone.
    bed: PathBuf,
}

impl SuiteMedia {
    fn get() -> &'static SuiteMedia {
        static MEDIA: OnceLock<SuiteMedia> = OnceLock::new();
        MEDIA.get_or_init(|| {
            let dir = mediahost_e2e::process::fixture_dir("suite-b");
            let d = dir.path();
            let f = Fixtures::get();
            let noisy_speech = with_noise(&f.speech, &d.join("noisy.wav"));
            SuiteMedia {
                noisy_quiet: media::at_loudness(
                    &noisy_speech,
                    &d.join("noisy-quiet.wav"),
                    -40.0,
                    false,
                ),
                noisy_hot: media::at_loudness(&noisy_speech, &d.join("noisy-hot.wav"), -8.0, true),
                noisy_speech,
                voice: gapped_voice(d),
                bed: tone_bed(&d.join("bed.wav")),
                _dir: dir,
            }
        })
    }
}

fn ffmpeg() -> Command {
    let mut command = Command::new("ffmpeg");
    command.args(["-hide_banner", "-nostdin", "-nostats", "-y"]);
    command
}

/// `speech` with steady white noise mixed in (anoisesrc), as a noisy room recording.
fn with_noise(speech: &Path, dest: &Path) -> PathBuf {
    run(
        ffmpeg()
            .arg("-i")
            .arg(speech)
            .args(["-f", "lavfi", "-i", "anoisesrc=c=white:a=0.01:r=22050:s=3"])
            .args([
                "-filter_complex",
                "[0][1]amix=inputs=2:duration=first:normalize=0",
            ])
            .args(["-c:a", "pcm_s16le"])
            .arg(dest),
        "ffmpeg noisy speech",
    );
    dest.to_path_buf()
}

/// Speech cut to exactly 3 s, 3 s of digital silence, and another 3 s of speech.
fn gapped_voice(dir: &Path) -> PathBuf {
    let clip = |text: &str, name: &str| {
        let path = dir.join(name);
        run(
            Command::new("espeak-ng").arg("-w").arg(&path).arg(text),
            "espeak-ng",
        );
        path
    };
    let a = clip(
        "Welcome back to the show where we talk about media pipelines and how they measure sound",
        "a.wav",
    );
    let b = clip(
        "Today we look at ducking music under a voice and check the depth on the final mix",
        "b.wav",
    );
    let dest = dir.join("voice.wav");
    let s = SEGMENT_S;
    let graph = format!(
        "[0]atrim=0:{s},apad=whole_dur={s}[a];\
         anullsrc=r=22050:cl=mono,atrim=0:{s}[g];\
         [1]atrim=0:{s},apad=whole_dur={s}[b];\
         [a][g][b]concat=n=3:v=0:a=1[out]"
    );
    run(
        ffmpeg()
            .arg("-i")
            .arg(&a)
            .arg("-i")
            .arg(&b)
            .args(["-filter_complex", &graph, "-map", "[out]"])
            .args(["-c:a", "pcm_s16le"])
            .arg(&dest),
        "ffmpeg gapped voice",
    );
    dest
}

fn tone_bed(dest: &Path) -> PathBuf {
    let source = format!("sine=f={BED_TONE_HZ}:r=44100:d=14,volume=0.3");
    run(
        ffmpeg()
            .args(["-f", "lavfi", "-i", &source])
            .args(["-ac", "2", "-c:a", "pcm_s16le"])
            .arg(dest),
        "ffmpeg tone bed",
    );
    dest.to_path_buf()
}

/// Mean level (dB) of `path` between `start` and `end` s, after `filter`.
fn mean_volume(path: &Path, start: f64, end: f64, filter: &str) -> f64 {
    let stderr = run(
        ffmpeg().arg("-i").arg(path).args([
            "-af",
            &format!("atrim={start}:{end},{filter},volumedetect"),
            "-f",
            "null",
            "-",
        ]),
        "volumedetect",
    );
    stderr
        .lines()
        .find_map(|l| l.split("mean_volume:").nth(1))
        .and_then(|v| v.trim().trim_end_matches("dB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no mean_volume for {}:\n{stderr}", path.display()))
}

fn duration_s(probe: &Value) -> f64 {
    probe["format"]["duration"]
        .as_str()
        .and_then(|d| d.parse().ok())
        .unwrap_or_else(|| panic!("no duration in {probe:#}"))
}

/// Downloads the job's output, checks loudness within tolerance and peak under the ceiling,
/// and returns its path and its ffprobe view.
async fn delivered(label: &str, job: &Value, target: f64) -> (PathBuf, Value) {
    let client = Host::shared_local().client();
    let out = client
        .download_output(job, &Fixtures::get().scratch("suite-b"), "out")
        .await;
    let got = media::loudness(&out);
    let deviation = got.integrated - target;
    eprintln!(
        "[suite-b] {label}: I={:.2} LUFS (deviation {deviation:+.2} LU) TP={:.2} dBTP; report {}",
        got.integrated, got.true_peak, job["report"]
    );
    assert!(
        deviation.abs() <= LOUDNESS_TOLERANCE,
        "{label}: {:.2} LUFS is {deviation:+.2} LU from {target}",
        got.integrated
    );
    assert!(
        got.true_peak <= CEILING,
        "{label}: true peak {:.2} dBTP above {CEILING}",
        got.true_peak
    );
    let probe = media::probe(&out);
    (out, probe)
}

// ---- dialogue-clean ---------------------------------------------------------------------------

/// Every (level, target) pair: quiet (-40 LUFS), typical and hot (-8 LUFS, clipped) noisy speech
/// to -23, -16 and -14, with the channel count and codec each case asks for.
macro_rules! dialogue_cases {
    ($($test:ident: $variant:ident -> $target:expr, $channels:literal, $codec:literal;)*) => {$(
        #[tokio::test]
        async fn $test() {
            let m = SuiteMedia::get();
            clean(stringify!($test), &m.$variant, $target, $channels, $codec).await;
        }
    )*};
}

dialogue_cases! {
    dialogue_quiet_to_minus_23: noisy_quiet -> -23.0, "mono", "flac";
    dialogue_quiet_to_minus_16: noisy_quiet -> -16.0, "mono", "wav";
    dialogue_quiet_to_minus_14: noisy_quiet -> -14.0, "stereo", "wav";
    dialogue_typical_to_minus_23: noisy_speech -> -23.0, "stereo", "wav";
    dialogue_typical_to_minus_16: noisy_speech -> -16.0, "mono", "wav";
    dialogue_typical_to_minus_14: noisy_speech -> -14.0, "mono", "flac";
    dialogue_hot_to_minus_23: noisy_hot -> -23.0, "mono", "wav";
    dialogue_hot_to_minus_16: noisy_hot -> -16.0, "stereo", "flac";
    dialogue_hot_to_minus_14: noisy_hot -> -14.0, "mono", "wav";
}

async fn clean(label: &str, input: &Path, target: f64, channels: &str, codec: &str) {
    let client = Host::shared_local().client();
    let uri = client.upload(input).await;
    let job = client
        .run_job_ok(&json!({
            "preset": "dialogue-clean",
            "inputs": { "main": uri },
            "params": { "target_lufs": target, "channels": channels, "codec": codec },
        }))
        .await;
    assert_eq!(job["preset"]["version"], "1.1.0", "{job:#}");
    let (_, probe) = delivered(label, &job, target).await;
    let audio = media::audio_stream(&probe);
    let want_channels = if channels == "mono" { 1 } else { 2 };
    assert_eq!(audio["channels"], want_channels, "{label}: {probe:#}");
    assert_eq!(
        audio["codec_name"],
        if codec == "wav" { "pcm_s24le" } else { "flac" }
    );
    assert_eq!(
        media::sample_rate(audio),
        22_050,
        "{label}: the input's rate"
    );
    let report = &job["report"];
    for key in [
        "gain_db",
        "passes",
        "output_integrated_lufs",
        "cleaned_integrated_lufs",
    ] {
        assert!(!report[key].is_null(), "{label}: report.{key}: {job:#}");
    }
}

// ---- voice-music-mix --------------------------------------------------------------------------

/// Mixes the gapped voice over the tone bed; returns the job.
async fn mix(params: Value) -> Value {
    let m = SuiteMedia::get();
    let client = Host::shared_local().client();
    let voice = client.upload(&m.voice).await;
    let music = client.upload(&m.bed).await;
    client
        .run_job_ok(&json!({
            "preset": "voice-music-mix",
            "inputs": { "voice": voice, "music": music },
            "params": params,
        }))
        .await
}

/// The bed's level in the middle of each speech segment against the middle of the gap.
fn ducking_depths(mix: &Path) -> (f64, f64, f64) {
    let s = SEGMENT_S;
    // Skip the fade-in (1 s) and each segment's edges (attack, release).
    let first = mean_volume(mix, 1.25, s - 0.5, BED_BAND);
    let gap = mean_volume(mix, s + 0.9, 2.0 * s - 0.4, BED_BAND);
    let second = mean_volume(mix, 2.0 * s + 0.5, 3.0 * s - 0.5, BED_BAND);
    (gap - first, gap - second, gap)
}

async fn check_mix(label: &str, target: f64, duck_db: f64, tail_s: f64) {
    let mut params = json!({ "target_lufs": target, "tail_s": tail_s });
    if duck_db != 12.0 {
        params["duck_db"] = json!(duck_db);
    }
    let job = mix(params).await;
    let (out, probe) = delivered(label, &job, target).await;
    let audio = media::audio_stream(&probe);
    assert_eq!(audio["channels"], 2, "{label}: stereo out: {probe:#}");
    assert_eq!(
        media::sample_rate(audio),
        48_000,
        "{label}: 22.05 kHz voice mixes at 48 kHz"
    );
    let want = 3.0 * SEGMENT_S + tail_s;
    let got = duration_s(&probe);
    assert!(
        (got - want).abs() <= 0.1,
        "{label}: {got:.3} s long, expected voice + tail = {want:.3} s"
    );

    let (first, second, gap) = ducking_depths(&out);
    eprintln!(
        "[suite-b] {label}: ducking depth {first:.1} dB and {second:.1} dB (asked {duck_db}; bed at {gap:.1} dB in the gap); duration {got:.3} s"
    );
    for depth in [first, second] {
        assert!(
            depth >= duck_db - 2.0,
            "{label}: the music is only {depth:.1} dB lower during speech; asked {duck_db}"
        );
    }
    let report = &job["report"];
    for key in [
        "music_gain_db",
        "duck_mix",
        "passes",
        "output_integrated_lufs",
    ] {
        assert!(!report[key].is_null(), "{label}: report.{key}: {job:#}");
    }
}

#[tokio::test]
async fn mix_to_minus_23_ducks_twelve_db() {
    check_mix("mix -23, duck 12", -23.0, 12.0, 2.0).await;
}

#[tokio::test]
async fn mix_to_minus_16_ducks_twenty_db_with_a_longer_tail() {
    check_mix("mix -16, duck 20, tail 3", -16.0, 20.0, 3.0).await;
}

#[tokio::test]
async fn mix_to_minus_14_ducks_six_db() {
    check_mix("mix -14, duck 6", -14.0, 6.0, 2.0).await;
}

#[tokio::test]
async fn mix_without_music_is_refused_at_submit() {
    let m = SuiteMedia::get();
    let client = Host::shared_local().client();
    let voice = client.upload(&m.voice).await;
    let resp = client
        .submit(&json!({
            "preset": "voice-music-mix",
            "inputs": { "voice": voice },
        }))
        .await;
    let problem = expect_problem(resp, 422, "INPUTS_INVALID").await;
    assert_eq!(problem.body["input"], "music", "{:#}", problem.body);
}
