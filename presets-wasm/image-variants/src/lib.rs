//! image-variants: responsive variants of one image: a ladder of widths and custom boxes, each
//! in every format asked for (WebP, JPEG, PNG, AVIF), from one decode per ffmpeg step.
//!
//! The source is turned upright first by its EXIF orientation (the host reports it as the
//! stream tag `exif_orientation` and leaves the turning to the preset), so every size is of the
//! picture as it is shown. Ladder widths keep the aspect and are never upscaled unless asked
//! (a width over the source's is skipped; when none is left, the source's own width is made).
//! Custom boxes are filled as `fit` says: `inside`, `contain` (padded), `cover` (cropped at
//! `position`) or `fill` (stretched). Resampling is lanczos, optionally followed by an unsharp
//! mask. Transparency is kept in PNG and WebP; AVIF always drops metadata (the host converts
//! to sRGB first).
//!
//! The plan is one round: the image's header says everything needed.

mod asked;
mod geometry;
mod graph;
mod source;

use asked::{Background, Fit, Format, Position};
use geometry::{Skipped, Variant};
use graph::Finishing;
use preset_sdk::*;
use source::Image;

struct ImageVariants;

impl Preset for ImageVariants {
    fn describe() -> Descriptor {
        Descriptor::new(
            env!("CARGO_PKG_NAME"),
            env!("CARGO_PKG_VERSION"),
            "Responsive variants of one image: a ladder of widths and custom WxH boxes (inside, contain, cover, fill), each in WebP, JPEG, PNG and/or AVIF, upright by its EXIF orientation, lanczos-resampled, never upscaled unless asked.",
        )
        .input(
            "main",
            "One still image: JPEG, PNG, WebP, TIFF, BMP or GIF (its first frame).",
        )
        .param(
            ParamSpec::text(
                "widths",
                "The ladder: up to 10 widths in pixels (16 to 8192), comma-separated; each variant keeps the image's aspect. Outputs are named w<width>-<format>. Empty: custom sizes only.",
            )
            .max_length(128)
            .default("320,640,1280,1920,2560"),
        )
        .param(
            ParamSpec::text(
                "sizes",
                "Custom boxes as WIDTHxHEIGHT, comma-separated, up to 8 (each side 16 to 8192), like '400x300,1200x630', filled as 'fit' says. Outputs are named <W>x<H>-<format>.",
            )
            .max_length(128)
            .default(""),
        )
        .param(
            ParamSpec::choice(
                "fit",
                "How a custom box is filled: inside = within the box keeping the aspect, no padding (the output may be smaller than the box); contain = within the box, padded to exactly WxH with 'background'; cover = fills the box keeping the aspect, cropped to WxH at 'position'; fill = stretched to exactly WxH.",
                asked::FITS,
            )
            .default("inside"),
        )
        .param(
            ParamSpec::choice(
                "position",
                "Where cover crops (the part of the image kept) and where contain places the image within its padding.",
                asked::POSITIONS,
            )
            .default("center"),
        )
        .param(
            ParamSpec::choice(
                "background",
                "contain's padding. Transparent only in PNG and WebP; JPEG and AVIF outputs are padded white instead.",
                asked::BACKGROUNDS,
            )
            .default("white"),
        )
        .param(
            ParamSpec::boolean(
                "upscale",
                "Allow variants larger than the source. Off: a ladder width wider than the source is skipped (the source's own width is made when none is left), inside and contain stop at the source's size, and a cover or fill box larger than the source is scaled down, keeping its aspect, to fit within it.",
            )
            .default(false),
        )
        .param(
            ParamSpec::text(
                "formats",
                "Output formats, comma-separated, from webp, jpeg, png and avif; every variant is made in each.",
            )
            .max_length(64)
            .default("webp"),
        )
        .param(
            ParamSpec::integer("jpeg_quality", "JPEG quality, 1 (smallest) to 100 (best).")
                .range(1, 100)
                .default(85),
        )
        .param(
            ParamSpec::integer("webp_quality", "WebP quality, 1 (smallest) to 100 (best).")
                .range(1, 100)
                .default(80),
        )
        .param(
            ParamSpec::integer("avif_quality", "AVIF quality, 1 (smallest) to 100 (best).")
                .range(1, 100)
                .default(60),
        )
        .param(
            ParamSpec::number(
                "sharpen",
                "Unsharp mask after downscaling (5x5 luma), 0 (off) to 2. Not applied to PNG and WebP outputs that keep transparency.",
            )
            .range(0.0, 2.0)
            .default(0.0),
        )
        .param(
            ParamSpec::choice(
                "metadata",
                "keep: the source's EXIF (orientation reset to 1), XMP and ICC profile are copied into each image; strip: dropped, the pixels converted to sRGB first. AVIF outputs are always stripped.",
                ["keep", "strip"],
            )
            .default("keep"),
        )
        .param(
            ParamSpec::integer(
                "max_megapixels",
                "Refuse a source of more than this many million pixels, before decoding it.",
            )
            .range(1, 100)
            .default(50),
        )
    }

    fn plan(request: &PlanRequest) -> Result<Decision, Refusal> {
        let params = request.params();
        let image = Image::of(request, "main", params.integer("max_megapixels")?)?;
        let widths = asked::widths(params.text("widths")?)?;
        let sizes = asked::sizes(params.optional_text("sizes")?.unwrap_or(""))?;
        let formats = asked::formats(params.text("formats")?)?;
        if widths.is_empty() && sizes.is_empty() {
            return Err(refuse(
                "NO_VARIANTS",
                "widths and sizes are both empty: give at least one width or one size",
            ));
        }
        let fit = Fit::from_word(params.text("fit")?);
        let position = Position::from_word(params.text("position")?);
        let background = Background::from_word(params.text("background")?);
        let upscale = params.boolean("upscale")?;
        let strip = params.text("metadata")? == "strip";
        let qualities = [
            params.integer("jpeg_quality")?,
            params.integer("webp_quality")?,
            params.integer("avif_quality")?,
        ]
        .map(|q| q.clamp(1, 100) as u32);
        let sharpen = params.number("sharpen")?.clamp(0.0, 2.0);

        let upright = image.upright();
        let (mut variants, mut skipped) = geometry::ladder(upright, &widths, upscale);
        for boxed in &sizes {
            match geometry::custom(upright, *boxed, fit, position, upscale) {
                Ok(variant) => variants.push(variant),
                Err(why) => skipped.push(why),
            }
        }
        if variants.is_empty() {
            return Err(refuse(
                "NO_VARIANTS",
                format!(
                    "no variant can be made of the {} image: {}",
                    upright.text(),
                    skipped_text(&skipped)
                ),
            ));
        }

        let spec = |format: Format| {
            let mut spec = ImageSpec::new(format.image_format());
            spec = match format {
                Format::Jpeg => spec.quality(qualities[0]),
                Format::Webp => spec.quality(qualities[1]),
                Format::Avif => spec.quality(qualities[2]),
                Format::Png => spec,
            };
            // AVIF carries no metadata in this host; stripping it is what converts to sRGB.
            if strip || format == Format::Avif {
                spec = spec.strip_metadata();
            }
            spec
        };
        let finishing = Finishing {
            formats: &formats,
            background,
            sharpen,
            alpha: image.alpha,
            spec: &spec,
        };
        let steps = graph::steps(&image, &variants, &finishing)?;

        let mut notes: Vec<String> = variants
            .iter()
            .filter_map(|v| v.note.as_ref().map(|n| format!("{}: {n}", v.name)))
            .collect();
        let opaque_formats = || {
            formats
                .iter()
                .filter(|f| !f.keeps_alpha())
                .map(|f| f.name())
                .collect::<Vec<_>>()
                .join(" and ")
        };
        if image.alpha && formats.iter().any(|f| !f.keeps_alpha()) {
            notes.push(format!(
                "the source's transparency is dropped in {}, which cannot hold it",
                opaque_formats()
            ));
        }
        if background == Background::Transparent
            && variants.iter().any(|v| v.pad.is_some())
            && formats.iter().any(|f| !f.keeps_alpha())
        {
            notes.push(format!(
                "{} cannot be transparent: their padding is white",
                opaque_formats()
            ));
        }
        if finishing.sharpen_skipped(&variants) {
            notes.push(
                "PNG and WebP outputs that keep transparency are not sharpened (ffmpeg's \
                 unsharp has no alpha)"
                    .into(),
            );
        }

        let outputs = variants.len() * formats.len();
        log::info(format!(
            "{} image ({}), orientation {}: {} variants x {} formats = {outputs} outputs in {} steps",
            upright.text(),
            image.stream.codec,
            image.orientation.value(),
            variants.len(),
            formats.len(),
            steps.len()
        ));
        let mut finish = Finish::new();
        for step in steps.iter().cloned() {
            finish = finish.step(step);
        }
        finish = finish
            .report(
                "source",
                format!("{} {}", image.stored.text(), image.stream.codec),
            )
            .report("source_width", upright.width)
            .report("source_height", upright.height)
            .report("orientation", i64::from(image.orientation.value()))
            .report("orientation_fix", image.orientation.text())
            .report(
                "variants",
                variants
                    .iter()
                    .map(|v| v.name.as_str())
                    .collect::<Vec<_>>()
                    .join(","),
            )
            .report("outputs", outputs as i64)
            .report("steps", steps.len() as i64);
        if !sizes.is_empty() {
            finish = finish.report("fit", fit.name());
        }
        for variant in &variants {
            finish = finish.report(variant.name.clone(), variant_text(variant, &formats, &spec));
        }
        if !skipped.is_empty() {
            finish = finish.report("skipped", skipped_text(&skipped));
        }
        if formats.contains(&Format::Avif) && !strip {
            finish = finish.report(
                "avif_metadata",
                "strip: AVIF outputs carry no metadata in this host (pixels converted to sRGB)",
            );
        }
        if !notes.is_empty() {
            finish = finish.report("notes", notes.join("; "));
        }
        Ok(finish.into())
    }
}

/// A variant as the report says it:
/// `640x480: w640-webp webp q80 metadata keep, w640-png png lossless metadata keep`.
fn variant_text(
    variant: &Variant,
    formats: &[Format],
    spec: &dyn Fn(Format) -> ImageSpec,
) -> String {
    let outputs: Vec<String> = formats
        .iter()
        .map(|format| {
            let spec = spec(*format);
            let quality = spec
                .quality
                .map_or("lossless".to_owned(), |q| format!("q{q}"));
            let metadata = match spec.metadata {
                ImageMetadata::Keep => "keep",
                ImageMetadata::Strip => "strip",
            };
            format!(
                "{} {} {quality} metadata {metadata}",
                graph::output_name(variant, *format),
                format.name()
            )
        })
        .collect();
    format!("{}: {}", variant.size.text(), outputs.join(", "))
}

fn skipped_text(skipped: &[Skipped]) -> String {
    skipped
        .iter()
        .map(|s| format!("{}: {}", s.name, s.reason))
        .collect::<Vec<_>>()
        .join("; ")
}

export_preset!(ImageVariants);

#[cfg(test)]
mod tests;
