//! The one place an ffmpeg command line is built, from a validated step.
//!
//! Paths are the host's: inputs are files the worker downloaded or produced, outputs are named
//! after their role inside the job's scratch directory. Every filter argument is escaped here for
//! both levels of ffmpeg's filtergraph syntax; no preset string becomes a flag.

use std::collections::HashMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use crate::model;
use crate::plan::allowlist;
use crate::plan::layout::{self, Layout};
use crate::plan::validate::ValidatedStep;

/// A rendered ffmpeg invocation and the files it will write.
#[derive(Debug)]
pub struct Rendered {
    pub argv: Vec<OsString>,
    pub outputs: Vec<RenderedOutput>,
}

#[derive(Debug, Clone)]
pub struct RenderedOutput {
    pub name: String,
    /// The container for a file; the image extension or "hls" for the other kinds.
    pub container: String,
    /// What ffmpeg writes: the file, the image pattern or the media playlist.
    pub path: PathBuf,
    /// The directory the output's objects go in, which must exist before ffmpeg runs.
    pub dir: Option<PathBuf>,
    pub layout: Layout,
}

/// Renders a step. `input_path` maps each step input to a local file.
pub fn render(
    step: &ValidatedStep,
    input_path: impl Fn(&model::MediaRef) -> PathBuf,
    out_dir: &Path,
) -> Rendered {
    render_converting(step, input_path, out_dir, &HashMap::new())
}

/// Renders a step whose image outputs named in `to_srgb` strip their metadata: each one's
/// picture first goes through its colour conversion to sRGB (a host-built filter, from
/// [`crate::media::image_meta::srgb_filter`]), so dropping the ICC profile shifts no colour.
pub fn render_converting(
    step: &ValidatedStep,
    input_path: impl Fn(&model::MediaRef) -> PathBuf,
    out_dir: &Path,
    to_srgb: &HashMap<String, String>,
) -> Rendered {
    let validated = step;
    let step = step.step();
    let mut argv: Vec<OsString> = [
        "-hide_banner",
        "-nostdin",
        "-nostats",
        "-y",
        "-progress",
        "pipe:1",
    ]
    .iter()
    .map(Into::into)
    .collect();
    let push = |argv: &mut Vec<OsString>, a: &str, b: String| {
        argv.push(a.into());
        argv.push(b.into());
    };

    for (i, input) in step.inputs.iter().enumerate() {
        if let Some(s) = input.seek_s {
            push(&mut argv, "-ss", number(s));
        }
        if let Some(d) = input.duration_s {
            push(&mut argv, "-t", number(d));
        }
        // ffmpeg turns a JPEG by the rotation of its EXIF orientation (not the mirroring) and a
        // PNG's or WebP's not at all: an image with one is decoded as stored, and the plan's own
        // transpose/flip is the one turn.
        if validated.decodes_as_stored(i) {
            argv.push("-noautorotate".into());
        }
        argv.extend(super::input_guard_args());
        argv.push("-i".into());
        argv.push(input_path(&input.source).into_os_string());
    }

    // Host conversions read the picture an output would have mapped and feed it instead.
    let mut graph: Vec<String> = step.graph.iter().map(node).collect();
    let mut converted: HashMap<(usize, usize), String> = HashMap::new();
    for (o, output) in step.outputs.iter().enumerate() {
        let Some(filter) = to_srgb.get(&output.name) else {
            continue;
        };
        for (i, stream) in output.streams.iter().enumerate() {
            let label = format!("mediahost_srgb_{o}_{i}");
            graph.push(format!("{}{filter}[{label}]", pad(&stream.source)));
            converted.insert((o, i), format!("[{label}]"));
        }
    }
    if !graph.is_empty() {
        push(&mut argv, "-filter_complex", graph.join(";"));
    }

    let mut outputs = Vec::new();
    for (o, output) in step.outputs.iter().enumerate() {
        let layout = layout::layout(output);
        for (i, stream) in output.streams.iter().enumerate() {
            let source = converted
                .remove(&(o, i))
                .unwrap_or_else(|| map_source(&stream.source));
            push(&mut argv, "-map", source);
            match &stream.codec {
                model::Codec::Copy => push(&mut argv, &format!("-c:{i}"), "copy".into()),
                model::Codec::Encode(enc) => encoder(&mut argv, i, enc),
            }
            for tag in &stream.metadata {
                push(
                    &mut argv,
                    &format!("-metadata:s:{i}"),
                    format!("{}={}", tag.key, tag.value),
                );
            }
        }
        for tag in &output.metadata {
            push(&mut argv, "-metadata", format!("{}={}", tag.key, tag.value));
        }
        for opt in &output.muxer_options {
            push(&mut argv, &format!("-{}", opt.name), plain(&opt.value));
        }
        // Every output is bounded, whether or not the preset gave a duration.
        push(&mut argv, "-t", number(validated.output_bound(o)));
        let label = match &output.kind {
            model::OutputKind::File(name) => {
                let container = allowlist::container(name).expect("validated container");
                push(&mut argv, "-f", container.muxer.into());
                name.clone()
            }
            model::OutputKind::Still(image) => {
                image_quality(&mut argv, output, image);
                push(&mut argv, "-frames:v", "1".into());
                match image.format {
                    // image2 writes one file, not a numbered run, with -update.
                    model::ImageFormat::Jpeg | model::ImageFormat::Png => {
                        push(&mut argv, "-f", "image2".into());
                        push(&mut argv, "-update", "1".into());
                    }
                    model::ImageFormat::Webp => push(&mut argv, "-f", "webp".into()),
                    model::ImageFormat::Avif => push(&mut argv, "-f", "avif".into()),
                }
                layout::image_extension(image.format).to_owned()
            }
            model::OutputKind::ImageSequence(seq) => {
                image_quality(&mut argv, output, &seq.image);
                push(&mut argv, "-frames:v", seq.max_frames.to_string());
                push(&mut argv, "-f", "image2".into());
                push(&mut argv, "-start_number", "1".into());
                layout::image_extension(seq.image.format).to_owned()
            }
            model::OutputKind::HlsRendition(hls) => {
                // A segment starts at a keyframe: without one at each multiple of the declared
                // duration, an encoder's own GOP (250 frames for x264) decides the segments.
                let mut video = false;
                for (i, stream) in output.streams.iter().enumerate() {
                    if let model::Codec::Encode(enc) = &stream.codec
                        && allowlist::is_video_encoder(&enc.codec)
                    {
                        video = true;
                        push(
                            &mut argv,
                            &format!("-force_key_frames:{i}"),
                            format!("expr:gte(t,n_forced*{})", number(hls.segment_duration_s)),
                        );
                    }
                }
                // The muxer cuts at the first packet at or past each multiple of -hls_time. Audio
                // packets do not fall on those multiples, so an audio-only rendition cut there
                // would overrun the declared duration by up to a frame; cut a little earlier.
                let segment_s = if video {
                    hls.segment_duration_s
                } else {
                    hls.segment_duration_s - AUDIO_CUT_EARLY_S
                };
                push(&mut argv, "-f", "hls".into());
                push(&mut argv, "-hls_time", number(segment_s));
                push(&mut argv, "-hls_playlist_type", "vod".into());
                push(&mut argv, "-hls_list_size", "0".into());
                push(&mut argv, "-hls_flags", "independent_segments".into());
                match hls.segment_format {
                    model::SegmentFormat::Fmp4 => {
                        push(&mut argv, "-hls_segment_type", "fmp4".into());
                        // Relative to the playlist, which is where ffmpeg writes it.
                        push(&mut argv, "-hls_fmp4_init_filename", "init.mp4".into());
                    }
                    model::SegmentFormat::Mpegts => {
                        push(&mut argv, "-hls_segment_type", "mpegts".into())
                    }
                }
                let segments = layout.segments().expect("a rendition has segments");
                argv.push("-hls_segment_filename".into());
                argv.push(out_dir.join(segments).into_os_string());
                "hls".to_owned()
            }
        };
        let path = out_dir.join(layout.target());
        argv.push(path.clone().into_os_string());
        outputs.push(RenderedOutput {
            name: output.name.clone(),
            container: label,
            dir: layout.dir().map(|d| out_dir.join(d)),
            path,
            layout,
        });
    }
    Rendered { argv, outputs }
}

/// How much earlier than the declared duration an audio-only rendition's segments are cut:
/// more than an AAC frame (1024 samples) at 22.05 kHz and up, less than the shortest segment
/// validation allows (1 s).
const AUDIO_CUT_EARLY_S: f64 = 0.05;

/// Default qualities (1 to 100) per format, when the image spec gives none.
const JPEG_QUALITY: u32 = 85;
const WEBP_QUALITY: u32 = 80;
const AVIF_QUALITY: u32 = 60;

/// The image's quality as its encoder's own scale, on its single stream (0). PNG is lossless,
/// so quality has nothing to set there.
fn image_quality(argv: &mut Vec<OsString>, output: &model::Output, image: &model::ImageSpec) {
    let mut push = |flag: &str, value: String| {
        argv.push(flag.into());
        argv.push(value.into());
    };
    // From 1 (smallest) to 100 (best) onto an encoder scale where `best` is the best value.
    let scale = |q: u32, worst: u32, best: u32| {
        let t = f64::from(100 - q.clamp(1, 100)) / 99.0;
        (f64::from(best) + t * (f64::from(worst) - f64::from(best))).round() as u32
    };
    match image.format {
        model::ImageFormat::Jpeg => {
            push(
                "-q:0",
                scale(image.quality.unwrap_or(JPEG_QUALITY), 31, 2).to_string(),
            );
            // ffmpeg 5.1's mjpeg refuses limited-range YUV without `-strict unofficial`.
            let given = output.streams.first().is_some_and(
                |s| matches!(&s.codec, model::Codec::Encode(e) if e.pixel_format.is_some()),
            );
            if !given {
                push("-pix_fmt:0", "yuvj420p".into());
            }
        }
        model::ImageFormat::Png => {}
        model::ImageFormat::Webp => {
            push(
                "-quality:0",
                image
                    .quality
                    .unwrap_or(WEBP_QUALITY)
                    .clamp(1, 100)
                    .to_string(),
            );
        }
        model::ImageFormat::Avif => {
            push(
                "-crf:0",
                scale(image.quality.unwrap_or(AVIF_QUALITY), 63, 0).to_string(),
            );
            push("-still-picture:0", "1".into());
            push("-cpu-used:0", "6".into());
        }
    }
}

fn encoder(argv: &mut Vec<OsString>, i: usize, enc: &model::Encoder) {
    let mut push = |flag: &str, value: String| {
        argv.push(format!("-{flag}:{i}").into());
        argv.push(value.into());
    };
    push("c", enc.codec.clone());
    if let Some(b) = enc.bit_rate {
        push("b", b.to_string());
    }
    if let Some(r) = enc.sample_rate {
        push("ar", r.to_string());
    }
    if let Some(c) = enc.channels {
        push("ac", c.to_string());
    }
    if let Some(f) = &enc.sample_format {
        push("sample_fmt", f.clone());
    }
    if let Some(f) = &enc.pixel_format {
        push("pix_fmt", f.clone());
    }
    if let Some(r) = &enc.frame_rate {
        push("r", format!("{}/{}", r.num, r.den));
    }
    for opt in &enc.options {
        push(&opt.name, plain(&opt.value));
    }
}

fn map_source(pad: &model::Pad) -> String {
    match pad {
        model::Pad::Stream(r) => format!("{}:{}", r.input, r.stream),
        model::Pad::Link(label) => format!("[{label}]"),
    }
}

fn pad(p: &model::Pad) -> String {
    match p {
        model::Pad::Stream(r) => format!("[{}:{}]", r.input, r.stream),
        model::Pad::Link(label) => format!("[{label}]"),
    }
}

fn node(n: &model::FilterNode) -> String {
    let mut s: String = n.inputs.iter().map(pad).collect();
    s.push_str(&n.filter);
    if !n.args.is_empty() {
        s.push('=');
        let args: Vec<String> = n
            .args
            .iter()
            .map(|a| format!("{}={}", a.name, escape_filter_value(&plain(&a.value))))
            .collect();
        s.push_str(&args.join(":"));
    }
    for label in &n.outputs {
        s.push('[');
        s.push_str(label);
        s.push(']');
    }
    s
}

fn number(v: f64) -> String {
    format!("{v}")
}

fn plain(v: &model::Value) -> String {
    match v {
        model::Value::Integer(i) => i.to_string(),
        model::Value::Number(n) => number(*n),
        model::Value::Boolean(b) => if *b { "1" } else { "0" }.into(),
        model::Value::Text(t) => t.clone(),
    }
}

/// The command as a shell would read it, for logs and dry runs (never run through a shell).
pub fn shell_line(argv: &[OsString]) -> String {
    let quoted: Vec<String> = argv
        .iter()
        .map(|a| {
            let a = a.to_string_lossy();
            if !a.is_empty()
                && a.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_./:=,+@%".contains(&b))
            {
                a.into_owned()
            } else {
                format!("'{}'", a.replace('\'', "'\\''"))
            }
        })
        .collect();
    format!("ffmpeg {}", quoted.join(" "))
}

/// Escapes an option value twice: once for the filter's option parser (`\ ' :`), then for the
/// filtergraph parser (`\ ' [ ] , ;`).
pub fn escape_filter_value(v: &str) -> String {
    let escape = |s: &str, special: &[char]| {
        let mut out = String::with_capacity(s.len());
        for c in s.chars() {
            if special.contains(&c) {
                out.push('\\');
            }
            out.push(c);
        }
        out
    };
    let level1 = escape(v, &['\\', '\'', ':']);
    escape(&level1, &['\\', '\'', '[', ']', ',', ';'])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_both_levels() {
        assert_eq!(escape_filter_value("a:b"), "a\\\\:b");
        assert_eq!(escape_filter_value("x,y;[z]"), "x\\,y\\;\\[z\\]");
        assert_eq!(escape_filter_value("'"), "\\\\\\'");
        assert_eq!(escape_filter_value("stereo|c0=c0"), "stereo|c0=c0");
    }

    #[test]
    fn renders_a_filter_node() {
        let n = model::FilterNode {
            filter: "volume".into(),
            args: vec![model::OptionValue {
                name: "volume".into(),
                value: model::Value::Text("3.5dB".into()),
            }],
            inputs: vec![model::Pad::Stream(model::StreamRef {
                input: 0,
                stream: 1,
            })],
            outputs: vec!["out".into()],
        };
        assert_eq!(node(&n), "[0:1]volume=volume=3.5dB[out]");
    }

    /// Input "a": 10 s of 64x64 video.
    struct Video(model::MediaInfo);

    impl crate::plan::validate::MediaLookup for Video {
        fn info(&self, _: &model::MediaRef) -> Option<&model::MediaInfo> {
            Some(&self.0)
        }
    }

    /// The argv of one step writing output "o" of `kind`, encoded by `codec`, into `out`.
    fn argv_of(kind: model::OutputKind, codec: &str) -> (Vec<String>, RenderedOutput) {
        let rendered = render(
            &step_of(kind, codec),
            |_| PathBuf::from("in/a"),
            Path::new("out"),
        );
        let argv = rendered
            .argv
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        (argv, rendered.outputs[0].clone())
    }

    /// One validated step writing output "o" of `kind`, encoded by `codec`, from a video.
    fn step_of(kind: model::OutputKind, codec: &str) -> ValidatedStep {
        let media = Video(crate::media::probe::from_json(&serde_json::json!({
            "format": {"format_name": "matroska", "duration": "10", "size": "1000"},
            "streams": [{"index": 0, "codec_type": "video", "codec_name": "h264",
                         "width": 64, "height": 64}]
        })));
        let step = model::Step {
            name: "s".into(),
            inputs: vec![model::StepInput {
                source: model::MediaRef::Input("a".into()),
                seek_s: None,
                duration_s: None,
            }],
            graph: vec![],
            outputs: vec![model::Output::encoded(
                "o",
                kind,
                model::Pad::Stream(model::StreamRef {
                    input: 0,
                    stream: 0,
                }),
                codec,
            )],
        };
        crate::plan::validate::validate_steps(vec![step], &media, &std::collections::HashSet::new())
            .expect("a valid step")
            .remove(0)
    }

    /// Media by input name: "photo" a 320x240 JPEG, with `orientation` as the probe reports it,
    /// and "clip" 10 s of 64x64 video.
    struct PhotoAndClip(model::MediaInfo, model::MediaInfo);

    impl crate::plan::validate::MediaLookup for PhotoAndClip {
        fn info(&self, source: &model::MediaRef) -> Option<&model::MediaInfo> {
            match source {
                model::MediaRef::Input(n) if n == "photo" => Some(&self.0),
                _ => Some(&self.1),
            }
        }
    }

    /// A step writing a PNG still of each of `inputs` ("photo" or "clip"), unfiltered.
    fn stills_of(inputs: &[&str], orientation: Option<u16>) -> ValidatedStep {
        let mut photo = crate::media::probe::from_json(&serde_json::json!({
            "format": {"format_name": "image2,jpeg_pipe", "duration": "0.04", "size": "9000"},
            "streams": [{"index": 0, "codec_type": "video", "codec_name": "mjpeg",
                         "width": 320, "height": 240}]
        }));
        crate::media::probe::tag_orientation(&mut photo, orientation);
        let clip = crate::media::probe::from_json(&serde_json::json!({
            "format": {"format_name": "matroska", "duration": "10", "size": "1000"},
            "streams": [{"index": 0, "codec_type": "video", "codec_name": "h264",
                         "width": 64, "height": 64}]
        }));
        let step = model::Step {
            name: "s".into(),
            inputs: inputs
                .iter()
                .map(|name| model::StepInput {
                    source: model::MediaRef::Input((*name).into()),
                    seek_s: None,
                    duration_s: None,
                })
                .collect(),
            graph: vec![],
            outputs: (0..inputs.len())
                .map(|i| {
                    model::Output::encoded(
                        &format!("o{i}"),
                        model::OutputKind::Still(image(model::ImageFormat::Png, None)),
                        model::Pad::Stream(model::StreamRef {
                            input: i as u32,
                            stream: 0,
                        }),
                        "png",
                    )
                })
                .collect(),
        };
        crate::plan::validate::validate_steps(
            vec![step],
            &PhotoAndClip(photo, clip),
            &std::collections::HashSet::new(),
        )
        .expect("a valid step")
        .remove(0)
    }

    #[test]
    fn an_image_with_an_exif_orientation_is_decoded_as_stored() {
        let path = |r: &model::MediaRef| match r {
            model::MediaRef::Input(n) => PathBuf::from(format!("in/{n}")),
            model::MediaRef::Produced(n) => PathBuf::from(format!("work/{n}")),
        };
        let argv = |step: &ValidatedStep| -> Vec<String> {
            render(step, path, Path::new("out"))
                .argv
                .iter()
                .map(|a| a.to_string_lossy().into_owned())
                .collect()
        };
        // The flag belongs to the photo's `-i`, not the clip's.
        let both = argv(&stills_of(&["clip", "photo"], Some(6)));
        let flagged: Vec<usize> = both
            .iter()
            .enumerate()
            .filter(|(_, a)| *a == "-noautorotate")
            .map(|(at, _)| at)
            .collect();
        let inputs: Vec<usize> = both
            .iter()
            .enumerate()
            .filter(|(_, a)| *a == "-i")
            .map(|(at, _)| at)
            .collect();
        assert_eq!(flagged.len(), 1, "{both:?}");
        assert!(inputs[0] < flagged[0] && flagged[0] < inputs[1], "{both:?}");
        assert_eq!(both[inputs[1] + 1], "in/photo");
        // Orientation 1 is still an orientation: ffmpeg's decision is never the one taken.
        assert!(argv(&stills_of(&["photo"], Some(1))).contains(&"-noautorotate".to_owned()));
        assert!(!argv(&stills_of(&["photo"], None)).contains(&"-noautorotate".to_owned()));
        assert!(!argv(&stills_of(&["clip"], None)).contains(&"-noautorotate".to_owned()));
        // A dropped optional output keeps the inputs' flags.
        let step = stills_of(&["photo"], Some(6));
        assert!(step.decodes_as_stored(0) && !step.decodes_as_stored(1));
    }

    /// ffmpeg 5.1 turns a JPEG by its EXIF orientation 6 unless told not to: rendered from the
    /// probe's tag, the still keeps the stored 320x240.
    #[test]
    fn ffmpeg_decodes_an_oriented_jpeg_as_stored() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let plain = dir.path().join("plain.jpg");
        let made = std::process::Command::new("ffmpeg")
            .args(["-v", "error", "-f", "lavfi", "-i", "testsrc2=size=320x240"])
            .args(["-frames:v", "1"])
            .arg(&plain)
            .status()
            .expect("ffmpeg runs");
        assert!(made.success());
        let tiff = b"MM\0*\0\0\0\x08\0\x01\x01\x12\0\x03\0\0\0\x01\0\x06\0\0\0\0\0\0";
        let meta = crate::media::image_meta::Metadata {
            exif: Some(tiff.to_vec()),
            ..Default::default()
        };
        let photo = crate::media::image_meta::write(
            &std::fs::read(&plain).unwrap(),
            model::ImageFormat::Jpeg,
            &meta,
            false,
        )
        .unwrap();
        std::fs::write(dir.path().join("photo"), photo).unwrap();
        let size_of = |orientation: Option<u16>| {
            let out = tempfile::tempdir_in(dir.path()).unwrap();
            let rendered = render(
                &stills_of(&["photo"], orientation),
                |_| dir.path().join("photo"),
                out.path(),
            );
            let run = std::process::Command::new("ffmpeg")
                .args(&rendered.argv)
                .output()
                .expect("ffmpeg runs");
            assert!(
                run.status.success(),
                "{}",
                String::from_utf8_lossy(&run.stderr)
            );
            let probe = std::process::Command::new("ffprobe")
                .args([
                    "-v",
                    "error",
                    "-show_entries",
                    "stream=width,height",
                    "-of",
                    "csv=p=0",
                ])
                .arg(&rendered.outputs[0].path)
                .output()
                .expect("ffprobe runs");
            String::from_utf8_lossy(&probe.stdout).trim().to_owned()
        };
        assert_eq!(size_of(Some(6)), "320,240");
        // The control: left to ffmpeg, the pixels turn.
        assert_eq!(size_of(None), "240,320");
    }

    #[test]
    fn a_stripped_image_is_converted_to_srgb_before_it_is_encoded() {
        let step = step_of(
            model::OutputKind::Still(image(model::ImageFormat::Webp, None)),
            "libwebp",
        );
        let to_srgb = HashMap::from([("o".to_owned(), "zscale=primaries=709".to_owned())]);
        let rendered =
            render_converting(&step, |_| PathBuf::from("in/a"), Path::new("out"), &to_srgb);
        let argv: Vec<String> = rendered
            .argv
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        let graph = argv.iter().position(|a| a == "-filter_complex").unwrap();
        assert_eq!(
            argv[graph + 1],
            "[0:0]zscale=primaries=709[mediahost_srgb_0_0]"
        );
        assert!(
            tail(&argv).starts_with("-map [mediahost_srgb_0_0] "),
            "{argv:?}"
        );
        let plain = render(&step, |_| PathBuf::from("in/a"), Path::new("out"));
        assert!(!plain.argv.iter().any(|a| a == "-filter_complex"));
    }

    /// The argv from the output's first `-map` on, joined by spaces.
    fn tail(argv: &[String]) -> String {
        let at = argv
            .iter()
            .position(|a| a == "-map")
            .expect("a mapped stream");
        argv[at..].join(" ")
    }

    fn image(format: model::ImageFormat, quality: Option<u32>) -> model::ImageSpec {
        model::ImageSpec {
            format,
            quality,
            metadata: model::ImageMetadata::Keep,
        }
    }

    #[test]
    fn a_file_output_is_rendered_as_before() {
        let (argv, out) = argv_of(model::OutputKind::File("mkv".into()), "libx264");
        assert!(tail(&argv).ends_with("-f matroska out/o.mkv"), "{argv:?}");
        assert_eq!(out.dir, None);
    }

    #[test]
    fn stills_write_one_frame_with_their_quality() {
        let cases = [
            (
                image(model::ImageFormat::Jpeg, Some(100)),
                "mjpeg",
                "-q:0 2 -pix_fmt:0 yuvj420p -frames:v 1 -f image2 -update 1 out/o.jpg",
            ),
            (
                image(model::ImageFormat::Jpeg, Some(1)),
                "mjpeg",
                "-q:0 31 ",
            ),
            (
                image(model::ImageFormat::Png, None),
                "png",
                "-c:0 png -t 11.1 -frames:v 1 -f image2 -update 1 out/o.png",
            ),
            (
                image(model::ImageFormat::Webp, Some(70)),
                "libwebp",
                "-quality:0 70 -frames:v 1 -f webp out/o.webp",
            ),
            (
                image(model::ImageFormat::Avif, None),
                "libaom-av1",
                "-crf:0 25 -still-picture:0 1 -cpu-used:0 6 -frames:v 1 -f avif out/o.avif",
            ),
        ];
        for (spec, codec, want) in cases {
            let (argv, _) = argv_of(model::OutputKind::Still(spec), codec);
            assert!(tail(&argv).contains(want), "{want}\n{}", tail(&argv));
        }
    }

    #[test]
    fn an_image_sequence_writes_numbered_images_in_its_directory() {
        let (argv, out) = argv_of(
            model::OutputKind::ImageSequence(model::ImageSequenceSpec {
                image: image(model::ImageFormat::Webp, None),
                max_frames: 12,
            }),
            "libwebp",
        );
        assert!(
            tail(&argv).ends_with("-frames:v 12 -f image2 -start_number 1 out/o/%04d.webp"),
            "{argv:?}"
        );
        assert_eq!(out.dir.as_deref(), Some(Path::new("out/o")));
    }

    #[test]
    fn an_hls_rendition_is_a_vod_playlist_of_independent_segments() {
        let rendition = |segment_format| {
            model::OutputKind::HlsRendition(model::HlsRenditionSpec {
                segment_format,
                segment_duration_s: 4.0,
            })
        };
        let (argv, out) = argv_of(rendition(model::SegmentFormat::Fmp4), "libx264");
        assert!(
            tail(&argv).ends_with(
                "-f hls -hls_time 4 -hls_playlist_type vod -hls_list_size 0 -hls_flags \
                 independent_segments -hls_segment_type fmp4 -hls_fmp4_init_filename init.mp4 \
                 -hls_segment_filename out/o/%04d.m4s out/o/index.m3u8"
            ),
            "{argv:?}"
        );
        assert_eq!(out.dir.as_deref(), Some(Path::new("out/o")));
        assert!(
            tail(&argv).contains("-force_key_frames:0 expr:gte(t,n_forced*4) -f hls"),
            "{argv:?}"
        );
        // Audio packets do not fall on the boundaries: cut early so no segment overruns.
        let (argv, _) = argv_of(rendition(model::SegmentFormat::Fmp4), "aac");
        assert!(tail(&argv).contains("-f hls -hls_time 3.95 "), "{argv:?}");
        assert!(!tail(&argv).contains("-force_key_frames"), "{argv:?}");
        let (argv, _) = argv_of(rendition(model::SegmentFormat::Mpegts), "libx264");
        assert!(
            tail(&argv).ends_with(
                "-hls_segment_type mpegts -hls_segment_filename out/o/%04d.ts out/o/index.m3u8"
            ),
            "{argv:?}"
        );
    }

    /// Every kind's argv as ffmpeg 5.1 runs it: each writes the objects its layout names.
    #[test]
    fn ffmpeg_writes_what_each_kind_names() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let input = dir.path().join("in.mkv");
        let made = std::process::Command::new("ffmpeg")
            .args(["-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i"])
            .arg("testsrc2=size=64x64:rate=25:duration=5")
            .args(["-c:v", "libx264", "-g", "25"])
            .arg(&input)
            .status()
            .expect("ffmpeg runs");
        assert!(made.success());
        let hls = |segment_format| {
            model::OutputKind::HlsRendition(model::HlsRenditionSpec {
                segment_format,
                segment_duration_s: 2.0,
            })
        };
        let kinds = [
            (
                model::OutputKind::Still(image(model::ImageFormat::Jpeg, None)),
                "mjpeg",
                vec!["o.jpg"],
            ),
            (
                model::OutputKind::Still(image(model::ImageFormat::Png, None)),
                "png",
                vec!["o.png"],
            ),
            (
                model::OutputKind::Still(image(model::ImageFormat::Webp, None)),
                "libwebp",
                vec!["o.webp"],
            ),
            (
                model::OutputKind::Still(image(model::ImageFormat::Avif, Some(50))),
                "libaom-av1",
                vec!["o.avif"],
            ),
            (
                model::OutputKind::ImageSequence(model::ImageSequenceSpec {
                    image: image(model::ImageFormat::Jpeg, None),
                    max_frames: 3,
                }),
                "mjpeg",
                vec!["o/0001.jpg", "o/0003.jpg"],
            ),
            (
                hls(model::SegmentFormat::Fmp4),
                "libx264",
                vec!["o/index.m3u8", "o/init.mp4", "o/0000.m4s", "o/0002.m4s"],
            ),
            (
                hls(model::SegmentFormat::Mpegts),
                "libx264",
                vec!["o/index.m3u8", "o/0000.ts"],
            ),
        ];
        for (kind, codec, objects) in kinds {
            let out = tempfile::tempdir_in(dir.path()).expect("an output directory");
            let (argv, rendered) = argv_of(kind, codec);
            let argv: Vec<String> = argv
                .into_iter()
                .map(|a| match a.strip_prefix("out/") {
                    Some(rest) => out.path().join(rest).display().to_string(),
                    None if a == "in/a" => input.display().to_string(),
                    None => a,
                })
                .collect();
            if let Some(sub) = rendered.layout.dir() {
                std::fs::create_dir_all(out.path().join(sub)).unwrap();
            }
            let run = std::process::Command::new("ffmpeg")
                .args(&argv)
                .output()
                .expect("ffmpeg runs");
            assert!(
                run.status.success(),
                "{argv:?}: {}",
                String::from_utf8_lossy(&run.stderr)
            );
            for object in objects {
                assert!(out.path().join(object).is_file(), "{object} of {argv:?}");
            }
            if matches!(rendered.layout, Layout::Sequence { .. }) {
                assert!(
                    !out.path().join("o/0004.jpg").exists(),
                    "bounded by max_frames"
                );
            }
            if matches!(rendered.layout, Layout::Hls { .. }) {
                let playlist = std::fs::read_to_string(out.path().join("o/index.m3u8")).unwrap();
                assert!(
                    playlist.contains("#EXT-X-INDEPENDENT-SEGMENTS"),
                    "{playlist}"
                );
                assert!(playlist.contains("#EXT-X-PLAYLIST-TYPE:VOD"), "{playlist}");
            }
        }
    }
}
