//! video-transcode: one video in a quality profile of our table, each default overridable.
//!
//! | profile | video | audio | bit rate | container |
//! |---|---|---|---|---|
//! | `web-hd` | H.264 High, up to 1080p | AAC 128k | 4 Mbps | MP4, faststart |
//! | `web-4k` | H.265 Main10 `hvc1`, up to 2160p | AAC 192k | 15 Mbps | MP4, faststart |
//! | `social` | H.264 High, up to 1080p | AAC 128k | 8 Mbps | MP4, faststart |
//! | `archive` | H.265 CRF 18, source size | FLAC | variable | Matroska |
//!
//! Adaptive quality: a source that carries fewer bits than the target (a low bit rate, a small
//! picture) caps the target at what its own bits justify at the output's size and codec,
//! instead of padding the output; the report says so. The picture keeps the source's frame
//! rate and colour tags, is shown upright (ffmpeg applies the display rotation), is never
//! upscaled unless asked, and is deinterlaced when the interlacing analysis finds fields.

mod profile;

use preset_sdk::*;
use profile::{Audio, NAMES, VideoCodec, source_cost};
use video_source::{Scan, Size, Source, fit, rational_text, scan_analysis, speed_param};

struct VideoTranscode;

/// The least bit rate a capped target goes down to.
const MIN_BIT_RATE: u64 = 100_000;

impl Preset for VideoTranscode {
    fn describe() -> Descriptor {
        Descriptor::new(
            env!("CARGO_PKG_NAME"),
            env!("CARGO_PKG_VERSION"),
            "Transcodes a video in a quality profile (web-hd, web-4k, social, archive), capping the bit rate at what the source justifies.",
        )
        .input("main", "A video, with or without audio.")
        .param(ParamSpec::choice("profile", "Quality profile.", NAMES).default("web-hd"))
        .param(
            ParamSpec::integer(
                "max_height",
                "The highest picture (the shorter side of a portrait video). Unset: the profile's.",
            )
            .range(144, 4320),
        )
        .param(
            ParamSpec::integer(
                "video_bit_rate",
                "Average video bit rate in bits/s. Unset: the profile's.",
            )
            .range(100_000, 100_000_000),
        )
        .param(
            ParamSpec::integer(
                "quality",
                "Constant quality (CRF, lower is better) instead of an average bit rate; the profile's bit rate becomes a cap.",
            )
            .range(0, 51),
        )
        .param(
            ParamSpec::integer("audio_bit_rate", "AAC bit rate in bits/s. Unset: the profile's.")
                .range(32_000, 512_000),
        )
        .param(ParamSpec::choice(
            "container",
            "Output container. Unset: the profile's.",
            ["mp4", "mov", "mkv"],
        ))
        .param(ParamSpec::boolean("upscale", "Scale a smaller source up to max_height.").default(false))
        .param(speed_param("medium"))
    }

    fn plan(request: &PlanRequest) -> Result<Decision, Refusal> {
        let source = Source::of(request, "main")?;
        if request.round == 1 {
            return Ok(RoundWork::new().analyze(scan_analysis(&source)).into());
        }
        let params = request.params();
        let profile = profile::profile(params.text("profile")?)
            .ok_or_else(|| refuse("UNKNOWN_PROFILE", "profile is not one of ours"))?;
        let scan = Scan::of(request)?;
        let display = source.display();
        let height = params
            .optional_integer("max_height")?
            .map(|h| h as u32)
            .or(profile.max_height)
            .unwrap_or(display.short_side());
        let size = fit(display, height, params.boolean("upscale")?);
        let container = params
            .optional_text("container")?
            .unwrap_or(profile.container);

        let mut rate = Rate::choose(
            &profile,
            params.optional_integer("video_bit_rate")?,
            params.optional_integer("quality")?,
        );
        let source_rate = source.video_bit_rate();
        if let Some(source_rate) = source_rate {
            rate = rate.capped(justified(&source, source_rate, size, profile.codec));
        }
        let ten_bit = profile.ten_bit
            || (profile.name == "archive"
                && source
                    .video
                    .pixel_format
                    .as_deref()
                    .is_some_and(|f| f.contains("10") || f.contains("12")));

        let speed = params.text("speed")?;
        let mut encoder = Encoder::new(profile.codec.encoder())
            .pixel_format(if ten_bit { "yuv420p10le" } else { "yuv420p" })
            .option("preset", speed);
        let codec_profile = match (profile.codec, ten_bit) {
            (VideoCodec::H265, true) => Some("main10"),
            (VideoCodec::H265, false) => Some("main"),
            (VideoCodec::H264, _) => profile.codec_profile,
        };
        if let Some(p) = codec_profile {
            encoder = encoder.option("profile", p);
        }
        // A profile is x264's ceiling: ultrafast turns off CABAC, B-frames and 8x8 transforms,
        // so what it writes is Constrained Baseline, and the report says so.
        let written_profile = match (profile.codec, speed) {
            (VideoCodec::H264, "ultrafast") => Some("constrained baseline"),
            _ => codec_profile,
        };
        if let Some(b) = rate.bit_rate {
            encoder = encoder.bit_rate(b);
        }
        if let Some(crf) = rate.crf {
            encoder = encoder.option("crf", crf);
        }
        if let Some(cap) = rate.cap {
            encoder = encoder
                .option("maxrate", (cap * 3 / 2) as i64)
                .option("bufsize", (cap * 2) as i64);
        }
        let mp4_family = container != "mkv";
        if profile.codec == VideoCodec::H265 && mp4_family {
            encoder = encoder.option("tag", "hvc1");
        }

        let picture = video_source::picture(&source, &scan, size);
        let mut output = Output::new("main", container).video(Pad::link("picture"), encoder);
        if mp4_family {
            output = output.muxer_option("movflags", "+faststart");
        }

        let mut finish = Finish::new();
        let audio_codec = match source.audio() {
            None => "none",
            Some(audio) => {
                let (codec, encoder) = match profile.audio {
                    Audio::Aac(default) => {
                        let b = params
                            .optional_integer("audio_bit_rate")?
                            .map_or(default, |b| b as u64);
                        finish = finish.report("audio_bit_rate", b as i64);
                        let channels = audio.channels().clamp(1, 2);
                        ("aac", Encoder::new("aac").bit_rate(b).channels(channels))
                    }
                    // Lossless either way: FLAC in Matroska, ALAC in the MP4 family.
                    Audio::Flac if mp4_family => ("alac", Encoder::new("alac")),
                    Audio::Flac => ("flac", Encoder::new("flac")),
                };
                output = output.audio(Pad::stream(0, audio.index()), encoder);
                codec
            }
        };

        if let Some(b) = rate.bit_rate {
            finish = finish.report("video_bit_rate", b as i64);
        }
        if let Some(crf) = rate.crf {
            finish = finish.report("crf", crf);
        }
        if let Some(b) = source_rate {
            finish = finish.report("source_video_bit_rate", b as i64);
        }
        if let Some(reason) = &rate.capped_because {
            finish = finish.report("bit_rate_reason", reason.as_str());
        }
        if let Some(r) = source.frame_rate() {
            finish = finish.report("frame_rate", rational_text(r));
        }
        log::info(format!(
            "{} {} -> {} {} {}{}",
            display.text(),
            source.stream.codec,
            size.text(),
            profile.codec.name(),
            rate.describe(),
            if scan.interlaced() {
                ", deinterlaced"
            } else {
                ""
            }
        ));
        let step = Step::new("transcode")
            .input(MediaRef::input("main"))
            .chain("picture", picture)
            .output(output);
        Ok(finish
            .step(step)
            .report("profile", profile.name)
            .report("width", size.width)
            .report("height", size.height)
            .report("video_codec", profile.codec.name())
            .report("video_profile", written_profile.unwrap_or("auto"))
            .report("bit_rate_capped", rate.capped_because.is_some())
            .report("audio_codec", audio_codec)
            .report("container", container)
            .report("deinterlaced", scan.interlaced())
            .report("rotation_applied", source.rotation())
            .into())
    }
}

/// How the video's bits are spent: an average bit rate, or constant quality under an optional
/// cap.
#[derive(Debug, Clone, PartialEq)]
struct Rate {
    bit_rate: Option<u64>,
    crf: Option<i64>,
    /// What the VBV caps (maxrate 1.5x, buffer 2x): the average bit rate, or the profile's for
    /// constant quality.
    cap: Option<u64>,
    capped_because: Option<String>,
}

impl Rate {
    fn choose(profile: &profile::Profile, bit_rate: Option<i64>, quality: Option<i64>) -> Rate {
        let bit_rate = bit_rate.map(|b| b as u64).or(profile.bit_rate);
        match quality.or(profile.crf) {
            Some(crf) if quality.is_some() || bit_rate.is_none() => Rate {
                bit_rate: None,
                crf: Some(crf),
                cap: bit_rate,
                capped_because: None,
            },
            _ => Rate {
                bit_rate,
                crf: None,
                cap: bit_rate,
                capped_because: None,
            },
        }
    }

    /// The same rate, its bit rate (or cap) lowered to `justified` when that is less.
    fn capped(self, justified: u64) -> Rate {
        let justified = justified.max(MIN_BIT_RATE);
        match self.cap {
            Some(target) if justified < target => Rate {
                bit_rate: self.bit_rate.map(|_| justified),
                cap: Some(justified),
                capped_because: Some(format!(
                    "the source carries bits for {justified} bit/s at this size and codec, less than the target {target} bit/s"
                )),
                ..self
            },
            _ => self,
        }
    }

    fn describe(&self) -> String {
        match (self.bit_rate, self.crf) {
            (Some(b), _) => format!("at {b} bit/s"),
            (None, Some(crf)) => format!("at CRF {crf}"),
            (None, None) => String::new(),
        }
    }
}

/// The bit rate the source's own bits justify at the output's size and codec: its video bit
/// rate scaled by the share of pixels kept and by the codecs' relative cost.
fn justified(source: &Source, source_rate: u64, size: Size, codec: VideoCodec) -> u64 {
    let display = source.display();
    let source_pixels = f64::from(display.width) * f64::from(display.height);
    let pixels = f64::from(size.width) * f64::from(size.height);
    let share = (pixels / source_pixels.max(1.0)).min(1.0);
    (source_rate as f64 * share * codec.cost() / source_cost(&source.stream.codec)) as u64
}

export_preset!(VideoTranscode);

#[cfg(test)]
mod tests;
