//! What each variant's picture is: the size it is scaled to, what is cropped off or padded on,
//! and the size it ends at, from the upright source's size. Pure arithmetic in whole pixels.
//!
//! Images need no even sides: a width W of a WxH source is `round(H * W / width)` tall (at least
//! one pixel), exactly.
//!
//! Not here: reading the params ([`crate::asked`]) or the filters ([`crate::graph`]).

use crate::asked::{Fit, MAX_SIDE, Position};

/// A picture size in pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Size {
    pub width: u32,
    pub height: u32,
}

impl Size {
    pub fn new(width: u32, height: u32) -> Size {
        Size { width, height }
    }

    /// `1280x720`.
    pub fn text(&self) -> String {
        format!("{}x{}", self.width, self.height)
    }

    fn pixels(&self) -> u64 {
        u64::from(self.width) * u64::from(self.height)
    }

    fn fits_in(&self, other: Size) -> bool {
        self.width <= other.width && self.height <= other.height
    }
}

/// A rectangle of `size` at (`x`, `y`): what `crop` keeps, or where `pad` puts the picture in
/// a canvas of `size`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rect {
    pub size: Size,
    pub x: u32,
    pub y: u32,
}

/// A step of a variant's geometry, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// Resample to this size (lanczos).
    Scale(Size),
    /// Keep this part.
    Crop(Rect),
}

/// One picture the job makes, in every format asked for.
#[derive(Debug, Clone, PartialEq)]
pub struct Variant {
    /// `w640` for a ladder width, `400x300` for a custom box; outputs add `-<format>`.
    pub name: String,
    /// Scale, and for `cover` a crop, in the order they run.
    pub ops: Vec<Op>,
    /// `contain`: the canvas the picture is padded to, and where the picture sits in it.
    pub pad: Option<Rect>,
    /// The output's size.
    pub size: Size,
    /// Resampled to fewer pixels than it was: sharpening applies.
    pub downscaled: bool,
    /// What changed from what was asked, for the report.
    pub note: Option<String>,
}

impl Variant {
    /// The picture of `from` pixels scaled to `scale`, and nothing else.
    fn scaled(name: String, from: Size, scale: Size) -> Variant {
        Variant {
            name,
            ops: vec![Op::Scale(scale)],
            pad: None,
            size: scale,
            downscaled: scale.pixels() < from.pixels(),
            note: None,
        }
    }

    /// Whether every size and offset is one the host's filters take (at most `MAX_SIDE`).
    fn fits_filters(&self) -> bool {
        let ok = |r: &Rect| r.size.fits_in(LIMIT) && r.x <= MAX_SIDE && r.y <= MAX_SIDE;
        self.size.fits_in(LIMIT)
            && self.pad.as_ref().is_none_or(ok)
            && self.ops.iter().all(|op| match op {
                Op::Scale(size) => size.fits_in(LIMIT),
                Op::Crop(rect) => ok(rect),
            })
    }
}

const LIMIT: Size = Size {
    width: MAX_SIDE,
    height: MAX_SIDE,
};

/// A variant left out, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Skipped {
    pub name: String,
    pub reason: String,
}

/// `round(a * b / c)` in whole numbers, at least 1.
fn scaled(a: u32, b: u32, c: u32) -> u32 {
    let (a, b, c) = (u64::from(a), u64::from(b), u64::from(c.max(1)));
    ((2 * a * b + c) / (2 * c)).clamp(1, u64::from(u32::MAX)) as u32
}

/// The size of `source` at width `width`, aspect kept.
pub fn at_width(source: Size, width: u32) -> Size {
    Size::new(width, scaled(source.height, width, source.width))
}

/// The ladder: each width with its height. Without `upscale` a width over the source's is
/// skipped, and when that leaves none, the source's own width is the one variant. A width whose
/// height would pass `MAX_SIDE` is skipped too.
pub fn ladder(source: Size, widths: &[u32], upscale: bool) -> (Vec<Variant>, Vec<Skipped>) {
    let mut variants = Vec::new();
    let mut skipped = Vec::new();
    let too_tall =
        |size: Size| format!("{} px tall at that width; at most {MAX_SIDE}", size.height);
    for &width in widths {
        let size = at_width(source, width);
        let reason = if !upscale && width > source.width {
            format!("wider than the {} px source (upscale is off)", source.width)
        } else if size.height > MAX_SIDE {
            too_tall(size)
        } else {
            variants.push(Variant::scaled(format!("w{width}"), source, size));
            continue;
        };
        skipped.push(Skipped {
            name: format!("w{width}"),
            reason,
        });
    }
    if variants.is_empty() && !skipped.is_empty() && !upscale {
        let own = source;
        if own.fits_in(LIMIT) {
            let mut variant = Variant::scaled(format!("w{}", own.width), source, own);
            variant.note = Some(format!(
                "every width is wider than the source, so the source's own width, {}",
                own.width
            ));
            variants.push(variant);
        }
    }
    (variants, skipped)
}

/// A custom box, filled as `fit` says. Without `upscale`, `inside` and `contain` never scale
/// above 1x, and a `cover` or `fill` box larger than the source is scaled down (its aspect
/// kept) until it fits within the source. `Err` when the picture cannot be made within the
/// filters' limits (a `cover` of a very wide or tall source).
pub fn custom(
    source: Size,
    boxed: Size,
    fit: Fit,
    position: Position,
    upscale: bool,
) -> Result<Variant, Skipped> {
    let name = boxed.text();
    let variant = match fit {
        Fit::Inside => Variant::scaled(name.clone(), source, inside(source, boxed, upscale)),
        Fit::Contain => {
            let picture = inside(source, boxed, upscale);
            let mut variant = Variant::scaled(name.clone(), source, picture);
            if picture != boxed {
                let (x, y) = position.offset(boxed, picture);
                variant.pad = Some(Rect { size: boxed, x, y });
            }
            variant.size = boxed;
            variant
        }
        Fit::Cover | Fit::Fill => {
            let (target, note) = if !upscale && !boxed.fits_in(source) {
                let reduced = within(boxed, source);
                let note = format!(
                    "the {} box is larger than the {} source, so it is scaled down to {} \
                     (upscale is off)",
                    boxed.text(),
                    source.text(),
                    reduced.text()
                );
                (reduced, Some(note))
            } else {
                (boxed, None)
            };
            let mut variant = if fit == Fit::Fill {
                Variant::scaled(name.clone(), source, target)
            } else {
                covered(name.clone(), source, target, position)
            };
            variant.note = note;
            variant
        }
    };
    if variant.fits_filters() {
        Ok(variant)
    } else {
        Err(Skipped {
            name,
            reason: format!(
                "{} {} of the {} source needs a picture over {MAX_SIDE} px on a side",
                fit.name(),
                boxed.text(),
                source.text()
            ),
        })
    }
}

/// `source` covering `target` and cropped to it at `position`: scaled first, then cropped;
/// cropped first (in the source's pixels), then scaled, when the scaled picture would pass
/// `MAX_SIDE` (a square from a wide panorama).
fn covered(name: String, source: Size, target: Size, position: Position) -> Variant {
    let scale = cover(source, target);
    let mut variant = Variant::scaled(name.clone(), source, scale);
    variant.size = target;
    if scale == target {
        return variant;
    }
    let (x, y) = position.offset(scale, target);
    variant.ops.push(Op::Crop(Rect { size: target, x, y }));
    if variant.fits_filters() {
        return variant;
    }
    let region = within(target, source);
    let (x, y) = position.offset(source, region);
    let mut variant = Variant::scaled(name, region, target);
    variant.ops.insert(0, Op::Crop(Rect { size: region, x, y }));
    variant
}

/// The largest size of `source`'s aspect within `boxed`; never above `source` unless
/// `upscale`.
fn inside(source: Size, boxed: Size, upscale: bool) -> Size {
    // Width binds when boxed.width / source.width <= boxed.height / source.height.
    let width_binds = u64::from(boxed.width) * u64::from(source.height)
        <= u64::from(boxed.height) * u64::from(source.width);
    let size = if width_binds {
        Size::new(
            boxed.width,
            scaled(source.height, boxed.width, source.width).min(boxed.height),
        )
    } else {
        Size::new(
            scaled(source.width, boxed.height, source.height).min(boxed.width),
            boxed.height,
        )
    };
    if !upscale && !size.fits_in(source) {
        source
    } else {
        size
    }
}

/// The smallest size of `source`'s aspect that covers `boxed`.
fn cover(source: Size, boxed: Size) -> Size {
    let width_binds = u64::from(boxed.width) * u64::from(source.height)
        >= u64::from(boxed.height) * u64::from(source.width);
    if width_binds {
        Size::new(
            boxed.width,
            scaled(source.height, boxed.width, source.width).max(boxed.height),
        )
    } else {
        Size::new(
            scaled(source.width, boxed.height, source.height).max(boxed.width),
            boxed.height,
        )
    }
}

/// `boxed` scaled down, its aspect kept, until it fits within `limit`.
fn within(boxed: Size, limit: Size) -> Size {
    let width_binds = u64::from(limit.width) * u64::from(boxed.height)
        <= u64::from(limit.height) * u64::from(boxed.width);
    if width_binds {
        Size::new(
            limit.width,
            scaled(boxed.height, limit.width, boxed.width).min(limit.height),
        )
    } else {
        Size::new(
            scaled(boxed.width, limit.height, boxed.height).min(limit.width),
            limit.height,
        )
    }
}
