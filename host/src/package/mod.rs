//! The master playlist of an HLS package, written by the host from what its renditions really
//! hold, once every rendition's playlist and segments are on disk.
//!
//! ffmpeg 5.1's own master playlist (`-master_pl_name`) states nominal bit rates and lacks
//! AVERAGE-BANDWIDTH and FRAME-RATE, which Apple's HLS authoring rules require. Here:
//! - **BANDWIDTH** is the peak media-segment bit rate (each segment's bytes × 8 / its EXTINF
//!   duration, the highest over the rendition), plus, when the variant uses the audio group,
//!   the highest peak among the group's renditions (any of them may be the one played).
//! - **AVERAGE-BANDWIDTH** is all media segments' bytes × 8 / their total duration, plus the
//!   highest average in the audio group. Init segments count in neither: they are fetched once,
//!   not per segment (Apple's validator measures media segments too).
//! - **CODECS** are read from the bitstream (see [`codecs`]), the variant's own and its audio
//!   group's; **RESOLUTION** and **FRAME-RATE** (3 decimals) from the rendition's probed video
//!   stream.
//! - **EXT-X-INDEPENDENT-SEGMENTS** holds because ffmpeg's hls muxer cuts segments only at key
//!   frames; **EXT-X-VERSION** is the highest its media playlists declare (7 for fMP4).
//!
//! Not here: storing the files (the worker publishes the master last, after the renditions),
//! or which renditions a plan may group (that is [`crate::plan::validate`]).

pub mod codecs;
pub mod playlist;

use std::path::PathBuf;

use serde::Serialize;

use crate::error::{ErrorCode, JobError};
use crate::model;

/// Every rendition's media playlist, in its own directory.
pub const MEDIA_PLAYLIST: &str = "index.m3u8";
/// The audio group's id in the master.
pub const AUDIO_GROUP: &str = "audio";

/// Why a master playlist could not be written.
#[derive(Debug, thiserror::Error)]
pub enum PackageError {
    /// The package names an output that is not one of the renditions given.
    #[error("the package names rendition '{0}', which was not produced")]
    Missing(String),
    /// A rendition's files are not what an HLS rendition must be (ffmpeg wrote something else).
    #[error("a rendition is not a readable HLS rendition: {0}")]
    Rendition(String),
    /// A codec, name or language the master cannot carry: the plan's to change.
    #[error("{0}")]
    Refused(String),
}

impl PackageError {
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::Missing(_) => ErrorCode::Internal,
            Self::Rendition(_) => ErrorCode::FfmpegFailed,
            Self::Refused(_) => ErrorCode::PlanRejected,
        }
    }
}

impl From<PackageError> for JobError {
    fn from(e: PackageError) -> Self {
        JobError::new(e.code(), "package", e.to_string())
    }
}

/// One rendition of a package, as it lies on disk.
#[derive(Debug, Clone)]
pub struct Rendition {
    /// The output's role, as the package names it; also its directory's name in the master's
    /// URIs (`<name>/index.m3u8`).
    pub name: String,
    /// The directory holding [`MEDIA_PLAYLIST`] and the files it names.
    pub dir: PathBuf,
    /// ffprobe's view of its streams (its init segment followed by a media segment, or a TS
    /// segment): RESOLUTION, FRAME-RATE and CHANNELS come from here.
    pub streams: Vec<model::StreamInfo>,
}

/// What the master says of one variant, for the job record.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VariantSummary {
    pub name: String,
    pub bandwidth: u64,
    pub average_bandwidth: u64,
    pub codecs: String,
    pub resolution: Option<(u32, u32)>,
    pub frame_rate: Option<f64>,
}

/// A written master playlist and the figures it states.
#[derive(Debug, Clone, PartialEq)]
pub struct Master {
    pub text: String,
    pub variants: Vec<VariantSummary>,
}

/// Writes to `into` the file a rendition's streams are probed from, for [`Rendition::streams`]
/// (e.g. with `media::probe::probe_written`): for fMP4 its init segment followed by its first
/// media segment (an init segment alone has no samples, and ffprobe then reports the track's
/// timescale as its frame rate), for MPEG-TS a copy of its first segment.
pub fn probe_sample(dir: &std::path::Path, into: &std::path::Path) -> Result<(), PackageError> {
    let list = playlist::read(dir)?;
    let mut parts = Vec::new();
    if let Some(init) = &list.init {
        parts.push(init.as_str());
    }
    parts.push(&list.segments[0].uri);
    let mut sample = Vec::new();
    for uri in parts {
        playlist::file_size(dir, uri)?;
        let bytes = std::fs::read(playlist::resolve(dir, uri)?)
            .map_err(|e| PackageError::Rendition(format!("'{uri}': {e}")))?;
        sample.extend_from_slice(&bytes);
    }
    std::fs::write(into, sample)
        .map_err(|e| PackageError::Rendition(format!("writing its probe sample: {e}")))
}

/// What was measured of one rendition.
struct Measured {
    version: u32,
    rates: playlist::Rates,
    codecs: Vec<String>,
}

fn measure(r: &Rendition) -> Result<Measured, PackageError> {
    let in_rendition = |e: PackageError| match e {
        PackageError::Rendition(why) => PackageError::Rendition(format!("'{}': {why}", r.name)),
        PackageError::Refused(why) => {
            PackageError::Refused(format!("rendition '{}': {why}", r.name))
        }
        other => other,
    };
    let list = playlist::read(&r.dir).map_err(in_rendition)?;
    let rates = playlist::rates(&r.dir, &list).map_err(in_rendition)?;
    let codecs = match &list.init {
        Some(init) => codecs::from_mp4(&read_head(r, init)?),
        None => codecs::from_ts(&read_head(r, &list.segments[0].uri)?),
    }
    .map_err(in_rendition)?;
    Ok(Measured {
        version: list.version,
        rates,
        codecs,
    })
}

/// The first [`codecs::MAX_SCAN_BYTES`] of a file of the rendition.
fn read_head(r: &Rendition, uri: &str) -> Result<Vec<u8>, PackageError> {
    use std::io::Read;
    playlist::file_size(&r.dir, uri)?;
    let mut head = Vec::new();
    std::fs::File::open(playlist::resolve(&r.dir, uri)?)
        .and_then(|f| f.take(codecs::MAX_SCAN_BYTES as u64).read_to_end(&mut head))
        .map_err(|e| PackageError::Rendition(format!("'{}': '{uri}': {e}", r.name)))?;
    Ok(head)
}

/// A value for a quoted-string attribute: HLS has no escapes, so `"` and line breaks are
/// refused.
fn quoted(what: &str, value: &str) -> Result<String, PackageError> {
    if value.is_empty() || value.contains(['"', '\r', '\n']) {
        return Err(PackageError::Refused(format!(
            "{what} '{value}' cannot be written in a playlist: it must be non-empty, without \
             quotes or line breaks"
        )));
    }
    Ok(format!("\"{value}\""))
}

fn video(r: &Rendition) -> Option<&model::VideoInfo> {
    r.streams.iter().find_map(|s| match &s.detail {
        model::StreamDetail::Video(v) if !s.disposition.attached_pic => Some(v),
        _ => None,
    })
}

fn channels(r: &Rendition) -> Option<u32> {
    r.streams.iter().find_map(|s| match &s.detail {
        model::StreamDetail::Audio(a) if a.channels > 0 => Some(a.channels),
        _ => None,
    })
}

/// Writes the master playlist of `package` from its `renditions` (every variant and audio
/// rendition it names, in any order; others are ignored). Reads only the files on disk: the
/// media playlists, segment sizes, and the init segment or first TS segment for codecs.
pub fn master_playlist(
    package: &model::HlsPackage,
    renditions: &[Rendition],
) -> Result<Master, PackageError> {
    let find = |name: &str| {
        renditions
            .iter()
            .find(|r| r.name == name)
            .ok_or_else(|| PackageError::Missing(name.to_owned()))
    };
    let mut version = 1;
    let mut lines = Vec::new();

    let mut audio_peak = 0;
    let mut audio_average = 0;
    let mut audio_codecs: Vec<String> = Vec::new();
    for (i, a) in package.audio.iter().enumerate() {
        let r = find(&a.output)?;
        let m = measure(r)?;
        version = version.max(m.version);
        audio_peak = audio_peak.max(m.rates.peak_bps);
        audio_average = audio_average.max(m.rates.average_bps);
        for c in m.codecs {
            if !audio_codecs.contains(&c) {
                audio_codecs.push(c);
            }
        }
        let mut line = format!(
            "#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"{AUDIO_GROUP}\",NAME={}",
            quoted("the audio label", &a.label)?
        );
        if let Some(lang) = &a.language {
            line.push_str(&format!(",LANGUAGE={}", quoted("the language", lang)?));
        }
        if let Some(n) = channels(r) {
            line.push_str(&format!(",CHANNELS=\"{n}\""));
        }
        let default = if i == 0 { "YES" } else { "NO" };
        line.push_str(&format!(
            ",DEFAULT={default},AUTOSELECT=YES,URI={}",
            quoted("the rendition", &format!("{}/{MEDIA_PLAYLIST}", r.name))?
        ));
        lines.push(line);
    }

    let mut variants = Vec::new();
    let grouped = !package.audio.is_empty();
    for name in &package.variants {
        let r = find(name)?;
        let m = measure(r)?;
        version = version.max(m.version);
        let mut codecs = m.codecs;
        let (mut bandwidth, mut average) = (m.rates.peak_bps, m.rates.average_bps);
        if grouped {
            bandwidth += audio_peak;
            average += audio_average;
            for c in &audio_codecs {
                if !codecs.contains(c) {
                    codecs.push(c.clone());
                }
            }
        }
        let v = video(r);
        let resolution = v
            .filter(|v| v.width > 0 && v.height > 0)
            .map(|v| (v.width, v.height));
        let frame_rate = v
            .and_then(|v| v.average_frame_rate.or(v.frame_rate))
            .filter(|f| f.num > 0 && f.den > 0)
            .map(|f| f.num as f64 / f.den as f64);
        let summary = VariantSummary {
            name: name.clone(),
            bandwidth,
            average_bandwidth: average,
            codecs: codecs.join(","),
            resolution,
            frame_rate,
        };
        let mut line = format!(
            "#EXT-X-STREAM-INF:BANDWIDTH={bandwidth},AVERAGE-BANDWIDTH={average},CODECS=\"{}\"",
            summary.codecs
        );
        if let Some((w, h)) = resolution {
            line.push_str(&format!(",RESOLUTION={w}x{h}"));
        }
        if let Some(f) = frame_rate {
            line.push_str(&format!(",FRAME-RATE={f:.3}"));
        }
        if grouped {
            line.push_str(&format!(",AUDIO=\"{AUDIO_GROUP}\""));
        }
        lines.push(line);
        let uri = format!("{}/{MEDIA_PLAYLIST}", r.name);
        quoted("the rendition", &uri)?;
        lines.push(uri);
        variants.push(summary);
    }

    let mut text = format!("#EXTM3U\n#EXT-X-VERSION:{version}\n#EXT-X-INDEPENDENT-SEGMENTS\n");
    for l in lines {
        text.push_str(&l);
        text.push('\n');
    }
    Ok(Master { text, variants })
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::process::Command;

    use super::*;

    fn ffmpeg(dir: &Path, args: &[&str]) {
        crate::ffmpeg::run_for_test(dir, args);
    }

    /// One rendition of 6 s in 2 s segments, written by ffmpeg's hls muxer into `dir/name`.
    fn rendition(dir: &Path, name: &str, ts: bool, inputs: &[&str], codec: &[&str]) -> Rendition {
        std::fs::create_dir(dir.join(name)).unwrap();
        let mut args: Vec<String> = Vec::new();
        for lavfi in inputs {
            args.extend(["-f", "lavfi", "-i", lavfi].map(String::from));
        }
        args.extend(codec.iter().map(|s| s.to_string()));
        let (kind, ext) = if ts {
            ("mpegts", "ts")
        } else {
            ("fmp4", "m4s")
        };
        args.extend(
            [
                "-f",
                "hls",
                "-hls_time",
                "2",
                "-hls_playlist_type",
                "vod",
                "-hls_segment_type",
                kind,
                "-hls_fmp4_init_filename",
                "init.mp4",
                "-hls_segment_filename",
            ]
            .map(String::from),
        );
        args.push(format!("{name}/seg%03d.{ext}"));
        args.push(format!("{name}/{MEDIA_PLAYLIST}"));
        ffmpeg(dir, &args.iter().map(String::as_str).collect::<Vec<_>>());
        Rendition {
            name: name.into(),
            dir: dir.join(name),
            streams: streams(inputs),
        }
    }

    /// What a probe of these lavfi sources says (testsrc2 sizes and 25 fps, stereo sine).
    fn streams(inputs: &[&str]) -> Vec<model::StreamInfo> {
        inputs
            .iter()
            .enumerate()
            .map(|(i, lavfi)| {
                let detail = if let Some(size) = lavfi.strip_prefix("testsrc2=s=") {
                    let (w, h) = size.split(':').next().unwrap().split_once('x').unwrap();
                    model::StreamDetail::Video(model::VideoInfo {
                        width: w.parse().unwrap(),
                        height: h.parse().unwrap(),
                        frame_rate: Some(model::Rational { num: 25, den: 1 }),
                        average_frame_rate: Some(model::Rational { num: 25, den: 1 }),
                        pixel_format: None,
                        sample_aspect_ratio: None,
                        color: model::ColorInfo {
                            range: None,
                            space: None,
                            transfer: None,
                            primaries: None,
                        },
                        rotation_degrees: 0,
                        field_order: None,
                    })
                } else {
                    model::StreamDetail::Audio(model::AudioInfo {
                        sample_rate: 44100,
                        channels: 2,
                        channel_layout: None,
                        sample_format: None,
                        bits_per_sample: None,
                    })
                };
                model::StreamInfo {
                    index: i as u32,
                    kind: model::StreamKind::Unknown,
                    codec: String::new(),
                    profile: None,
                    bit_rate: None,
                    duration_s: None,
                    language: None,
                    disposition: model::Disposition {
                        default: true,
                        forced: false,
                        attached_pic: false,
                        hearing_impaired: false,
                        visual_impaired: false,
                        comment: false,
                        original: false,
                        dub: false,
                    },
                    tags: Vec::new(),
                    detail,
                }
            })
            .collect()
    }

    /// Peak and average from the files, computed independently of the module.
    fn figures(r: &Rendition) -> (u64, u64) {
        let text = std::fs::read_to_string(r.dir.join(MEDIA_PLAYLIST)).unwrap();
        let mut peak = 0f64;
        let (mut bytes, mut secs) = (0u64, 0f64);
        let mut extinf = 0f64;
        for line in text.lines() {
            if let Some(d) = line.strip_prefix("#EXTINF:") {
                extinf = d.trim_end_matches(',').parse().unwrap();
            } else if !line.starts_with('#') {
                let size = std::fs::metadata(r.dir.join(line)).unwrap().len();
                peak = peak.max(size as f64 * 8.0 / extinf);
                bytes += size;
                secs += extinf;
            }
        }
        (
            peak.ceil() as u64,
            (bytes as f64 * 8.0 / secs).ceil() as u64,
        )
    }

    /// ffprobe's `entry` of a rendition's video, from its probe sample.
    fn probed(r: &Rendition, ts: bool, entry: &str) -> String {
        let input = r.dir.with_extension(if ts { "ts" } else { "mp4" });
        probe_sample(&r.dir, &input).unwrap();
        let out = Command::new("ffprobe")
            .args([
                "-v",
                "error",
                "-select_streams",
                "v:0",
                "-show_entries",
                entry,
            ])
            .args(["-of", "csv=p=0"])
            .arg(input)
            .output()
            .unwrap();
        // A TS file lists its streams under its program too: the first line is enough.
        let text = String::from_utf8_lossy(&out.stdout);
        text.lines().next().unwrap().trim().to_owned()
    }

    const VIDEO_264: &str = "testsrc2=s=320x240:r=25:d=6";
    const VIDEO_265: &str = "testsrc2=s=160x120:r=25:d=6";
    const AUDIO: &str = "sine=d=6:sample_rate=44100,aformat=channel_layouts=stereo";
    const X264: &[&str] = &["-c:v", "libx264", "-preset", "ultrafast", "-g", "50"];

    #[test]
    fn a_two_rung_fmp4_ladder_with_an_audio_group() {
        let dir = tempfile::tempdir().unwrap();
        let h264 = rendition(dir.path(), "240p", false, &[VIDEO_264], X264);
        let hevc = rendition(
            dir.path(),
            "120p",
            false,
            &[VIDEO_265],
            &[
                "-c:v",
                "libx265",
                "-preset",
                "ultrafast",
                "-x265-params",
                "log-level=error:keyint=50",
                "-tag:v",
                "hvc1",
            ],
        );
        let audio = rendition(
            dir.path(),
            "en",
            false,
            &[AUDIO],
            &["-c:a", "aac", "-b:a", "64k"],
        );
        let package = model::HlsPackage {
            name: "ladder".into(),
            variants: vec!["240p".into(), "120p".into()],
            audio: vec![model::HlsAudio {
                output: "en".into(),
                label: "English".into(),
                language: Some("en".into()),
            }],
        };
        let master =
            master_playlist(&package, &[audio.clone(), hevc.clone(), h264.clone()]).unwrap();
        println!("{}", master.text);

        let (a_peak, a_avg) = figures(&audio);
        let (h_peak, h_avg) = figures(&h264);
        let (x_peak, x_avg) = figures(&hevc);
        let h = &master.variants[0];
        assert_eq!(
            (h.bandwidth, h.average_bandwidth),
            (h_peak + a_peak, h_avg + a_avg)
        );
        let x = &master.variants[1];
        assert_eq!(
            (x.bandwidth, x.average_bandwidth),
            (x_peak + a_peak, x_avg + a_avg)
        );
        assert!(h.bandwidth >= h.average_bandwidth);

        let h264_level: u8 = probed(&h264, false, "stream=level").parse().unwrap();
        // What the caller probes for RESOLUTION and FRAME-RATE is right for fMP4.
        assert_eq!(
            probed(&h264, false, "stream=width,height,r_frame_rate"),
            "320,240,25/1"
        );
        assert!(h.codecs.starts_with("avc1."), "{}", h.codecs);
        assert_eq!(
            &h.codecs[9..11],
            format!("{h264_level:02x}"),
            "{}",
            h.codecs
        );
        assert!(h.codecs.ends_with(",mp4a.40.2"), "{}", h.codecs);
        let hevc_level = probed(&hevc, false, "stream=level");
        assert_eq!(
            x.codecs,
            format!("hvc1.1.6.L{hevc_level}.90,mp4a.40.2"),
            "Main at ffprobe's level {hevc_level}; x265 flags progressive and frame-only"
        );
        assert_eq!(h.resolution, Some((320, 240)));
        assert_eq!(x.frame_rate, Some(25.0));

        let lines: Vec<&str> = master.text.lines().collect();
        assert_eq!(
            lines[..3],
            ["#EXTM3U", "#EXT-X-VERSION:7", "#EXT-X-INDEPENDENT-SEGMENTS"]
        );
        assert_eq!(
            lines[3],
            "#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"audio\",NAME=\"English\",LANGUAGE=\"en\",\
             CHANNELS=\"2\",DEFAULT=YES,AUTOSELECT=YES,URI=\"en/index.m3u8\""
        );
        assert_eq!(
            lines[4],
            format!(
                "#EXT-X-STREAM-INF:BANDWIDTH={},AVERAGE-BANDWIDTH={},CODECS=\"{}\",\
                 RESOLUTION=320x240,FRAME-RATE=25.000,AUDIO=\"audio\"",
                h.bandwidth, h.average_bandwidth, h.codecs
            )
        );
        assert_eq!(lines[5], "240p/index.m3u8");
        assert_eq!(lines[7], "120p/index.m3u8");
    }

    #[test]
    fn an_mpegts_rendition_with_muxed_audio() {
        let dir = tempfile::tempdir().unwrap();
        let mut codec = X264.to_vec();
        codec.extend(["-c:a", "aac"]);
        let ts = rendition(dir.path(), "ts", true, &[VIDEO_264, AUDIO], &codec);
        let package = model::HlsPackage {
            name: "ts".into(),
            variants: vec!["ts".into()],
            audio: Vec::new(),
        };
        let master = master_playlist(&package, std::slice::from_ref(&ts)).unwrap();
        let v = &master.variants[0];
        let (peak, avg) = figures(&ts);
        assert_eq!((v.bandwidth, v.average_bandwidth), (peak, avg));
        let level: u8 = probed(&ts, true, "stream=level").parse().unwrap();
        assert_eq!(
            &v.codecs[9..],
            format!("{level:02x},mp4a.40.2"),
            "{}",
            v.codecs
        );
        assert!(
            master.text.starts_with("#EXTM3U\n#EXT-X-VERSION:3\n"),
            "{}",
            master.text
        );
        assert!(!master.text.contains("AUDIO="), "{}", master.text);

        let missing = model::HlsPackage {
            variants: vec!["1080p".into()],
            ..package
        };
        let err = master_playlist(&missing, &[ts]).unwrap_err();
        assert!(
            matches!(err, PackageError::Missing(ref n) if n == "1080p"),
            "{err}"
        );
    }
}
