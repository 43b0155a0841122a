//! sprite-sheet: thumbnails of a video every N seconds (or N of them over its length), tiled
//! into sheets, with the indexes players read: WebVTT cues pointing at `sheet_001.jpg#xywh=x,y,w,h`
//! (video.js, Plyr, Shaka, JW Player) and a JSON index (time, sheet, row, column).
//!
//! Only what the tiles need is decoded. A sheet of at most 16 tiles is one ffmpeg with one
//! input per tile, each seeking to its time (decoding from the keyframe before it) and keeping
//! one frame; the frames are joined and tiled. A larger grid decodes its sheet's stretch of the
//! video once, keeping a frame per interval. One step per sheet, at most 16 sheets.

mod index;
mod layout;

use layout::Layout;
use preset_sdk::*;
use video_source::{Scan, Source, fit_width, scan_analysis};

struct SpriteSheet;

/// The most inputs a step reads, so the most tiles a sheet may seek to.
const MAX_SEEK_TILES: u32 = 16;

impl Preset for SpriteSheet {
    fn describe() -> Descriptor {
        Descriptor::new(
            env!("CARGO_PKG_NAME"),
            env!("CARGO_PKG_VERSION"),
            "Thumbnails every N seconds tiled into sprite sheets (JPEG or WebP), with a WebVTT #xywh index and a JSON index.",
        )
        .input("main", "A video.")
        .param(
            ParamSpec::number("interval", "Seconds between thumbnails.")
                .range(0.1, 3600.0)
                .default(10.0),
        )
        .param(
            ParamSpec::integer(
                "count",
                "This many thumbnails spread evenly over the video, instead of an interval.",
            )
            .range(1, 1000),
        )
        .param(ParamSpec::integer("columns", "Tiles across a sheet.").range(1, 32).default(4))
        .param(ParamSpec::integer("rows", "Tiles down a sheet.").range(1, 32).default(4))
        .param(
            ParamSpec::integer("tile_width", "Width of a tile in pixels; its height follows the video's shape.")
                .range(16, 1024)
                .default(160),
        )
        .param(ParamSpec::choice("format", "Sheet image format.", ["jpeg", "webp"]).default("jpeg"))
        .param(ParamSpec::integer("quality", "1 (smallest) to 100 (best). Unset: the format's default.").range(1, 100))
    }

    fn plan(request: &PlanRequest) -> Result<Decision, Refusal> {
        let source = Source::of(request, "main")?;
        if request.round == 1 {
            return Ok(RoundWork::new().analyze(scan_analysis(&source)).into());
        }
        let params = request.params();
        let scan = Scan::of(request)?;
        let duration = source.duration_s().ok_or_else(|| {
            refuse(
                "NO_DURATION",
                "the video's duration is unknown, so the thumbnails' times are too",
            )
        })?;
        let tile = fit_width(source.display(), params.integer("tile_width")? as u32);
        let layout = Layout::new(
            duration,
            source.last_still_s().unwrap_or(duration),
            params.number("interval")?,
            params.optional_integer("count")?,
            params.integer("columns")? as u32,
            params.integer("rows")? as u32,
            tile,
        )?;
        let mut image = match params.text("format")? {
            "webp" => ImageSpec::webp(),
            _ => ImageSpec::jpeg(),
        };
        if let Some(q) = params.optional_integer("quality")? {
            image = image.quality(q as u32);
        }
        let encoder = if image.format == ImageFormat::Webp {
            "libwebp"
        } else {
            "mjpeg"
        };
        let seek = layout.cells() <= MAX_SEEK_TILES;

        let mut finish = Finish::new();
        for sheet in 0..layout.sheets() {
            let step = if seek {
                layout.seek_step(sheet, &source, &scan)
            } else {
                layout.span_step(sheet, &source, &scan)
            };
            let output = Output::still(Layout::sheet_name(sheet), image)
                .video(Pad::link("sheet"), Encoder::new(encoder));
            finish = finish.step(step.output(output));
        }
        log::info(format!(
            "{} thumbnails of {} every {:.3} s on {} sheets of {}x{} ({})",
            layout.times.len(),
            tile.text(),
            layout.interval_s,
            layout.sheets(),
            layout.columns,
            layout.rows,
            if seek { "seeking" } else { "decoding spans" }
        ));
        Ok(finish
            .document(Document::webvtt("thumbnails", index::webvtt(&layout)))
            .document(Document::json("index", index::json(&layout).text()))
            .report("thumbnails", layout.times.len() as i64)
            .report("sheets", layout.sheets() as i64)
            .report("tile_width", tile.width)
            .report("tile_height", tile.height)
            .report("interval_s", video_source::round_to(layout.interval_s, 3))
            .report("decode", if seek { "seek" } else { "span" })
            .report("deinterlaced", scan.interlaced())
            .into())
    }
}

export_preset!(SpriteSheet);

#[cfg(test)]
mod tests;
