//! hls-ladder: an HLS package of renditions from one decode of the source.
//!
//! The ladder is 360p at 400 kbps, 720p at 2.5 Mbps and 1080p at 5 Mbps in H.264, and 2160p at
//! 18 Mbps in H.265 (`hvc1`): only the rungs the source's height reaches (a source below 360p
//! gets one rung at its own size). The 2160p rung is optional: if it fails, the lower rungs
//! still complete and the job ends `partial`.
//!
//! One ffmpeg decodes the source once; `split` feeds one `scale` per rung. For players to switch
//! rungs without a stall, every rung has a keyframe every 2 s at the same frames (a fixed GOP,
//! no scene-cut keyframes, closed GOPs, IDR keyframes for H.265 too), the host cuts segments of
//! the declared duration at the same times in every rung, and a capped VBV (maxrate 1.1x,
//! buffer 2x the bit rate) keeps a segment's peak near its average. Audio is AAC stereo in its
//! own rendition, the package's audio group. The host writes the master playlist last, from
//! what the segments measure.

mod ladder;

use ladder::{Codec, Rung};
use preset_sdk::*;
use video_source::{Scan, Source, fit, scaled, scan_analysis, speed_param};

struct HlsLadder;

/// Seconds between keyframes in every rung.
const KEYFRAME_INTERVAL_S: f64 = 2.0;
const AUDIO_BIT_RATE: u64 = 128_000;
/// B-frames in every rung, whatever the speed (x264's ultrafast has none, x265's has some): the
/// same reordering delay puts every rung's first frame, and so its keyframes, at the same
/// presentation times.
const B_FRAMES: i64 = 3;

impl Preset for HlsLadder {
    fn describe() -> Descriptor {
        Descriptor::new(
            env!("CARGO_PKG_NAME"),
            env!("CARGO_PKG_VERSION"),
            "An HLS ladder (360p, 720p, 1080p H.264; 2160p H.265, optional) from one decode, with aligned 2 s keyframes, AAC stereo in an audio group and a measured master playlist.",
        )
        .input("main", "A video, with or without audio.")
        .param(
            ParamSpec::integer(
                "segment_duration",
                "Segment length in seconds: a multiple of the 2 s keyframe interval.",
            )
            .range(2, 10)
            .default(4),
        )
        .param(
            ParamSpec::integer(
                "max_height",
                "The highest rung, by height (the shorter side of a portrait video). Unset: up to the source's.",
            )
            .range(144, 4320),
        )
        .param(
            ParamSpec::boolean(
                "uhd",
                "Add the 2160p H.265 rung when the source reaches 2160p.",
            )
            .default(true),
        )
        .param(
            ParamSpec::choice(
                "uhd_level",
                "H.265 level of the 2160p rung, for the devices it must play on; 4.1 cannot hold 2160p, so the rung fails and the job ends partial.",
                ladder::UHD_LEVELS,
            )
            .default("5.1"),
        )
        .param(speed_param("veryfast"))
    }

    fn plan(request: &PlanRequest) -> Result<Decision, Refusal> {
        let source = Source::of(request, "main")?;
        if request.round == 1 {
            return Ok(RoundWork::new().analyze(scan_analysis(&source)).into());
        }
        let params = request.params();
        let segment_s = params.integer("segment_duration")?;
        if segment_s % 2 != 0 {
            return Err(refuse(
                "SEGMENT_DURATION",
                format!(
                    "segment_duration {segment_s} s is not a multiple of the 2 s keyframe interval: use 2, 4, 6, 8 or 10"
                ),
            ));
        }
        let display = source.display();
        let rungs = ladder::rungs(
            display,
            params.optional_integer("max_height")?,
            params.boolean("uhd")?,
        );
        let scan = Scan::of(request)?;
        let fps = source.fps();
        let gop = (KEYFRAME_INTERVAL_S * fps).round().clamp(1.0, 1000.0) as i64;
        let speed = params.text("speed")?;
        let level = params.text("uhd_level")?;
        let segments = HlsRenditionSpec::fmp4(segment_s as f64);

        let picture = match scan.deinterlacer() {
            Some(deinterlace) => {
                let chain = Chain::new(source.pad()).then(deinterlace);
                (Some(chain), Pad::link("progressive"))
            }
            None => (None, source.pad()),
        };
        let mut split = FilterNode::new("split")
            .arg("outputs", rungs.len() as i64)
            .input(picture.1);
        for rung in &rungs {
            split = split.output(format!("{}_in", rung.name));
        }
        let mut step = Step::new("ladder").input(MediaRef::input("main"));
        if let Some(chain) = picture.0 {
            step = step.chain("progressive", chain);
        }
        step = step.filter(split);

        let mut package = HlsPackage::new("master");
        let mut finish = Finish::new();
        let mut names = Vec::new();
        for rung in &rungs {
            let size = fit(display, rung.height, false);
            let chain = scaled(Chain::new(Pad::link(format!("{}_in", rung.name))), size);
            let encoder = rung.encoder(speed, gop, level);
            let mut output = Output::hls_rendition(rung.name.clone(), segments)
                .video(Pad::link(rung.name.clone()), encoder);
            if rung.codec == Codec::H265 {
                output = output.optional();
            }
            step = step.chain(&rung.name, chain).output(output);
            package = package.variant(rung.name.clone());
            finish = finish.report(
                rung.name.clone(),
                format!("{} {} {}", size.text(), rung.bit_rate, rung.codec.name()),
            );
            names.push(rung.name.clone());
        }
        if let Some(audio) = source.audio() {
            step = step.output(Output::hls_rendition("audio", segments).audio(
                Pad::stream(0, audio.index()),
                Encoder::new("aac").bit_rate(AUDIO_BIT_RATE).channels(2),
            ));
            let mut group = HlsAudio::new("audio", "Stereo");
            if let Some(language) = audio.stream.language.as_deref().filter(|l| *l != "und") {
                group = group.language(language);
            }
            package = package.audio(group);
        }
        log::info(format!(
            "{} at {:.3} fps: rungs {}; keyframe every {gop} frames; {segment_s} s segments{}",
            display.text(),
            fps,
            names.join(", "),
            if scan.interlaced() {
                "; deinterlaced"
            } else {
                ""
            },
        ));
        Ok(finish
            .step(step)
            .package(package)
            .report("rungs", names.join(","))
            .report(
                "keyframe_interval_s",
                video_source::round_to(gop as f64 / fps, 3),
            )
            .report("segment_duration_s", segment_s)
            .report("deinterlaced", scan.interlaced())
            .into())
    }
}

impl Rung {
    /// The encoder of this rung: a fixed GOP of `gop` frames with no scene-cut keyframes and
    /// a capped VBV.
    fn encoder(&self, speed: &str, gop: i64, uhd_level: &str) -> Encoder {
        let bit_rate = self.bit_rate;
        let common = |codec: &str| {
            Encoder::new(codec)
                .pixel_format("yuv420p")
                .bit_rate(bit_rate)
                .option("preset", speed)
                .option("g", gop)
                .option("keyint_min", gop)
                .option("maxrate", (bit_rate * 11 / 10) as i64)
                .option("bufsize", (bit_rate * 2) as i64)
        };
        match self.codec {
            Codec::H264 => common("libx264")
                .option("profile", "high")
                .option("sc_threshold", 0)
                .option("bf", B_FRAMES),
            Codec::H265 => common("libx265")
                .option("profile", "main")
                .option("tag", "hvc1")
                .option("forced-idr", true)
                .option(
                    "x265-params",
                    format!(
                        "keyint={gop}:min-keyint={gop}:scenecut=0:open-gop=0:bframes={B_FRAMES}:level-idc={uhd_level}:log-level=error"
                    ),
                ),
        }
    }
}

export_preset!(HlsLadder);

#[cfg(test)]
mod tests;
