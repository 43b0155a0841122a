//! Test media, made on the spot with espeak-ng and ffmpeg's lavfi sources (no binaries are
//! committed), and the measurements a user would make on a result: EBU R128 loudness with
//! ffmpeg's `ebur128` filter and stream facts with ffprobe.
//!
//! Not a reference implementation of anything: the numbers come from the same ffmpeg a user has.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use serde_json::Value;

/// A few sentences, about 14 s of speech at espeak-ng's default rate.
const SPEECH_TEXT: &str = "The quick brown fox jumps over the lazy dog. \
A production media pipeline measures loudness before it ships anything. \
Every broadcaster has a target, and every podcast app has another one. \
This sentence is here to make the recording long enough for a proper measurement.";

/// Media every test in a binary can share; made once, on first use.
pub struct Fixtures {
    dir: tempfile::TempDir,
    /// espeak-ng speech as it comes (22.05 kHz mono s16 WAV), around -20 LUFS.
    pub speech: PathBuf,
    /// The speech turned down to about -40 LUFS.
    pub speech_quiet: PathBuf,
    /// The speech turned up to about -8 LUFS with hard clipping (s16), like a hot master.
    pub speech_hot: PathBuf,
    /// Stereo 44.1 kHz s16 WAV: a chord of sines over pink noise, 12 s.
    pub music: PathBuf,
    /// 48 kHz sine tones, 8 s, in three layouts.
    pub tone_mono: PathBuf,
    pub tone_stereo: PathBuf,
    pub tone_51: PathBuf,
    /// An MP4 with one video stream and no audio.
    pub video_only: PathBuf,
    /// Random text in a file named like audio.
    pub not_media: PathBuf,
}

impl Fixtures {
    /// The shared set for this test binary.
    pub fn get() -> &'static Fixtures {
        static FIXTURES: OnceLock<Fixtures> = OnceLock::new();
        FIXTURES.get_or_init(Fixtures::make)
    }

    fn make() -> Fixtures {
        let dir = crate::process::fixture_dir("media");
        let d = dir.path();
        let speech = speech(&d.join("speech.wav"));
        let speech_quiet = at_loudness(&speech, &d.join("speech-quiet.wav"), -40.0, false);
        let speech_hot = at_loudness(&speech, &d.join("speech-hot.wav"), -8.0, true);
        let music = music(&d.join("music.wav"));
        let tone_mono = tone(&d.join("tone-mono.wav"), "mono");
        let tone_stereo = tone(&d.join("tone-stereo.wav"), "stereo");
        let tone_51 = tone(&d.join("tone-5.1.wav"), "5.1");
        let video_only = video_only(&d.join("video-only.mp4"));
        let not_media = not_media(&d.join("not-media.wav"));
        Fixtures {
            dir,
            speech,
            speech_quiet,
            speech_hot,
            music,
            tone_mono,
            tone_stereo,
            tone_51,
            video_only,
            not_media,
        }
    }

    /// A fresh directory for a test's downloads.
    pub fn scratch(&self, label: &str) -> PathBuf {
        scratch_in(self.dir.path(), label)
    }
}

/// A fresh directory for one test's downloads under `root/out/`, named after `label`.
pub fn scratch_in(root: &Path, label: &str) -> PathBuf {
    let dir = root
        .join("out")
        .join(format!("{label}-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).expect("create a scratch directory");
    dir
}

/// Runs a command to completion, panicking with its stderr if it fails.
pub fn run(command: &mut Command, what: &str) -> String {
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot run {:?}: {e}", command.get_program()));
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(
        output.status.success(),
        "{what} failed with {}: {:?}\n{stderr}",
        output.status,
        command
    );
    stderr
}

/// An `ffmpeg` command that overwrites its output and prints no banner or stats.
pub fn ffmpeg() -> Command {
    let mut command = Command::new("ffmpeg");
    command.args(["-hide_banner", "-nostdin", "-nostats", "-y"]);
    command
}

/// An ffmpeg argv (without the program) as a printable command line, the long lists of allowed
/// demuxers and decoders elided.
pub fn shown_ffmpeg(argv: &[String]) -> String {
    let mut line = String::from("ffmpeg");
    let mut elide = false;
    for a in argv {
        line.push(' ');
        line.push_str(if elide { "..." } else { a });
        elide = a == "-format_whitelist" || a == "-codec_whitelist";
    }
    line
}

/// A 440 Hz mono sine of `seconds`, as a small input for jobs whose content does not matter.
pub fn sine(dest: &Path, seconds: f64) -> PathBuf {
    run(
        ffmpeg()
            .args(["-f", "lavfi", "-i"])
            .arg(format!("sine=frequency=440:duration={seconds}"))
            .arg(dest),
        "ffmpeg sine",
    );
    dest.to_path_buf()
}

/// Stereo 48 kHz pink noise of `seconds` at `amplitude`: long inputs for jobs that must still be
/// running when a test acts on them.
pub fn pink_noise(dest: &Path, seconds: u32, amplitude: f64) -> PathBuf {
    run(
        ffmpeg()
            .args(["-f", "lavfi", "-i"])
            .arg(format!(
                "anoisesrc=color=pink:duration={seconds}:sample_rate=48000:amplitude={amplitude}"
            ))
            .args(["-ac", "2"])
            .arg(dest),
        "ffmpeg pink noise",
    );
    dest.to_path_buf()
}

/// Speech from espeak-ng, as it writes it.
pub fn speech(dest: &Path) -> PathBuf {
    run(
        Command::new("espeak-ng")
            .arg("-w")
            .arg(dest)
            .arg(SPEECH_TEXT),
        "espeak-ng (apt package espeak-ng)",
    );
    dest.to_path_buf()
}

/// `src` with its gain changed so it measures `target` LUFS (±0.5 without clipping, ±1 with).
/// With `clip`, the gain is applied in float and written as s16, so the loud parts clip hard;
/// clipping lowers loudness, so the gain is found by a few measured steps.
pub fn at_loudness(src: &Path, dest: &Path, target: f64, clip: bool) -> PathBuf {
    let mut gain = target - loudness(src).integrated;
    for _ in 0..6 {
        run(
            ffmpeg()
                .arg("-i")
                .arg(src)
                .args(["-af", &format!("volume=volume={gain:.2}dB:precision=float")])
                .args(["-c:a", "pcm_s16le"])
                .arg(dest),
            "ffmpeg gain change",
        );
        let got = loudness(dest).integrated;
        if (got - target).abs() <= 0.3 {
            break;
        }
        gain += target - got;
    }
    let got = loudness(dest);
    let tolerance = if clip { 1.0 } else { 0.5 };
    assert!(
        (got.integrated - target).abs() <= tolerance,
        "could not make {} at {target} LUFS: measured {got:?}",
        dest.display()
    );
    if clip {
        assert!(
            got.true_peak > 0.0,
            "{} should be clipped (true peak above 0 dBTP), measured {got:?}",
            dest.display()
        );
    }
    dest.to_path_buf()
}

/// Stereo 44.1 kHz: A minor chord on sines over quiet pink noise, each side slightly different.
pub fn music(dest: &Path) -> PathBuf {
    let graph = "sine=f=220:d=12:r=44100[a];sine=f=261.63:d=12:r=44100[b];\
                 sine=f=329.63:d=12:r=44100[c];anoisesrc=c=pink:d=12:r=44100:a=0.08:s=7[n];\
                 [a][b][c][n]amix=inputs=4:normalize=0,volume=0.3[m];\
                 [m]aformat=channel_layouts=mono,asplit[l][r];[r]adelay=delays=12[rd];\
                 [l][rd]join=inputs=2:channel_layout=stereo[out]";
    run(
        ffmpeg()
            .args(["-filter_complex", graph, "-map", "[out]"])
            .args(["-t", "12", "-c:a", "pcm_s16le", "-ar", "44100"])
            .arg(dest),
        "ffmpeg music",
    );
    dest.to_path_buf()
}

/// 48 kHz sines, 8 s, one frequency per channel, in `layout` ("mono", "stereo" or "5.1").
pub fn tone(dest: &Path, layout: &str) -> PathBuf {
    let freqs: &[u32] = match layout {
        "mono" => &[440],
        "stereo" => &[440, 550],
        "5.1" => &[440, 550, 660, 80, 330, 770],
        other => panic!("no tone layout {other}"),
    };
    let mut graph = String::new();
    for (i, f) in freqs.iter().enumerate() {
        graph.push_str(&format!(
            "sine=f={f}:d=8:r=48000,volume=0.25,aformat=channel_layouts=mono[s{i}];"
        ));
    }
    for i in 0..freqs.len() {
        graph.push_str(&format!("[s{i}]"));
    }
    if freqs.len() == 1 {
        graph.push_str("anull");
    } else {
        graph.push_str(&format!(
            "join=inputs={}:channel_layout={layout}",
            freqs.len()
        ));
    }
    graph.push_str(&format!(",aformat=channel_layouts={layout}[out]"));
    run(
        ffmpeg()
            .args(["-filter_complex", &graph, "-map", "[out]"])
            .args(["-c:a", "pcm_s16le"])
            .arg(dest),
        "ffmpeg tone",
    );
    dest.to_path_buf()
}

/// A 3 s test pattern, H.264 (MPEG-4 part 2 if libx264 is missing), MP4, no audio.
pub fn video_only(dest: &Path) -> PathBuf {
    let make = |codec: &[&str]| {
        ffmpeg()
            .args([
                "-f",
                "lavfi",
                "-i",
                "testsrc=size=320x240:rate=25:duration=3",
            ])
            .args(codec)
            .args(["-pix_fmt", "yuv420p", "-an"])
            .arg(dest)
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false)
    };
    if !make(&["-c:v", "libx264", "-preset", "ultrafast"]) {
        run(
            ffmpeg()
                .args([
                    "-f",
                    "lavfi",
                    "-i",
                    "testsrc=size=320x240:rate=25:duration=3",
                ])
                .args(["-c:v", "mpeg4", "-pix_fmt", "yuv420p", "-an"])
                .arg(dest),
            "ffmpeg video-only",
        );
    }
    dest.to_path_buf()
}

/// An 8 s 320x240 H.264 clip at 24 fps (testsrc2: fast, sharp motion) with a stereo 440 Hz AAC
/// tone: a video job's input, short enough for 2 cores.
pub fn clip_with_audio(dest: &Path) -> PathBuf {
    run(
        ffmpeg()
            .args([
                "-f",
                "lavfi",
                "-i",
                "testsrc2=size=320x240:rate=24:duration=8",
            ])
            .args([
                "-f",
                "lavfi",
                "-i",
                "sine=frequency=440:sample_rate=48000:duration=8",
            ])
            .args([
                "-c:v",
                "libx264",
                "-preset",
                "ultrafast",
                "-pix_fmt",
                "yuv420p",
            ])
            .args(["-c:a", "aac", "-ac", "2", "-b:a", "96k", "-shortest"])
            .arg(dest),
        "ffmpeg test clip",
    );
    dest.to_path_buf()
}

/// A text file that no demuxer reads, named like audio (the mislabelled upload a user makes).
pub fn not_media(dest: &Path) -> PathBuf {
    let mut text = String::from("Meeting notes, not a recording.\n");
    for i in 0..200 {
        text.push_str(&format!(
            "line {i}: {} {}\n",
            uuid::Uuid::new_v4(),
            uuid::Uuid::new_v4().simple()
        ));
    }
    std::fs::write(dest, text).expect("write the not-media file");
    dest.to_path_buf()
}

/// EBU R128 integrated loudness (LUFS) and true peak (dBTP) as ffmpeg's `ebur128` reports them.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Loudness {
    pub integrated: f64,
    pub true_peak: f64,
}

/// Measures `path` with `ffmpeg -i path -af ebur128=peak=true -f null -` and reads the summary.
pub fn loudness(path: &Path) -> Loudness {
    let stderr = run(
        ffmpeg().arg("-i").arg(path).args([
            "-af",
            "ebur128=peak=true:framelog=verbose",
            "-f",
            "null",
            "-",
        ]),
        &format!("ebur128 measurement of {}", path.display()),
    );
    parse_ebur128_summary(&stderr)
        .unwrap_or_else(|| panic!("no ebur128 summary for {}:\n{stderr}", path.display()))
}

/// Reads `I:` and the true-peak `Peak:` from the summary ffmpeg prints at the end.
pub fn parse_ebur128_summary(stderr: &str) -> Option<Loudness> {
    let summary = &stderr[stderr.rfind("Summary:")?..];
    let value = |label: &str, after: &str| -> Option<f64> {
        let section = &summary[summary.find(after)?..];
        let line = section
            .lines()
            .find(|l| l.trim_start().starts_with(label))?;
        line.trim_start()[label.len()..]
            .split_whitespace()
            .next()?
            .parse()
            .ok()
    };
    Some(Loudness {
        integrated: value("I:", "Integrated loudness:")?,
        true_peak: value("Peak:", "True peak:")?,
    })
}

/// `ffprobe -show_streams -show_format -of json path`.
pub fn probe(path: &Path) -> Value {
    let output = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_streams",
            "-show_format",
            "-of",
            "json",
        ])
        .arg(path)
        .output()
        .unwrap_or_else(|e| panic!("cannot run ffprobe: {e}"));
    assert!(
        output.status.success(),
        "ffprobe {} failed: {}",
        path.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("ffprobe prints JSON")
}

/// The first audio stream of a probe result.
pub fn audio_stream(probe: &Value) -> &Value {
    probe["streams"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["codec_type"] == "audio"))
        .unwrap_or_else(|| panic!("no audio stream in {probe:#}"))
}

/// Sample rate, as ffprobe prints it (a string) turned into a number.
pub fn sample_rate(stream: &Value) -> u64 {
    stream["sample_rate"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no sample_rate in {stream:#}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_summary_not_the_running_values() {
        let stderr = "[Parsed_ebur128_0 @ 0x1] t: 14 TARGET:-23 LUFS M: -25.8 S: -20.1 I: -20.1 LUFS\n\
            [Parsed_ebur128_0 @ 0x1] Summary:\n\n  Integrated loudness:\n    I:         -23.4 LUFS\n\
            \x20   Threshold: -33.6 LUFS\n\n  Loudness range:\n    LRA:         1.0 LU\n\
            \x20   Threshold: -40.4 LUFS\n\n  True peak:\n    Peak:       -1.7 dBFS\n";
        assert_eq!(
            parse_ebur128_summary(stderr),
            Some(Loudness {
                integrated: -23.4,
                true_peak: -1.7
            })
        );
    }
}
