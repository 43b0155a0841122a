//! video-thumbnail: one still of a video, at a time, at a fraction of its length, or chosen:
//! a representative frame that is not black, from the first part of the video.
//!
//! Chosen automatically, round 1 asks for black intervals and scene changes over the first
//! third of the video (at most 120 s). The frame is just after the strongest scene change
//! there that does not land in black (a new shot, fully on screen), else the first moment past
//! a tenth of that window that is not black (past a black lead-in, say). The still is the
//! width asked for (never upscaled), upright, deinterlaced when the source has fields.

mod choose;

use choose::Chosen;
use preset_sdk::*;
use video_source::{Scan, Source, fit_width, scan_analysis};

struct VideoThumbnail;

impl Preset for VideoThumbnail {
    fn describe() -> Descriptor {
        Descriptor::new(
            env!("CARGO_PKG_NAME"),
            env!("CARGO_PKG_VERSION"),
            "One still of a video (JPEG, PNG or WebP): at a time, at a fraction of its length, or a representative non-black frame chosen from its first part.",
        )
        .input("main", "A video.")
        .param(ParamSpec::number("time", "Seconds from the start. Unset: fraction, else chosen.").range(0.0, 86_400.0))
        .param(ParamSpec::number("fraction", "Share of the duration, 0 to 1. Unset: chosen.").range(0.0, 1.0))
        .param(ParamSpec::choice("format", "Image format.", ["jpeg", "png", "webp"]).default("jpeg"))
        .param(
            ParamSpec::integer("width", "Width in pixels; never more than the video's.")
                .range(16, 7680)
                .default(640),
        )
        .param(ParamSpec::integer("quality", "1 (smallest) to 100 (best). Unset: the format's default.").range(1, 100))
    }

    fn plan(request: &PlanRequest) -> Result<Decision, Refusal> {
        let source = Source::of(request, "main")?;
        let params = request.params();
        let asked = choose::Asked::from_params(&params)?;
        if request.round == 1 {
            let mut work = RoundWork::new().analyze(scan_analysis(&source));
            if asked.is_automatic() {
                for analysis in choose::analyses(&source) {
                    work = work.analyze(analysis);
                }
            }
            return Ok(work.into());
        }
        let Chosen { time_s, chosen_by } = choose::time(request, &source, asked)?;
        let scan = Scan::of(request)?;
        let display = source.display();
        let size = fit_width(display, params.integer("width")?.max(2) as u32);
        let mut image = match params.text("format")? {
            "png" => ImageSpec::png(),
            "webp" => ImageSpec::webp(),
            _ => ImageSpec::jpeg(),
        };
        if let Some(q) = params.optional_integer("quality")? {
            image = image.quality(q as u32);
        }
        let encoder = match image.format {
            ImageFormat::Png => "png",
            ImageFormat::Webp => "libwebp",
            _ => "mjpeg",
        };
        let picture = video_source::picture(&source, &scan, size);
        let step = Step::new("thumbnail")
            .input(StepInput::new(MediaRef::input("main")).seek(time_s))
            .chain("picture", picture)
            .output(
                Output::still("thumbnail", image)
                    .video(Pad::link("picture"), Encoder::new(encoder)),
            );
        log::info(format!("{} at {time_s:.3} s ({chosen_by})", size.text()));
        Ok(Finish::new()
            .step(step)
            .report("time_s", video_source::round_to(time_s, 3))
            .report("chosen_by", chosen_by)
            .report("width", size.width)
            .report("height", size.height)
            .report("deinterlaced", scan.interlaced())
            .into())
    }
}

export_preset!(VideoThumbnail);

#[cfg(test)]
mod tests;
