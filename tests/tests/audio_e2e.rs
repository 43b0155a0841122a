//! Audio presets end to end on local storage: upload, submit, wait, download, and measure the
//! result with ffmpeg the way a user checking a delivery would.
//!
//! Run with `--nocapture` to see the measured loudness of every case.

use std::path::Path;

use mediahost_e2e::media::{self, Fixtures};
use mediahost_e2e::{Client, Host};
use serde_json::{Value, json};

/// loudness-normalize's default true-peak ceiling (dBTP).
const DEFAULT_CEILING: f64 = -1.5;
/// Integrated loudness must land within this many LU of the target.
const LOUDNESS_TOLERANCE: f64 = 0.5;

/// One test per (speech variant, target): every combination of quiet (-40 LUFS), typical
/// (espeak-ng as is, about -20 LUFS) and hot (-8 LUFS, clipped) speech with the common targets.
macro_rules! speech_cases {
    ($($test:ident: $variant:ident ($name:literal) -> $target:expr;)*) => {$(
        #[tokio::test]
        async fn $test() {
            let f = Fixtures::get();
            let label = format!("{} speech -> {}", $name, $target);
            normalize(&label, &f.$variant, $target, None).await;
        }
    )*};
}

speech_cases! {
    quiet_speech_to_minus_23: speech_quiet ("quiet") -> -23.0;
    quiet_speech_to_minus_16: speech_quiet ("quiet") -> -16.0;
    quiet_speech_to_minus_14: speech_quiet ("quiet") -> -14.0;
    typical_speech_to_minus_23: speech ("typical") -> -23.0;
    typical_speech_to_minus_16: speech ("typical") -> -16.0;
    typical_speech_to_minus_14: speech ("typical") -> -14.0;
    hot_speech_to_minus_23: speech_hot ("hot") -> -23.0;
    hot_speech_to_minus_16: speech_hot ("hot") -> -16.0;
    hot_speech_to_minus_14: speech_hot ("hot") -> -14.0;
}

#[tokio::test]
async fn surround_5_1_keeps_its_six_channels() {
    let f = Fixtures::get();
    normalize("5.1 tones -> -23", &f.tone_51, -23.0, None).await;
}

#[tokio::test]
async fn stereo_music_to_minus_23_with_a_lower_ceiling() {
    let f = Fixtures::get();
    normalize(
        "stereo music -> -23, ceiling -3",
        &f.music,
        -23.0,
        Some(-3.0),
    )
    .await;
}

/// Normalizes `input` to `target` LUFS with codec auto and checks what a user would check.
async fn normalize(label: &str, input: &Path, target: f64, ceiling: Option<f64>) {
    let (job, out) = normalize_to(label, input, target, ceiling, None).await;
    assert_same_format(label, input, &out, &job);
}

/// Runs loudness-normalize (with `codec` when given), checks loudness, peak, report and the
/// job record, and returns the job and the downloaded delivery.
async fn normalize_to(
    label: &str,
    input: &Path,
    target: f64,
    ceiling: Option<f64>,
    codec: Option<&str>,
) -> (Value, std::path::PathBuf) {
    let host = Host::shared_local();
    let client = host.client();
    let f = Fixtures::get();
    let before = media::loudness(input);

    let mut params = json!({ "target_lufs": target });
    if let Some(ceiling) = ceiling {
        params["true_peak_db"] = json!(ceiling);
    }
    if let Some(codec) = codec {
        params["codec"] = json!(codec);
    }
    let uri = client.upload(input).await;
    let job = client
        .run_job_ok(&json!({
            "preset": "loudness-normalize",
            "version": "=1.0.0",
            "inputs": { "main": uri },
            "params": params,
        }))
        .await;
    assert_eq!(job["preset"]["name"], "loudness-normalize", "{job:#}");
    assert_eq!(
        job["preset"]["version"], "1.0.0",
        "pinned to 1.0.0 (1.1.0 has its own tests in audio_suite_a.rs): {job:#}"
    );
    assert_eq!(
        job["progress"], 1.0,
        "a completed job is at progress 1.0: {job:#}"
    );
    for timing in ["queue_s", "run_s", "ffmpeg_s"] {
        assert!(
            job["timings"][timing].as_f64().is_some_and(|t| t >= 0.0),
            "timings.{timing}: {job:#}"
        );
    }

    let out = client
        .download_output(&job, &f.scratch("normalize"), "normalized")
        .await;
    let after = media::loudness(&out);
    let ceiling = ceiling.unwrap_or(DEFAULT_CEILING);
    let deviation = after.integrated - target;
    eprintln!(
        "[loudness] {label}: input I={:.1} LUFS TP={:.1} dBTP -> output I={:.1} LUFS \
         (deviation {deviation:+.2} LU) TP={:.1} dBTP (ceiling {ceiling:.1}); report {}",
        before.integrated, before.true_peak, after.integrated, after.true_peak, job["report"]
    );
    assert!(
        deviation.abs() <= LOUDNESS_TOLERANCE,
        "{label}: integrated loudness {:.1} LUFS is {deviation:+.2} LU from the target {target}",
        after.integrated
    );
    assert!(
        after.true_peak <= ceiling,
        "{label}: true peak {:.1} dBTP is above the ceiling {ceiling}",
        after.true_peak
    );

    assert_report(label, &job, before, target, ceiling);
    (job, out)
}

/// A lossy delivery must still meet the ceiling once decoded, which is what a player does.
#[tokio::test]
async fn typical_speech_to_mp3_at_minus_16_meets_the_ceiling_when_decoded() {
    let f = Fixtures::get();
    let (job, out) = normalize_to(
        "typical speech -> mp3 -16",
        &f.speech,
        -16.0,
        None,
        Some("mp3"),
    )
    .await;
    assert_eq!(job["outputs"][0]["container"], "mp3", "{job:#}");
    let probe = media::probe(&out);
    assert_eq!(
        media::audio_stream(&probe)["codec_name"],
        "mp3",
        "{probe:#}"
    );
    assert_eq!(probe["format"]["format_name"], "mp3", "{probe:#}");
}

/// codec auto: the delivery keeps the input's codec, container, sample rate and channels, and
/// the job's own description of the output agrees with ffprobe.
fn assert_same_format(label: &str, input: &Path, out: &Path, job: &Value) {
    let (pin, pout) = (media::probe(input), media::probe(out));
    let (ain, aout) = (media::audio_stream(&pin), media::audio_stream(&pout));
    assert_eq!(aout["codec_name"], ain["codec_name"], "{label}: codec");
    assert_eq!(
        pout["format"]["format_name"], pin["format"]["format_name"],
        "{label}: container"
    );
    assert_eq!(
        media::sample_rate(aout),
        media::sample_rate(ain),
        "{label}: sample rate"
    );
    assert_eq!(aout["channels"], ain["channels"], "{label}: channels");
    let in_duration: f64 = pin["format"]["duration"].as_str().unwrap().parse().unwrap();
    let out_duration: f64 = pout["format"]["duration"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        (in_duration - out_duration).abs() <= 0.1,
        "{label}: duration {in_duration}s in, {out_duration}s out"
    );

    let output = &job["outputs"][0];
    assert_eq!(
        output["container"], "wav",
        "{label}: job output container: {job:#}"
    );
    assert_eq!(
        output["codecs"],
        json!([ain["codec_name"]]),
        "{label}: job output codecs: {job:#}"
    );
    assert!(
        output["uri"]
            .as_str()
            .is_some_and(|u| u.starts_with("local://")),
        "{label}: output URI on local storage: {job:#}"
    );
    let stream = &output["streams"][0];
    assert_eq!(stream["kind"], "audio", "{label}: {job:#}");
    assert_eq!(
        stream["sample_rate"],
        media::sample_rate(ain),
        "{label}: {job:#}"
    );
    assert_eq!(stream["channels"], ain["channels"], "{label}: {job:#}");
    let duration = output["duration_s"].as_f64().unwrap_or(f64::NAN);
    assert!(
        (duration - out_duration).abs() <= 0.1,
        "{label}: job says duration_s {duration}, ffprobe {out_duration}"
    );
}

/// The report says how much gain was applied and whether the limiter had to act; both must be
/// consistent with the input's measured loudness and peak.
fn assert_report(label: &str, job: &Value, before: media::Loudness, target: f64, ceiling: f64) {
    let report = &job["report"];
    let gain = report["gain_db"]
        .as_f64()
        .unwrap_or_else(|| panic!("{label}: report.gain_db is not a number: {job:#}"));
    let limited = report["limited"]
        .as_bool()
        .unwrap_or_else(|| panic!("{label}: report.limited is not a boolean: {job:#}"));
    let needed = target - before.integrated;
    if limited {
        // The limiter takes loudness away, so the gain in front of it is at least what a plain
        // gain change would have needed.
        assert!(
            gain >= needed - 0.5,
            "{label}: limited, but gain_db {gain:+.2} is below the {needed:+.2} dB needed"
        );
    } else {
        assert!(
            (gain - needed).abs() <= 0.5,
            "{label}: plain gain change of {gain:+.2} dB, but the input needed {needed:+.2} dB"
        );
    }
    // Peaks after the plain gain change; when they clearly cross the ceiling, the limiter must
    // have acted, and when they are clearly below it, it must not have.
    let predicted_peak = before.true_peak + needed;
    if predicted_peak > ceiling + 1.0 {
        assert!(
            limited,
            "{label}: peaks would reach {predicted_peak:.1} dBTP but limited=false"
        );
    } else if predicted_peak < ceiling - 1.0 {
        assert!(
            !limited,
            "{label}: peaks stay at {predicted_peak:.1} dBTP but limited=true"
        );
    }
}

struct Conversion {
    codec: &'static str,
    sample_rate: u64,
    channels: u64,
    /// What ffprobe says about the delivery.
    codec_name: &'static str,
    format_name: &'static str,
    container: &'static str,
}

const CONVERSIONS: [Conversion; 4] = [
    Conversion {
        codec: "mp3",
        sample_rate: 44_100,
        channels: 2,
        codec_name: "mp3",
        format_name: "mp3",
        container: "mp3",
    },
    Conversion {
        codec: "aac",
        sample_rate: 48_000,
        channels: 2,
        codec_name: "aac",
        format_name: "mov,mp4,m4a,3gp,3g2,mj2",
        container: "m4a",
    },
    Conversion {
        codec: "opus",
        sample_rate: 48_000,
        channels: 1,
        codec_name: "opus",
        format_name: "ogg",
        container: "opus",
    },
    Conversion {
        codec: "flac",
        sample_rate: 22_050,
        channels: 1,
        codec_name: "flac",
        format_name: "flac",
        container: "flac",
    },
];

#[tokio::test]
async fn convert_wav_to_mp3() {
    convert(&CONVERSIONS[0]).await;
}

#[tokio::test]
async fn convert_wav_to_aac_m4a() {
    convert(&CONVERSIONS[1]).await;
}

#[tokio::test]
async fn convert_wav_to_opus_mono() {
    convert(&CONVERSIONS[2]).await;
}

#[tokio::test]
async fn convert_wav_to_flac_mono_22k() {
    convert(&CONVERSIONS[3]).await;
}

/// Converts the stereo 44.1 kHz music to `c` and checks the delivery with ffprobe.
async fn convert(c: &Conversion) {
    let host = Host::shared_local();
    let client: Client = host.client();
    let f = Fixtures::get();
    let uri = client.upload(&f.music).await;
    let job = client
        .run_job_ok(&json!({
            "preset": "audio-convert",
            "version": "^1",
            "inputs": { "main": uri },
            "params": { "codec": c.codec, "sample_rate": c.sample_rate, "channels": c.channels },
        }))
        .await;
    assert_eq!(job["preset"]["version"], "1.1.0", "{job:#}");
    let output = &job["outputs"][0];
    assert_eq!(
        output["container"], c.container,
        "job output container: {job:#}"
    );

    let out = client
        .download_output(
            &job,
            &f.scratch("convert"),
            &format!("converted-{}", c.codec),
        )
        .await;
    let probe = media::probe(&out);
    let audio = media::audio_stream(&probe);
    eprintln!(
        "[convert] {} -> {} {} Hz {} ch, {} bytes",
        f.music.display(),
        audio["codec_name"],
        audio["sample_rate"],
        audio["channels"],
        probe["format"]["size"]
    );
    assert_eq!(audio["codec_name"], c.codec_name, "codec: {probe:#}");
    assert_eq!(
        probe["format"]["format_name"], c.format_name,
        "container: {probe:#}"
    );
    assert_eq!(audio["channels"], c.channels, "channels: {probe:#}");
    assert_eq!(
        media::sample_rate(audio),
        c.sample_rate,
        "sample rate: {probe:#}"
    );
    assert_eq!(
        probe["streams"].as_array().map(|s| s.len()),
        Some(1),
        "one audio stream and nothing else: {probe:#}"
    );
    let duration: f64 = probe["format"]["duration"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        (duration - 12.0).abs() <= 0.15,
        "the 12 s input came out {duration} s long: {probe:#}"
    );
    // Not silence: a conversion that writes the right headers around nothing must fail.
    let loudness = media::loudness(&out);
    let source = media::loudness(&f.music);
    // (A stereo-to-mono downmix may lose up to ~3 LU by summing; 5 LU still catches silence.)
    assert!(
        (loudness.integrated - source.integrated).abs() <= 5.0,
        "converted audio measures {loudness:?}, the source {source:?}"
    );
    // The contract does not say whether the job names codecs as ffprobe does ("mp3") or by
    // encoder ("libmp3lame"); either is fine, anything else is not.
    let codecs = &output["codecs"];
    assert!(
        *codecs == json!([c.codec_name]) || *codecs == json!([c.encoder()]),
        "job output codecs {codecs}: {job:#}"
    );
}

impl Conversion {
    /// The ffmpeg encoder that writes `codec_name`.
    fn encoder(&self) -> &'static str {
        match self.codec_name {
            "mp3" => "libmp3lame",
            "opus" => "libopus",
            other => other,
        }
    }
}
