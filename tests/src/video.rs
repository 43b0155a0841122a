//! Video test media made with ffmpeg's lavfi sources, and the checks a video player (or the
//! person deciding whether a player will cope) makes on a result: HLS playlists read the way
//! hls.js and AVPlayer read them, every segment probed with ffprobe, measured bit rates against
//! what the master playlist claims, codec strings against the streams, SSIM between images and a
//! "this frame is not black" test.
//!
//! Every measurement here is made independently of the host, with the same ffmpeg and ffprobe a
//! user has; nothing reads the host's own figures to check them. The checks return `Err` with a
//! reason instead of panicking, so their unit tests can show that each one fails on bad media.
//!
//! Not here: running jobs (that is [`crate::client`]), audio media (that is [`crate::media`]).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::client::Client;
use crate::media::{ffmpeg, run};

// ---------------------------------------------------------------------------------------------
// Sources
// ---------------------------------------------------------------------------------------------

/// How a generated source is encoded: H.264 ultrafast, AAC stereo (when it has audio), MP4.
#[derive(Clone, Debug)]
pub struct Pattern {
    pub width: u32,
    pub height: u32,
    /// As ffmpeg takes it: "25", "30000/1001".
    pub rate: &'static str,
    pub seconds: f64,
    pub audio: bool,
    /// `bt709` or `smpte170m`: written as primaries, transfer and matrix, limited range.
    pub colour: &'static str,
    /// A fixed video bit rate (bps) instead of ultrafast's default quality.
    pub bit_rate: Option<u64>,
}

impl Pattern {
    /// testsrc2 (sharp, fast motion) with a 440 Hz tone, BT.709, at `rate` fps for `seconds`.
    pub fn new(width: u32, height: u32, rate: &'static str, seconds: f64) -> Pattern {
        Pattern {
            width,
            height,
            rate,
            seconds,
            audio: true,
            colour: "bt709",
            bit_rate: None,
        }
    }

    fn video_args(&self, command: &mut Command) {
        command.args([
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-pix_fmt",
            "yuv420p",
        ]);
        command.args([
            "-color_primaries",
            self.colour,
            "-color_trc",
            if self.colour == "smpte170m" {
                "smpte170m"
            } else {
                "bt709"
            },
            "-colorspace",
            self.colour,
            "-color_range",
            "tv",
        ]);
        if let Some(rate) = self.bit_rate {
            command
                .arg("-b:v")
                .arg(rate.to_string())
                .arg("-maxrate")
                .arg(rate.to_string())
                .arg("-bufsize")
                .arg((rate * 2).to_string());
        }
    }

    fn audio_input(&self, command: &mut Command, seconds: f64) {
        if self.audio {
            command.args(["-f", "lavfi", "-i"]).arg(format!(
                "sine=frequency=440:sample_rate=48000:duration={seconds}"
            ));
        }
    }

    fn audio_args(&self, command: &mut Command) {
        if self.audio {
            command.args(["-c:a", "aac", "-ac", "2", "-b:a", "128k", "-shortest"]);
        } else {
            command.arg("-an");
        }
    }

    /// Writes the pattern to `dest` (MP4).
    pub fn make(&self, dest: &Path) -> PathBuf {
        let mut command = ffmpeg();
        command.args(["-f", "lavfi", "-i"]).arg(format!(
            "testsrc2=size={}x{}:rate={}:duration={}",
            self.width, self.height, self.rate, self.seconds
        ));
        self.audio_input(&mut command, self.seconds);
        self.video_args(&mut command);
        self.audio_args(&mut command);
        command.args(["-movflags", "+faststart"]).arg(dest);
        run(&mut command, "ffmpeg test pattern");
        dest.to_path_buf()
    }

    /// `black_s` seconds of black, then the pattern for `self.seconds` (one stream, one GOP
    /// structure, the cut at `black_s`).
    pub fn make_after_black(&self, dest: &Path, black_s: f64) -> PathBuf {
        let (w, h, r, s) = (self.width, self.height, self.rate, self.seconds);
        let mut command = ffmpeg();
        command.args(["-f", "lavfi", "-i"]).arg(format!(
            "color=c=black:size={w}x{h}:rate={r}:duration={black_s}"
        ));
        command
            .args(["-f", "lavfi", "-i"])
            .arg(format!("testsrc2=size={w}x{h}:rate={r}:duration={s}"));
        self.audio_input(&mut command, black_s + s);
        command.args([
            "-filter_complex",
            "[0:v][1:v]concat=n=2:v=1:a=0,format=yuv420p[v]",
            "-map",
            "[v]",
        ]);
        if self.audio {
            command.args(["-map", "2:a"]);
        }
        self.video_args(&mut command);
        self.audio_args(&mut command);
        command.args(["-movflags", "+faststart"]).arg(dest);
        run(&mut command, "ffmpeg black lead-in");
        dest.to_path_buf()
    }

    /// The pattern at twice `self.rate` woven into interlaced frames at `self.rate`, top field
    /// first, coded as interlaced H.264 (`+ildct+ilme`) and flagged TFF.
    pub fn make_interlaced(&self, dest: &Path) -> PathBuf {
        let (w, h, s) = (self.width, self.height, self.seconds);
        let field_rate: f64 = rate_value(self.rate) * 2.0;
        let mut command = ffmpeg();
        command.args(["-f", "lavfi", "-i"]).arg(format!(
            "testsrc2=size={w}x{h}:rate={field_rate}:duration={s}"
        ));
        self.audio_input(&mut command, s);
        command.args(["-vf", "tinterlace=mode=interleave_top,setfield=tff"]);
        self.video_args(&mut command);
        command.args(["-flags", "+ildct+ilme", "-field_order", "tt"]);
        self.audio_args(&mut command);
        command.args(["-movflags", "+faststart"]).arg(dest);
        run(&mut command, "ffmpeg interlaced source");
        dest.to_path_buf()
    }

    /// The pattern with a display matrix of `degrees` (a phone held upright records landscape
    /// pixels and says how to turn them). ffmpeg 5.1 has no `-display_rotation`; the old `rotate`
    /// tag, stream-copied into MP4, becomes a display matrix.
    pub fn make_rotated(&self, dest: &Path, degrees: i32) -> PathBuf {
        let plain = dest.with_extension("plain.mp4");
        self.make(&plain);
        run(
            ffmpeg()
                .arg("-i")
                .arg(&plain)
                .args(["-map", "0", "-c", "copy"])
                .arg("-metadata:s:v:0")
                .arg(format!("rotate={degrees}"))
                .args(["-movflags", "+faststart"])
                .arg(dest),
            "ffmpeg rotation tag",
        );
        let _ = std::fs::remove_file(plain);
        dest.to_path_buf()
    }
}

/// "30000/1001" → 29.97.
pub fn rate_value(rate: &str) -> f64 {
    match rate.split_once('/') {
        Some((n, d)) => {
            let (n, d): (f64, f64) = (n.parse().unwrap(), d.parse().unwrap());
            if d == 0.0 { 0.0 } else { n / d }
        }
        None => rate.parse().unwrap_or(0.0),
    }
}

/// The video sources the issue asks for, each made on first use and then shared by every test
/// of the binary (generation is cheap, the jobs are not; still, each is made once).
pub struct Sources {
    dir: tempfile::TempDir,
    made: [OnceLock<PathBuf>; 9],
}

/// Which source; see [`Sources::path`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// 854x480 at 30000/1001 fps, 6 s, BT.601 (smpte170m) tags.
    P480,
    /// 1280x720 at 25 fps, 6 s.
    P720,
    /// 1920x1080 at 25 fps, 8 s.
    P1080,
    /// 3840x2160 at 25 fps, 3 s.
    P2160,
    /// 1280x720 interlaced, 25 frames (50 fields) a second, TFF, 6 s.
    Interlaced,
    /// 1280x720 pixels with a 90° display matrix (shown 720x1280), 25 fps, 6 s.
    Rotated,
    /// 640x360 at 25 fps: 2 s of black, then 6 s of the pattern.
    BlackLeadIn,
    /// 1280x720 at 25 fps, 6 s, at 300 kbps (a source with fewer bits than any profile's).
    LowBitRate,
    /// 1280x720 at 24 fps, 6 s, no audio.
    Silent,
}

impl Source {
    fn index(self) -> usize {
        self as usize
    }

    /// How it is made.
    pub fn pattern(self) -> Pattern {
        match self {
            Source::P480 => Pattern {
                colour: "smpte170m",
                ..Pattern::new(854, 480, "30000/1001", 6.0)
            },
            Source::P720 | Source::Interlaced | Source::Rotated => {
                Pattern::new(1280, 720, "25", 6.0)
            }
            Source::P1080 => Pattern::new(1920, 1080, "25", 8.0),
            Source::P2160 => Pattern::new(3840, 2160, "25", 3.0),
            Source::BlackLeadIn => Pattern::new(640, 360, "25", 6.0),
            Source::LowBitRate => Pattern {
                bit_rate: Some(300_000),
                ..Pattern::new(1280, 720, "25", 6.0)
            },
            Source::Silent => Pattern {
                audio: false,
                ..Pattern::new(1280, 720, "24", 6.0)
            },
        }
    }

    fn file_name(self) -> &'static str {
        match self {
            Source::P480 => "pattern-480p.mp4",
            Source::P720 => "pattern-720p.mp4",
            Source::P1080 => "pattern-1080p.mp4",
            Source::P2160 => "pattern-2160p.mp4",
            Source::Interlaced => "interlaced-720i.mp4",
            Source::Rotated => "phone-rotated.mp4",
            Source::BlackLeadIn => "black-lead-in.mp4",
            Source::LowBitRate => "low-bit-rate-720p.mp4",
            Source::Silent => "silent-720p.mp4",
        }
    }
}

impl Sources {
    /// The shared set for this test binary.
    pub fn get() -> &'static Sources {
        static SOURCES: OnceLock<Sources> = OnceLock::new();
        SOURCES.get_or_init(|| Sources {
            dir: crate::process::fixture_dir("video"),
            made: Default::default(),
        })
    }

    /// The source's file, made now if this is the first use.
    pub fn path(&self, source: Source) -> &Path {
        self.made[source.index()].get_or_init(|| {
            let dest = self.dir.path().join(source.file_name());
            let pattern = source.pattern();
            let started = Instant::now();
            let path = match source {
                Source::Interlaced => pattern.make_interlaced(&dest),
                Source::Rotated => pattern.make_rotated(&dest, 90),
                Source::BlackLeadIn => pattern.make_after_black(&dest, 2.0),
                _ => pattern.make(&dest),
            };
            eprintln!(
                "[e2e] made {} in {:.1}s ({} KiB)",
                source.file_name(),
                started.elapsed().as_secs_f64(),
                std::fs::metadata(&path)
                    .map(|m| m.len() / 1024)
                    .unwrap_or(0)
            );
            path
        })
    }

    /// A fresh directory for a test's downloads.
    pub fn scratch(&self, label: &str) -> PathBuf {
        crate::media::scratch_in(self.dir.path(), label)
    }
}

// ---------------------------------------------------------------------------------------------
// Probing
// ---------------------------------------------------------------------------------------------

fn ffprobe_json(args: &[&str], path: &Path) -> Result<Value, String> {
    let output = Command::new("ffprobe")
        .args(["-v", "error", "-of", "json"])
        .args(args)
        .arg(path)
        .output()
        .map_err(|e| format!("cannot run ffprobe: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "ffprobe {} failed: {}",
            path.display(),
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    serde_json::from_slice(&output.stdout).map_err(|e| format!("ffprobe printed no JSON: {e}"))
}

/// ffprobe's streams and format, with each stream's side data (display matrix).
pub fn probe(path: &Path) -> Value {
    ffprobe_json(&["-show_streams", "-show_format"], path).unwrap_or_else(|e| panic!("{e}"))
}

/// The first stream of `kind` (`video`, `audio`) in a probe result, if any.
pub fn stream<'a>(probe: &'a Value, kind: &str) -> Option<&'a Value> {
    probe["streams"]
        .as_array()?
        .iter()
        .find(|s| s["codec_type"] == kind && s["disposition"]["attached_pic"] != 1)
}

/// The display matrix's rotation in degrees (0 when there is none).
pub fn rotation(stream: &Value) -> i64 {
    let side = stream["side_data_list"]
        .as_array()
        .and_then(|l| l.iter().find_map(|d| d["rotation"].as_i64()));
    let tag = stream["tags"]["rotate"]
        .as_str()
        .and_then(|r| r.parse::<i64>().ok());
    side.or(tag).unwrap_or(0)
}

/// The size a player shows: coded size, turned by a quarter-turn rotation.
pub fn display_size(stream: &Value) -> (u64, u64) {
    let (w, h) = (
        stream["width"].as_u64().unwrap_or(0),
        stream["height"].as_u64().unwrap_or(0),
    );
    if rotation(stream).rem_euclid(180) == 90 {
        (h, w)
    } else {
        (w, h)
    }
}

/// One packet of a stream, as ffprobe lists it in decode order.
#[derive(Clone, Debug, PartialEq)]
pub struct Packet {
    pub pts: f64,
    pub duration: f64,
    pub size: u64,
    pub keyframe: bool,
}

/// The packets of the first stream of `kind` (`v` or `a`), in decode order.
pub fn packets(path: &Path, kind: &str) -> Result<Vec<Packet>, String> {
    let value = ffprobe_json(
        &[
            "-select_streams",
            &format!("{kind}:0"),
            "-show_entries",
            "packet=pts_time,duration_time,size,flags",
        ],
        path,
    )?;
    let number = |v: &Value| v.as_str().and_then(|s| s.parse::<f64>().ok());
    Ok(value["packets"]
        .as_array()
        .map(|list| {
            list.iter()
                .map(|p| Packet {
                    pts: number(&p["pts_time"]).unwrap_or(f64::NAN),
                    duration: number(&p["duration_time"]).unwrap_or(0.0),
                    size: number(&p["size"]).unwrap_or(0.0) as u64,
                    keyframe: p["flags"].as_str().is_some_and(|f| f.starts_with('K')),
                })
                .collect()
        })
        .unwrap_or_default())
}

/// A stream's bit rate from its packets (bytes × 8 over the presentation span): what a
/// container's header claims does not count.
pub fn measured_bit_rate(path: &Path, kind: &str) -> Result<f64, String> {
    let packets = packets(path, kind)?;
    let bytes: u64 = packets.iter().map(|p| p.size).sum();
    let start = packets.iter().map(|p| p.pts).fold(f64::INFINITY, f64::min);
    let end = packets
        .iter()
        .map(|p| p.pts + p.duration)
        .fold(f64::NEG_INFINITY, f64::max);
    if packets.is_empty() || end <= start {
        return Err(format!(
            "no {kind} packets with times in {}",
            path.display()
        ));
    }
    Ok(bytes as f64 * 8.0 / (end - start))
}

/// The top-level boxes of an ISO BMFF (MP4, MOV) file, in order: `ftyp`, `moov`, `mdat`, ...
pub fn top_level_boxes(path: &Path) -> Result<Vec<String>, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("read {}: {e}", path.display()))?;
    let mut boxes = Vec::new();
    let mut at = 0usize;
    while at + 8 <= bytes.len() {
        let size32 = u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap()) as u64;
        let kind = String::from_utf8_lossy(&bytes[at + 4..at + 8]).into_owned();
        let size = match size32 {
            0 => (bytes.len() - at) as u64,
            1 if at + 16 <= bytes.len() => {
                u64::from_be_bytes(bytes[at + 8..at + 16].try_into().unwrap())
            }
            n => n,
        };
        if size < 8 {
            return Err(format!("box {kind} at {at} has size {size}"));
        }
        boxes.push(kind);
        at = at.saturating_add(size as usize);
    }
    Ok(boxes)
}

/// Whether the movie header comes before the media data (MP4 "faststart": a browser can start
/// playing before it has the whole file).
pub fn moov_before_mdat(path: &Path) -> Result<bool, String> {
    let boxes = top_level_boxes(path)?;
    let moov = boxes.iter().position(|b| b == "moov");
    let mdat = boxes.iter().position(|b| b == "mdat");
    match (moov, mdat) {
        (Some(m), Some(d)) => Ok(m < d),
        _ => Err(format!("no moov or mdat among {boxes:?}")),
    }
}

// ---------------------------------------------------------------------------------------------
// Images
// ---------------------------------------------------------------------------------------------

/// The frame of `video` at `time_s` (accurate seek), scaled to `width`x`height`, as PNG.
pub fn frame_at(video: &Path, time_s: f64, width: u32, height: u32, dest: &Path) -> PathBuf {
    one_frame(
        &["-ss", &format!("{time_s:.3}")],
        video,
        &format!("scale={width}:{height}:flags=bicubic"),
        dest,
    )
}

/// The region `w`x`h` at `x`,`y` of an image (a sprite sheet's tile), as PNG.
pub fn crop(image: &Path, x: u32, y: u32, w: u32, h: u32, dest: &Path) -> PathBuf {
    one_frame(&[], image, &format!("crop={w}:{h}:{x}:{y}"), dest)
}

/// The first frame of `source` (after its input options) through `filter`, written to `dest`.
fn one_frame(input_options: &[&str], source: &Path, filter: &str, dest: &Path) -> PathBuf {
    run(
        ffmpeg()
            .args(input_options)
            .arg("-i")
            .arg(source)
            .args(["-frames:v", "1", "-vf", filter])
            .arg(dest),
        &format!("ffmpeg {filter}"),
    );
    dest.to_path_buf()
}

/// SSIM of the luma of two images (`b` scaled to `a`'s size), ffmpeg's `ssim` filter: 1 for
/// identical pictures, about 0.7 for two frames of testsrc2 half a second apart.
pub fn ssim(a: &Path, b: &Path) -> Result<f64, String> {
    let output = ffmpeg()
        .arg("-i")
        .arg(a)
        .arg("-i")
        .arg(b)
        .args([
            "-lavfi",
            "[0:v]format=gray[a];[1:v][a]scale2ref=flags=bicubic[b][r];[b]format=gray[bg];[r][bg]ssim",
            "-f",
            "null",
            "-",
        ])
        .output()
        .map_err(|e| format!("cannot run ffmpeg: {e}"))?;
    let stderr = String::from_utf8_lossy(&output.stderr);
    if !output.status.success() {
        return Err(format!("ffmpeg ssim failed: {stderr}"));
    }
    parse_ssim(&stderr).ok_or_else(|| format!("no SSIM summary in:\n{stderr}"))
}

/// Reads `All:0.987` from the ssim filter's summary line.
pub fn parse_ssim(stderr: &str) -> Option<f64> {
    let line = stderr.lines().rfind(|l| l.contains("SSIM "))?;
    line.split_whitespace()
        .find_map(|w| w.strip_prefix("All:"))?
        .parse()
        .ok()
}

/// Luma statistics of an image (or a video's first frame) from `signalstats`, 8-bit scale:
/// the average and the 10th and 90th percentiles (steadier than the extremes, which one stray
/// pixel sets).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Luma {
    pub average: f64,
    pub low: f64,
    pub high: f64,
}

impl Luma {
    /// Black or a flat field: dark on average, or (almost) no detail.
    pub fn is_black(&self) -> bool {
        self.average < 32.0 || self.high - self.low < 24.0
    }
}

pub fn luma(image: &Path) -> Result<Luma, String> {
    let output = ffmpeg()
        .arg("-i")
        .arg(image)
        .args([
            "-frames:v",
            "1",
            "-vf",
            "format=yuv444p,signalstats,metadata=print",
            "-f",
            "null",
            "-",
        ])
        .output()
        .map_err(|e| format!("cannot run ffmpeg: {e}"))?;
    let stderr = String::from_utf8_lossy(&output.stderr);
    let value = |key: &str| -> Option<f64> {
        let needle = format!("lavfi.signalstats.{key}=");
        stderr
            .lines()
            .find_map(|l| l.split(&needle).nth(1))?
            .trim()
            .parse()
            .ok()
    };
    match (value("YAVG"), value("YLOW"), value("YHIGH")) {
        (Some(average), Some(low), Some(high)) => Ok(Luma { average, low, high }),
        _ => Err(format!("no signalstats for {}:\n{stderr}", image.display())),
    }
}

// ---------------------------------------------------------------------------------------------
// HLS playlists
// ---------------------------------------------------------------------------------------------

/// One media segment of a media playlist.
#[derive(Clone, Debug, PartialEq)]
pub struct Segment {
    pub duration: f64,
    pub uri: String,
}

/// A media playlist (`index.m3u8` of a rendition).
#[derive(Clone, Debug, PartialEq)]
pub struct MediaPlaylist {
    pub target_duration: u64,
    pub version: Option<u64>,
    /// `#EXT-X-MAP:URI` (an fMP4 init segment).
    pub map: Option<String>,
    pub segments: Vec<Segment>,
    pub ended: bool,
}

impl MediaPlaylist {
    pub fn parse(text: &str) -> Result<MediaPlaylist, String> {
        if !text.starts_with("#EXTM3U") {
            return Err(format!("not a playlist: {text:.80}"));
        }
        let mut target = None;
        let mut version = None;
        let mut map = None;
        let mut segments = Vec::new();
        let mut pending = None;
        let mut ended = false;
        for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
            if let Some(v) = line.strip_prefix("#EXT-X-TARGETDURATION:") {
                target = Some(v.parse().map_err(|e| format!("{line}: {e}"))?);
            } else if let Some(v) = line.strip_prefix("#EXT-X-VERSION:") {
                version = v.parse().ok();
            } else if let Some(v) = line.strip_prefix("#EXT-X-MAP:") {
                map = attributes(v).remove("URI");
            } else if let Some(v) = line.strip_prefix("#EXTINF:") {
                let d = v.split(',').next().unwrap_or("");
                pending = Some(d.parse::<f64>().map_err(|e| format!("{line}: {e}"))?);
            } else if line == "#EXT-X-ENDLIST" {
                ended = true;
            } else if !line.starts_with('#') {
                let duration = pending
                    .take()
                    .ok_or_else(|| format!("segment {line} without #EXTINF"))?;
                segments.push(Segment {
                    duration,
                    uri: line.to_string(),
                });
            }
        }
        Ok(MediaPlaylist {
            target_duration: target.ok_or("no #EXT-X-TARGETDURATION")?,
            version,
            map,
            segments,
            ended,
        })
    }

    /// Where each segment starts on the playlist's timeline (sums of EXTINF).
    pub fn boundaries(&self) -> Vec<f64> {
        let mut at = 0.0;
        self.segments
            .iter()
            .map(|s| {
                let start = at;
                at += s.duration;
                start
            })
            .collect()
    }

    pub fn duration(&self) -> f64 {
        self.segments.iter().map(|s| s.duration).sum()
    }
}

/// The attribute list of a tag (`BANDWIDTH=1,CODECS="a,b"`), quotes removed.
pub fn attributes(list: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut rest = list.trim();
    while !rest.is_empty() {
        let Some((key, after)) = rest.split_once('=') else {
            break;
        };
        let (value, next) = if let Some(quoted) = after.strip_prefix('"') {
            let end = quoted.find('"').unwrap_or(quoted.len());
            let after_quote = quoted.get(end + 1..).unwrap_or("");
            (&quoted[..end], after_quote.trim_start_matches(','))
        } else {
            match after.split_once(',') {
                Some((v, n)) => (v, n),
                None => (after, ""),
            }
        };
        out.insert(key.trim().to_string(), value.to_string());
        rest = next.trim_start();
    }
    out
}

/// One `#EXT-X-STREAM-INF` of a master playlist and the URI after it.
#[derive(Clone, Debug, PartialEq)]
pub struct Variant {
    pub attributes: BTreeMap<String, String>,
    pub uri: String,
}

impl Variant {
    fn number(&self, key: &str) -> Result<u64, String> {
        self.attributes
            .get(key)
            .ok_or_else(|| format!("{}: no {key}", self.uri))?
            .parse()
            .map_err(|e| format!("{}: {key}: {e}", self.uri))
    }

    pub fn bandwidth(&self) -> Result<u64, String> {
        self.number("BANDWIDTH")
    }

    pub fn average_bandwidth(&self) -> Result<u64, String> {
        self.number("AVERAGE-BANDWIDTH")
    }

    pub fn codecs(&self) -> Vec<String> {
        self.attributes
            .get("CODECS")
            .map(|c| c.split(',').map(|s| s.trim().to_string()).collect())
            .unwrap_or_default()
    }

    pub fn resolution(&self) -> Option<(u64, u64)> {
        let (w, h) = self.attributes.get("RESOLUTION")?.split_once('x')?;
        Some((w.parse().ok()?, h.parse().ok()?))
    }
}

/// A master playlist: its variants and its `#EXT-X-MEDIA` renditions.
#[derive(Clone, Debug, PartialEq)]
pub struct MasterPlaylist {
    pub variants: Vec<Variant>,
    pub media: Vec<BTreeMap<String, String>>,
    pub independent_segments: bool,
}

impl MasterPlaylist {
    pub fn parse(text: &str) -> Result<MasterPlaylist, String> {
        if !text.starts_with("#EXTM3U") {
            return Err(format!("not a playlist: {text:.80}"));
        }
        let mut variants = Vec::new();
        let mut media = Vec::new();
        let mut pending = None;
        for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
            if let Some(v) = line.strip_prefix("#EXT-X-STREAM-INF:") {
                pending = Some(attributes(v));
            } else if let Some(v) = line.strip_prefix("#EXT-X-MEDIA:") {
                media.push(attributes(v));
            } else if !line.starts_with('#') {
                let attributes = pending
                    .take()
                    .ok_or_else(|| format!("URI {line} without #EXT-X-STREAM-INF"))?;
                variants.push(Variant {
                    attributes,
                    uri: line.to_string(),
                });
            }
        }
        Ok(MasterPlaylist {
            variants,
            media,
            independent_segments: text.contains("#EXT-X-INDEPENDENT-SEGMENTS"),
        })
    }
}

// ---------------------------------------------------------------------------------------------
// HLS renditions on disk, checked as a player would
// ---------------------------------------------------------------------------------------------

/// A rendition downloaded to `dir`: its playlist and the files it names.
#[derive(Clone, Debug)]
pub struct Rendition {
    pub dir: PathBuf,
    pub playlist: MediaPlaylist,
}

/// How one segment starts, from ffprobe on the init segment followed by that segment.
#[derive(Clone, Debug, PartialEq)]
pub struct SegmentStart {
    pub uri: String,
    /// The first video packet's presentation time (the segment's start on the media timeline).
    pub pts: f64,
    pub keyframe: bool,
}

/// Segment bit rates in bits per second: the highest and the whole rendition's average.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Rates {
    pub peak: f64,
    pub average: f64,
}

impl Rendition {
    /// Reads `dir/index.m3u8`.
    pub fn open(dir: &Path) -> Result<Rendition, String> {
        let path = dir.join("index.m3u8");
        let text =
            std::fs::read_to_string(&path).map_err(|e| format!("read {}: {e}", path.display()))?;
        Ok(Rendition {
            dir: dir.to_path_buf(),
            playlist: MediaPlaylist::parse(&text)?,
        })
    }

    /// The init segment followed by segment `index`: a file ffprobe reads as a whole movie.
    fn joined(&self, index: usize) -> Result<PathBuf, String> {
        let segment = &self.playlist.segments[index];
        let mut bytes = Vec::new();
        if let Some(map) = &self.playlist.map {
            bytes.extend(
                std::fs::read(self.dir.join(map)).map_err(|e| format!("read init {map}: {e}"))?,
            );
        }
        bytes.extend(
            std::fs::read(self.dir.join(&segment.uri))
                .map_err(|e| format!("read {}: {e}", segment.uri))?,
        );
        let dest = std::env::temp_dir().join(format!(
            "mediahost-e2e-segment-{}.mp4",
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::write(&dest, bytes).map_err(|e| format!("write {}: {e}", dest.display()))?;
        Ok(dest)
    }

    /// ffprobe's streams of the init segment plus the first media segment.
    pub fn probe(&self) -> Result<Value, String> {
        let joined = self.joined(0)?;
        let result = ffprobe_json(&["-show_streams"], &joined);
        let _ = std::fs::remove_file(joined);
        result
    }

    /// How every segment starts: its first video packet's time and whether it is a keyframe.
    pub fn segment_starts(&self) -> Result<Vec<SegmentStart>, String> {
        (0..self.playlist.segments.len())
            .map(|i| {
                let joined = self.joined(i)?;
                let packets = packets(&joined, "v");
                let _ = std::fs::remove_file(joined);
                let uri = self.playlist.segments[i].uri.clone();
                let first = packets?
                    .into_iter()
                    .next()
                    .ok_or_else(|| format!("{uri}: no video packet"))?;
                Ok(SegmentStart {
                    uri,
                    pts: first.pts,
                    keyframe: first.keyframe,
                })
            })
            .collect()
    }

    /// Every segment's bytes × 8 / its EXTINF: the peak, and all bytes over all time. Init
    /// segments count in neither (a player fetches one once).
    pub fn rates(&self) -> Result<Rates, String> {
        let (mut peak, mut bits, mut seconds) = (0f64, 0f64, 0f64);
        for segment in &self.playlist.segments {
            let len = std::fs::metadata(self.dir.join(&segment.uri))
                .map_err(|e| format!("{}: {e}", segment.uri))?
                .len() as f64
                * 8.0;
            if segment.duration <= 0.0 {
                return Err(format!("{}: EXTINF {}", segment.uri, segment.duration));
            }
            peak = peak.max(len / segment.duration);
            bits += len;
            seconds += segment.duration;
        }
        if seconds == 0.0 {
            return Err(format!("{}: no segments", self.dir.display()));
        }
        Ok(Rates {
            peak,
            average: bits / seconds,
        })
    }
}

/// Every segment starts with a keyframe (a player switching renditions lands on one).
pub fn check_keyframe_starts(starts: &[SegmentStart]) -> Result<(), String> {
    let bad: Vec<&str> = starts
        .iter()
        .filter(|s| !s.keyframe)
        .map(|s| s.uri.as_str())
        .collect();
    if starts.is_empty() {
        return Err("no segments".into());
    }
    if bad.is_empty() {
        Ok(())
    } else {
        Err(format!("segments not starting with a keyframe: {bad:?}"))
    }
}

/// Segment boundaries are the same in every rendition: the same number of segments, each
/// starting at the same media time (within `tolerance_s`, e.g. half a frame) and with the same
/// EXTINF.
pub fn check_aligned(
    rungs: &[(&str, &Rendition, &[SegmentStart])],
    tolerance_s: f64,
) -> Result<(), String> {
    let Some((first_name, first, first_starts)) = rungs.first() else {
        return Err("no renditions".into());
    };
    for (name, rendition, starts) in &rungs[1..] {
        if starts.len() != first_starts.len() {
            return Err(format!(
                "{name} has {} segments, {first_name} {}",
                starts.len(),
                first_starts.len()
            ));
        }
        for (i, (a, b)) in first_starts.iter().zip(starts.iter()).enumerate() {
            if (a.pts - b.pts).abs() > tolerance_s {
                return Err(format!(
                    "segment {i} starts at {:.3}s in {first_name}, {:.3}s in {name}",
                    a.pts, b.pts
                ));
            }
        }
        let (x, y) = (first.playlist.boundaries(), rendition.playlist.boundaries());
        for (i, (a, b)) in x.iter().zip(y.iter()).enumerate() {
            if (a - b).abs() > tolerance_s {
                return Err(format!(
                    "segment {i}'s EXTINF timeline: {a:.3}s in {first_name}, {b:.3}s in {name}"
                ));
            }
        }
    }
    Ok(())
}

/// No EXTINF over the target duration (rounded, as RFC 8216 4.3.3.1 allows).
pub fn check_target_duration(playlist: &MediaPlaylist) -> Result<(), String> {
    for s in &playlist.segments {
        if s.duration.round() as u64 > playlist.target_duration {
            return Err(format!(
                "{}: EXTINF {} over #EXT-X-TARGETDURATION:{}",
                s.uri, s.duration, playlist.target_duration
            ));
        }
    }
    Ok(())
}

/// How far the master's figures are from the measured ones: (claimed − measured) / measured,
/// for BANDWIDTH (against the peak) and AVERAGE-BANDWIDTH (against the average).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BandwidthDeviation {
    pub bandwidth: f64,
    pub average_bandwidth: f64,
}

/// BANDWIDTH and AVERAGE-BANDWIDTH within `tolerance` (0.10 = 10 %) of what the segments
/// measure: the video rendition's rates plus the audio group's (its highest peak and average,
/// as RFC 8216 asks of a variant whose audio is in a group).
pub fn check_bandwidth(
    variant: &Variant,
    video: Rates,
    audio: Option<Rates>,
    tolerance: f64,
) -> Result<BandwidthDeviation, String> {
    let audio = audio.unwrap_or(Rates {
        peak: 0.0,
        average: 0.0,
    });
    let peak = video.peak + audio.peak;
    let average = video.average + audio.average;
    let deviation = BandwidthDeviation {
        bandwidth: (variant.bandwidth()? as f64 - peak) / peak,
        average_bandwidth: (variant.average_bandwidth()? as f64 - average) / average,
    };
    if deviation.bandwidth.abs() > tolerance || deviation.average_bandwidth.abs() > tolerance {
        return Err(format!(
            "{}: BANDWIDTH {} vs measured peak {peak:.0} ({:+.1} %), AVERAGE-BANDWIDTH {} vs \
             measured average {average:.0} ({:+.1} %)",
            variant.uri,
            variant.attributes["BANDWIDTH"],
            deviation.bandwidth * 100.0,
            variant
                .attributes
                .get("AVERAGE-BANDWIDTH")
                .map_or("-", String::as_str),
            deviation.average_bandwidth * 100.0
        ));
    }
    Ok(deviation)
}

/// H.264 profile_idc for ffprobe's profile name.
fn avc_profile_idc(name: &str) -> Option<u8> {
    Some(match name {
        "Baseline" | "Constrained Baseline" => 66,
        "Main" => 77,
        "Extended" => 88,
        "High" | "Constrained High" | "Progressive High" => 100,
        "High 10" | "High 10 Intra" => 110,
        "High 4:2:2" | "High 4:2:2 Intra" => 122,
        "High 4:4:4 Predictive" | "High 4:4:4 Intra" => 244,
        _ => return None,
    })
}

/// HEVC general_profile_idc for ffprobe's profile name.
fn hevc_profile_idc(name: &str) -> Option<u8> {
    Some(match name {
        "Main" => 1,
        "Main 10" => 2,
        "Main Still Picture" => 3,
        "Rext" => 4,
        _ => return None,
    })
}

/// Whether one RFC 6381 codec string describes `stream` (as ffprobe sees it): `avc1.PPCCLL`
/// with the stream's profile and level, `hvc1.<profile>.<compat>.<tier><level>...` with a
/// `hvc1` sample entry, `mp4a.40.2` for AAC-LC.
pub fn codec_matches(codec: &str, stream: &Value) -> Result<(), String> {
    let name = stream["codec_name"].as_str().unwrap_or("");
    let profile = stream["profile"].as_str().unwrap_or("");
    let level = stream["level"].as_i64().unwrap_or(-1);
    let fail = |why: String| Err(format!("{codec} vs {name} {profile} level {level}: {why}"));
    if let Some(hex) = codec.strip_prefix("avc1.") {
        if name != "h264" {
            return fail("not H.264".into());
        }
        if hex.len() != 6 || u32::from_str_radix(hex, 16).is_err() {
            return fail("not avc1.PPCCLL".into());
        }
        let pp = u8::from_str_radix(&hex[0..2], 16).unwrap();
        let ll = u8::from_str_radix(&hex[4..6], 16).unwrap();
        if Some(pp) != avc_profile_idc(profile) {
            return fail(format!("profile_idc {pp}"));
        }
        if i64::from(ll) != level {
            return fail(format!("level_idc {ll}"));
        }
        Ok(())
    } else if let Some(rest) = codec
        .strip_prefix("hvc1.")
        .or_else(|| codec.strip_prefix("hev1."))
    {
        if name != "hevc" {
            return fail("not HEVC".into());
        }
        let entry = &codec[..4];
        if stream["codec_tag_string"].as_str() != Some(entry) {
            return fail(format!(
                "sample entry is {}",
                stream["codec_tag_string"].as_str().unwrap_or("?")
            ));
        }
        let parts: Vec<&str> = rest.split('.').collect();
        if parts.len() < 3 {
            return fail("too few fields".into());
        }
        let space_profile = parts[0].trim_start_matches(['A', 'B', 'C']);
        if space_profile.parse::<u8>().ok() != hevc_profile_idc(profile) {
            return fail(format!("profile {}", parts[0]));
        }
        let tier_level = parts[2];
        if !tier_level.starts_with(['L', 'H']) || tier_level[1..].parse::<i64>().ok() != Some(level)
        {
            return fail(format!("tier and level {tier_level}"));
        }
        Ok(())
    } else if codec == "mp4a.40.2" {
        if name == "aac" && profile == "LC" {
            Ok(())
        } else {
            fail("not AAC-LC".into())
        }
    } else {
        fail("unknown codec string".into())
    }
}

/// Every stream of `streams` (video and audio) is named by exactly one of `codecs`, and every
/// codec names one of them.
pub fn check_codecs(codecs: &[String], streams: &[&Value]) -> Result<(), String> {
    if codecs.len() != streams.len() {
        return Err(format!(
            "CODECS {codecs:?} names {} codecs for {} streams",
            codecs.len(),
            streams.len()
        ));
    }
    for stream in streams {
        let errors: Vec<String> = codecs
            .iter()
            .filter_map(|c| codec_matches(c, stream).err())
            .collect();
        if errors.len() == codecs.len() {
            return Err(errors.join("; "));
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Jobs with video outputs
// ---------------------------------------------------------------------------------------------

/// Video jobs take longer than audio ones on 2 cores; this bounds one.
pub const VIDEO_JOB_TIMEOUT: Duration = Duration::from_secs(300);

/// Submits a job and polls it until it is terminal (at most [`VIDEO_JOB_TIMEOUT`]).
pub async fn run_job(client: &Client, body: &Value) -> Value {
    run_job_watching(client, body).await.0
}

/// Like [`run_job`]; also returns every output's states and progress as the polls saw them
/// while the job ran (`output_progress`), by output name, repeats left out.
pub async fn run_job_watching(
    client: &Client,
    body: &Value,
) -> (Value, BTreeMap<String, Vec<(String, f64)>>) {
    let id = client.submit_ok(body).await;
    let deadline = Instant::now() + VIDEO_JOB_TIMEOUT;
    let mut seen: BTreeMap<String, Vec<(String, f64)>> = BTreeMap::new();
    loop {
        let job = client.job(&id).await;
        if let Some(outputs) = job["output_progress"].as_object() {
            for (name, p) in outputs {
                let entry = (
                    p["state"].as_str().unwrap_or_default().to_string(),
                    p["progress"].as_f64().unwrap_or(f64::NAN),
                );
                let list = seen.entry(name.clone()).or_default();
                if list.last() != Some(&entry) {
                    list.push(entry);
                }
            }
        }
        if matches!(
            job["state"].as_str(),
            Some("COMPLETED" | "FAILED" | "DEAD" | "CANCELLED")
        ) {
            return (job, seen);
        }
        assert!(
            Instant::now() < deadline,
            "job {id} not finished after {}s:\n{job:#}",
            VIDEO_JOB_TIMEOUT.as_secs()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A job body for `preset` (any 1.x) on one input with `params`.
pub fn job_body(preset: &str, input: &str, params: Value) -> Value {
    serde_json::json!({
        "preset": preset, "version": "^1", "inputs": {"main": input}, "params": params,
    })
}

/// Runs a job that must fail with the preset's refusal `code`.
pub async fn expect_refusal(client: &Client, body: &Value, code: &str) -> Value {
    let job = run_job(client, body).await;
    assert_eq!(job["state"], "FAILED", "{job:#}");
    assert_eq!(job["error"]["code"], "PRESET_REFUSED", "{job:#}");
    let message = job["error"]["message"].as_str().unwrap_or("");
    assert!(message.contains(code), "the refusal names {code}: {job:#}");
    job
}

/// GETs a URL as text (a playlist, a WebVTT or JSON document).
pub async fn get_text(client: &Client, url: &str) -> String {
    let resp = client
        .http()
        .get(url)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    assert!(resp.status().is_success(), "GET {url}: {}", resp.status());
    resp.text().await.expect("a text body")
}

/// Decodes every stream of `path` (a file or a playlist) to nowhere, as a player would:
/// `Err` with ffmpeg's complaints if it fails or says anything at level error.
pub fn play(path: &Path) -> Result<(), String> {
    let output = ffmpeg()
        .args(["-v", "error", "-i"])
        .arg(path)
        .args(["-map", "0", "-f", "null", "-"])
        .output()
        .map_err(|e| format!("cannot run ffmpeg: {e}"))?;
    let stderr = String::from_utf8_lossy(&output.stderr);
    if output.status.success() && stderr.trim().is_empty() {
        Ok(())
    } else {
        Err(format!("{} does not play: {stderr}", path.display()))
    }
}

/// The ffmpeg command lines of a job's steps, from its log (`step 'name': ffmpeg ...`);
/// measurement passes (analyses) are not steps.
pub async fn ffmpeg_steps(client: &Client, job: &Value) -> Vec<String> {
    let id = job["id"].as_str().expect("job id");
    let logs = client.get_json(&format!("/v1/jobs/{id}/logs")).await;
    logs["logs"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|entry| entry["source"] == "ffmpeg")
        .filter_map(|entry| entry["message"].as_str())
        .filter(|m| m.starts_with("step '") && m.contains(": ffmpeg "))
        .map(str::to_string)
        .collect()
}

/// Runs a job and asserts it COMPLETED without error.
pub async fn run_job_ok(client: &Client, body: &Value) -> Value {
    let job = run_job(client, body).await;
    crate::client::assert_completed(&job);
    job
}

/// The output named `name` of a job record.
pub fn output<'a>(job: &'a Value, name: &str) -> &'a Value {
    job["outputs"]
        .as_array()
        .and_then(|o| o.iter().find(|o| o["name"] == name))
        .unwrap_or_else(|| panic!("no output '{name}':\n{job:#}"))
}

/// The names of a job's outputs.
pub fn output_names(job: &Value) -> Vec<String> {
    job["outputs"]
        .as_array()
        .map(|o| {
            o.iter()
                .filter_map(|o| o["name"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// Downloads every object of the job's completed outputs into `dir`, keyed by the path after
/// `jobs/<id>/` (`720p/index.m3u8`, `master.m3u8`), so the playlists' relative URIs resolve.
pub async fn download_objects(client: &Client, job: &Value, dir: &Path) {
    let id = job["id"].as_str().expect("job id");
    for output in job["outputs"].as_array().into_iter().flatten() {
        if output["state"] != "COMPLETED" {
            continue;
        }
        let objects: Vec<Value> = match output["objects"].as_array() {
            Some(list) if !list.is_empty() => list.clone(),
            _ => vec![serde_json::json!({
                "key": output["uri"].as_str().unwrap_or_default(),
                "download_url": output["download_url"],
            })],
        };
        for object in objects {
            let key = object["key"].as_str().unwrap_or_default();
            let relative = key
                .split_once(&format!("jobs/{id}/"))
                .map(|(_, r)| r)
                .unwrap_or_else(|| key.rsplit('/').next().unwrap_or(key));
            let url = object["download_url"]
                .as_str()
                .unwrap_or_else(|| panic!("object without download_url: {output:#}"));
            let dest = dir.join(relative);
            std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
            client.download(url, &dest).await;
        }
    }
}

/// Every object the job stored under the local storage's `objects/jobs/<id>/` is older than (or
/// as old as) its master playlist, the job's manifest aside; returns how many were checked.
pub fn check_master_stored_last(
    data_dir: &Path,
    job: &Value,
    master: &str,
) -> Result<usize, String> {
    let root = data_dir
        .join("objects/jobs")
        .join(job["id"].as_str().unwrap_or_default());
    let modified = |p: &Path| {
        std::fs::metadata(p)
            .and_then(|m| m.modified())
            .map_err(|e| format!("{}: {e}", p.display()))
    };
    let master_time = modified(&root.join(master))?;
    let mut pending = vec![root.clone()];
    let mut seen = 0;
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir)
            .map_err(|e| e.to_string())?
            .flatten()
        {
            let path = entry.path();
            if path.is_dir() {
                pending.push(path);
            } else if !path.ends_with("manifest.json") && !path.ends_with(master) {
                seen += 1;
                if modified(&path)? > master_time {
                    return Err(format!(
                        "{} was stored after the master playlist",
                        path.display()
                    ));
                }
            }
        }
    }
    Ok(seen)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(label: &str) -> PathBuf {
        Sources::get().scratch(label)
    }

    /// One second of the 25 fps pattern at `size`, encoded with `codec` args, into `path`.
    fn second_of_pattern(path: &Path, size: &str, codec: &[&str]) {
        run(
            ffmpeg()
                .args(["-f", "lavfi", "-i"])
                .arg(format!("testsrc2=size={size}:rate=25:duration=1"))
                .args(codec)
                .arg(path),
            "ffmpeg: one second of the pattern",
        );
    }

    /// Two fMP4 renditions of one 6 s 320x180 pattern with audio in its own rendition, by
    /// ffmpeg's hls muxer, keyframes every `gop` frames (25 fps). With `split_by_time`, segments
    /// are cut on time, keyframe or not.
    fn ladder(dir: &Path, gops: [u32; 2], split_by_time: bool) -> [Rendition; 3] {
        let source = Pattern::new(320, 180, "25", 6.0).make(&dir.join("source.mp4"));
        let mut command = ffmpeg();
        command
            .arg("-i")
            .arg(&source)
            .args(["-filter_complex", "[0:v]split=2[x][y];[y]scale=160:90[s]"]);
        let hls = |c: &mut Command, name: &str| {
            c.args(["-f", "hls", "-hls_time", "2", "-hls_playlist_type", "vod"])
                .args([
                    "-hls_segment_type",
                    "fmp4",
                    "-hls_fmp4_init_filename",
                    "init.mp4",
                ]);
            if split_by_time {
                c.args(["-hls_flags", "split_by_time"]);
            }
            std::fs::create_dir_all(dir.join(name)).unwrap();
            c.arg("-hls_segment_filename")
                .arg(dir.join(name).join("%04d.m4s"))
                .arg(dir.join(name).join("index.m3u8"));
        };
        for (label, gop, bit_rate) in [("[x]", gops[0], "600k"), ("[s]", gops[1], "200k")] {
            command.args(["-map", label, "-c:v", "libx264", "-preset", "veryfast"]);
            command.args(["-profile:v", "high", "-b:v", bit_rate, "-sc_threshold", "0"]);
            command.args(["-g", &gop.to_string(), "-keyint_min", &gop.to_string()]);
            hls(&mut command, if label == "[x]" { "big" } else { "small" });
        }
        command.args(["-map", "0:a", "-c:a", "aac", "-b:a", "96k"]);
        hls(&mut command, "audio");
        run(&mut command, "ffmpeg test ladder");
        ["big", "small", "audio"].map(|n| Rendition::open(&dir.join(n)).unwrap())
    }

    #[test]
    fn parses_playlists_with_quoted_commas() {
        let master = "#EXTM3U\n#EXT-X-INDEPENDENT-SEGMENTS\n\
            #EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"audio\",NAME=\"audio\",URI=\"audio/index.m3u8\"\n\
            #EXT-X-STREAM-INF:BANDWIDTH=1200,AVERAGE-BANDWIDTH=900,CODECS=\"avc1.64001f,mp4a.40.2\",RESOLUTION=1280x720,FRAME-RATE=25.000,AUDIO=\"audio\"\n\
            720p/index.m3u8\n";
        let m = MasterPlaylist::parse(master).unwrap();
        assert!(m.independent_segments);
        assert_eq!(m.media[0]["URI"], "audio/index.m3u8");
        let v = &m.variants[0];
        assert_eq!(v.uri, "720p/index.m3u8");
        assert_eq!(v.codecs(), vec!["avc1.64001f", "mp4a.40.2"]);
        assert_eq!(v.bandwidth(), Ok(1200));
        assert_eq!(v.average_bandwidth(), Ok(900));
        assert_eq!(v.resolution(), Some((1280, 720)));
        assert_eq!(v.attributes["AUDIO"], "audio");

        let media = "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:4\n#EXT-X-MAP:URI=\"init.mp4\"\n\
            #EXTINF:4.000000,\n0000.m4s\n#EXTINF:2.5,\n0001.m4s\n#EXT-X-ENDLIST\n";
        let p = MediaPlaylist::parse(media).unwrap();
        assert_eq!(p.map.as_deref(), Some("init.mp4"));
        assert_eq!(p.boundaries(), vec![0.0, 4.0]);
        assert!(p.ended && p.version == Some(7));
        assert!(check_target_duration(&p).is_ok());
        let long = media.replace("#EXTINF:2.5", "#EXTINF:4.6");
        assert!(check_target_duration(&MediaPlaylist::parse(&long).unwrap()).is_err());
    }

    #[test]
    fn aligned_keyframes_pass_and_misaligned_ones_fail() {
        let d = dir("aligned");
        let [big, small, audio] = ladder(&d, [50, 50], false);
        let (a, b) = (
            big.segment_starts().unwrap(),
            small.segment_starts().unwrap(),
        );
        assert_eq!(a.len(), 3, "{a:?}");
        check_keyframe_starts(&a).unwrap();
        check_keyframe_starts(&b).unwrap();
        check_aligned(&[("big", &big, &a), ("small", &small, &b)], 0.02).unwrap();
        check_target_duration(&big.playlist).unwrap();
        assert!(audio.rates().unwrap().average > 50_000.0);

        // Keyframes every 1.4 s and every 2 s: the muxer cuts at different times.
        let d = dir("misaligned");
        let [big, small, _] = ladder(&d, [35, 50], false);
        let (a, b) = (
            big.segment_starts().unwrap(),
            small.segment_starts().unwrap(),
        );
        check_keyframe_starts(&a).unwrap();
        let why = check_aligned(&[("big", &big, &a), ("small", &small, &b)], 0.02).unwrap_err();
        assert!(why.contains("segment"), "{why}");

        // Cut on time with keyframes every 3 s: some segments start mid-GOP.
        let d = dir("split-by-time");
        let [big, _, _] = ladder(&d, [75, 75], true);
        let starts = big.segment_starts().unwrap();
        let why = check_keyframe_starts(&starts).unwrap_err();
        assert!(why.contains("0001.m4s"), "{why}: {starts:?}");
    }

    #[test]
    fn bandwidth_and_codecs_are_checked_against_the_segments() {
        let d = dir("bandwidth");
        let [big, small, audio] = ladder(&d, [50, 50], false);
        let (rates, audio_rates) = (big.rates().unwrap(), audio.rates().unwrap());
        assert!(rates.peak >= rates.average);
        // The bit rate asked for, within what ultrafast makes of 6 s.
        assert!(
            (300_000.0..1_200_000.0).contains(&rates.average),
            "{rates:?}"
        );
        let variant = |bandwidth: f64, average: f64| Variant {
            attributes: BTreeMap::from([
                ("BANDWIDTH".to_string(), format!("{bandwidth:.0}")),
                ("AVERAGE-BANDWIDTH".to_string(), format!("{average:.0}")),
            ]),
            uri: "big/index.m3u8".into(),
        };
        let honest = variant(
            rates.peak + audio_rates.peak,
            rates.average + audio_rates.average,
        );
        let got = check_bandwidth(&honest, rates, Some(audio_rates), 0.10).unwrap();
        assert!(got.bandwidth.abs() < 1e-3, "{got:?}");
        // Audio left out of the figures, or the nominal rate stated: off by more than 10 %.
        let without_audio = variant(rates.peak, rates.average);
        assert!(check_bandwidth(&without_audio, rates, Some(audio_rates), 0.10).is_err());
        let inflated = variant(
            (rates.peak + audio_rates.peak) * 1.15,
            rates.average + audio_rates.average,
        );
        assert!(check_bandwidth(&inflated, rates, Some(audio_rates), 0.10).is_err());

        let probe = big.probe().unwrap();
        let video = stream(&probe, "video").unwrap();
        assert_eq!(video["profile"], "High");
        let level = video["level"].as_i64().unwrap();
        let good = format!("avc1.6400{level:02x}");
        let audio_probe = audio.probe().unwrap();
        let aac = stream(&audio_probe, "audio").unwrap();
        check_codecs(&[good.clone(), "mp4a.40.2".into()], &[video, aac]).unwrap();
        for wrong in [
            format!("avc1.4d40{level:02x}"),
            format!("avc1.6400{:02x}", level + 1),
            "hvc1.1.6.L93.90".into(),
        ] {
            assert!(
                check_codecs(&[wrong.clone(), "mp4a.40.2".into()], &[video, aac]).is_err(),
                "{wrong} passed"
            );
        }
        assert!(check_codecs(std::slice::from_ref(&good), &[video, aac]).is_err());
        assert!(codec_matches("mp4a.40.5", aac).is_err());
        let small_probe = small.probe().unwrap();
        let small_video = stream(&small_probe, "video").unwrap();
        assert!(
            small_video["width"] == 160 && small_video["height"] == 90,
            "{small_video:#}"
        );
    }

    #[test]
    fn hevc_codec_strings_need_the_hvc1_entry_profile_and_level() {
        let d = dir("hevc");
        let path = d.join("hevc.mp4");
        second_of_pattern(
            &path,
            "320x180",
            &[
                "-c:v",
                "libx265",
                "-preset",
                "ultrafast",
                "-tag:v",
                "hvc1",
                "-x265-params",
                "log-level=error",
            ],
        );
        let probe = probe(&path);
        let video = stream(&probe, "video").unwrap();
        let level = video["level"].as_i64().unwrap();
        codec_matches(&format!("hvc1.1.6.L{level}.90"), video).unwrap();
        assert!(codec_matches(&format!("hev1.1.6.L{level}.90"), video).is_err());
        assert!(codec_matches(&format!("hvc1.2.4.L{level}.90"), video).is_err());
        assert!(codec_matches(&format!("hvc1.1.6.L{}.90", level + 3), video).is_err());
        assert!(codec_matches("avc1.64001f", video).is_err());
    }

    #[test]
    fn ssim_tells_a_frame_from_its_neighbours_and_black_from_a_picture() {
        let d = dir("ssim");
        let video = Pattern::new(640, 360, "25", 4.0).make(&d.join("v.mp4"));
        let at = |t: f64, name: &str| frame_at(&video, t, 160, 90, &d.join(name));
        let a = at(2.0, "a.png");
        let same_jpeg = d.join("a.jpg");
        run(
            ffmpeg()
                .arg("-i")
                .arg(&a)
                .args(["-q:v", "3"])
                .arg(&same_jpeg),
            "jpeg",
        );
        let later = at(2.5, "b.png");
        let big = frame_at(&video, 2.0, 640, 360, &d.join("big.png"));
        let same = ssim(&a, &same_jpeg).unwrap();
        let scaled = ssim(&a, &big).unwrap();
        let other = ssim(&a, &later).unwrap();
        assert!(same > 0.95, "the frame vs its JPEG: {same}");
        assert!(scaled > 0.9, "the frame vs itself at 640x360: {scaled}");
        assert!(other < 0.85, "frames 0.5 s apart: {other}");

        assert!(!luma(&a).unwrap().is_black(), "{:?}", luma(&a));
        let black = Pattern::new(160, 90, "25", 1.0).make_after_black(&d.join("black.mp4"), 2.0);
        let first = frame_at(&black, 0.5, 160, 90, &d.join("black.png"));
        assert!(luma(&first).unwrap().is_black(), "{:?}", luma(&first));
    }

    #[test]
    fn the_sources_are_what_they_claim() {
        let sources = Sources::get();
        let interlaced = sources.path(Source::Interlaced);
        let info = probe(interlaced);
        let video = stream(&info, "video").unwrap();
        assert_eq!(video["field_order"], "tt", "{video:#}");
        let idet = run(
            ffmpeg()
                .arg("-i")
                .arg(interlaced)
                .args(["-t", "4", "-vf", "idet", "-f", "null", "-"]),
            "idet",
        );
        let line = idet
            .lines()
            .rfind(|l| l.contains("Multi frame detection"))
            .unwrap();
        let count = |key: &str| -> u64 {
            let words: Vec<&str> = line.split_whitespace().collect();
            let at = words.iter().position(|w| *w == key).unwrap();
            words[at + 1].parse().unwrap()
        };
        // The host's verdict needs most frames interlaced and ≥ 80 % of those in one order.
        let (tff, bff, progressive) = (count("TFF:"), count("BFF:"), count("Progressive:"));
        assert!(tff * 5 >= (tff + bff) * 4 && tff > progressive, "{line}");

        let rotated = probe(sources.path(Source::Rotated));
        let video = stream(&rotated, "video").unwrap();
        assert_eq!(rotation(video).abs(), 90, "{video:#}");
        assert_eq!(display_size(video), (720, 1280));

        let p480 = probe(sources.path(Source::P480));
        let video = stream(&p480, "video").unwrap();
        assert_eq!(video["r_frame_rate"], "30000/1001");
        assert_eq!(video["color_primaries"], "smpte170m");
        assert!(stream(&p480, "audio").is_some());

        let low = sources.path(Source::LowBitRate);
        let rate = measured_bit_rate(low, "v").unwrap();
        assert!((200_000.0..450_000.0).contains(&rate), "{rate}");
        assert!(moov_before_mdat(low).unwrap());
    }

    #[test]
    fn faststart_is_read_from_the_box_order() {
        let d = dir("faststart");
        let plain = d.join("plain.mp4");
        second_of_pattern(
            &plain,
            "160x90",
            &["-c:v", "libx264", "-preset", "ultrafast"],
        );
        assert!(!moov_before_mdat(&plain).unwrap());
        assert_eq!(top_level_boxes(&plain).unwrap()[0], "ftyp");
    }
}
