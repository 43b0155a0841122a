//! What the params ask for, read and checked: the ladder widths, the custom boxes, the formats,
//! and the words of `fit`, `position` and `background`.
//!
//! The params system has no lists, so `widths`, `sizes` and `formats` are comma-separated text;
//! a malformed one is refused with a code of its own and what a good value looks like.
//!
//! Not here: what the sizes come to for a given source ([`crate::geometry`]).

use preset_sdk::*;

use crate::geometry::Size;

/// The most ladder widths and custom boxes, and the bounds of their sides in pixels.
pub const MAX_WIDTHS: usize = 10;
pub const MAX_SIZES: usize = 8;
pub const MIN_SIDE: u32 = 16;
pub const MAX_SIDE: u32 = 8192;

pub const FITS: [&str; 4] = ["inside", "contain", "cover", "fill"];
pub const POSITIONS: [&str; 9] = [
    "center",
    "top",
    "bottom",
    "left",
    "right",
    "top-left",
    "top-right",
    "bottom-left",
    "bottom-right",
];
pub const BACKGROUNDS: [&str; 3] = ["white", "black", "transparent"];

/// An output image format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Webp,
    Jpeg,
    Png,
    Avif,
}

impl Format {
    pub fn name(self) -> &'static str {
        match self {
            Format::Webp => "webp",
            Format::Jpeg => "jpeg",
            Format::Png => "png",
            Format::Avif => "avif",
        }
    }

    /// The encoder the host requires for the format (and sets the quality of).
    pub fn encoder(self) -> &'static str {
        match self {
            Format::Webp => "libwebp",
            Format::Jpeg => "mjpeg",
            Format::Png => "png",
            Format::Avif => "libaom-av1",
        }
    }

    pub fn image_format(self) -> ImageFormat {
        match self {
            Format::Webp => ImageFormat::Webp,
            Format::Jpeg => ImageFormat::Jpeg,
            Format::Png => ImageFormat::Png,
            Format::Avif => ImageFormat::Avif,
        }
    }

    /// Whether this host's encoder for it keeps an alpha channel (ffmpeg 5.1's libaom-av1
    /// takes no alpha, so AVIF does not).
    pub fn keeps_alpha(self) -> bool {
        matches!(self, Format::Webp | Format::Png)
    }
}

/// How a custom box is filled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fit {
    /// Within the box, aspect kept, no padding.
    Inside,
    /// Within the box, aspect kept, padded to the box.
    Contain,
    /// Covering the box, aspect kept, cropped to the box.
    Cover,
    /// Stretched to the box.
    Fill,
}

impl Fit {
    pub fn from_word(word: &str) -> Fit {
        match word {
            "contain" => Fit::Contain,
            "cover" => Fit::Cover,
            "fill" => Fit::Fill,
            _ => Fit::Inside,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Fit::Inside => "inside",
            Fit::Contain => "contain",
            Fit::Cover => "cover",
            Fit::Fill => "fill",
        }
    }
}

/// Where a crop or the picture within its padding sits, per axis in halves of the slack:
/// 0 at the start (left, top), 1 in the middle, 2 at the end (right, bottom).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    pub x_halves: u32,
    pub y_halves: u32,
}

impl Position {
    pub fn from_word(word: &str) -> Position {
        let x_halves = if word.contains("left") {
            0
        } else if word.contains("right") {
            2
        } else {
            1
        };
        let y_halves = if word.starts_with("top") {
            0
        } else if word.starts_with("bottom") {
            2
        } else {
            1
        };
        Position { x_halves, y_halves }
    }

    /// The offset of a `size` within `space` at this position, in whole pixels.
    pub fn offset(self, space: Size, size: Size) -> (u32, u32) {
        let at = |slack: u32, halves: u32| slack.saturating_mul(halves) / 2;
        (
            at(space.width.saturating_sub(size.width), self.x_halves),
            at(space.height.saturating_sub(size.height), self.y_halves),
        )
    }
}

/// What `contain` pads with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Background {
    White,
    Black,
    Transparent,
}

impl Background {
    pub fn from_word(word: &str) -> Background {
        match word {
            "black" => Background::Black,
            "transparent" => Background::Transparent,
            _ => Background::White,
        }
    }

    /// `pad`'s colour for an output that keeps alpha or not: transparent padding only where
    /// the format can hold it, white elsewhere.
    pub fn pad_color(self, alpha: bool) -> &'static str {
        match (self, alpha) {
            (Background::Black, _) => "black",
            (Background::Transparent, true) => "black@0",
            _ => "white",
        }
    }
}

/// The ladder: `widths` as text, `320,640,1280`. Empty is no ladder. Sorted, repeats dropped.
pub fn widths(text: &str) -> Result<Vec<u32>, Refusal> {
    let invalid = |why: String| {
        refuse(
            "WIDTHS_INVALID",
            format!(
                "widths '{text}' {why}: give 1 to {MAX_WIDTHS} widths in pixels, each \
                 {MIN_SIDE} to {MAX_SIDE}, separated by commas, like '320,640,1280'"
            ),
        )
    };
    let mut widths = Vec::new();
    for item in items(text) {
        let item = item.map_err(|_| invalid("has an empty entry".into()))?;
        let width = side(item).map_err(|why| invalid(format!("has '{item}', which {why}")))?;
        widths.push(width);
    }
    widths.sort_unstable();
    widths.dedup();
    if widths.len() > MAX_WIDTHS {
        return Err(invalid(format!("has {} widths", widths.len())));
    }
    Ok(widths)
}

/// The custom boxes: `sizes` as text, `400x300,1200x630`. Empty is none. Repeats dropped.
pub fn sizes(text: &str) -> Result<Vec<Size>, Refusal> {
    let invalid = |why: String| {
        refuse(
            "SIZES_INVALID",
            format!(
                "sizes '{text}' {why}: give up to {MAX_SIZES} boxes as WIDTHxHEIGHT in pixels, \
                 each side {MIN_SIDE} to {MAX_SIDE}, separated by commas, like '400x300,1200x630'"
            ),
        )
    };
    let mut sizes = Vec::new();
    for item in items(text) {
        let item = item.map_err(|_| invalid("has an empty entry".into()))?;
        let (w, h) = item
            .split_once(['x', 'X'])
            .ok_or_else(|| invalid(format!("has '{item}', which is not WIDTHxHEIGHT")))?;
        let w = side(w.trim()).map_err(|why| invalid(format!("has '{item}': its width {why}")))?;
        let h = side(h.trim()).map_err(|why| invalid(format!("has '{item}': its height {why}")))?;
        let size = Size::new(w, h);
        if !sizes.contains(&size) {
            sizes.push(size);
        }
    }
    if sizes.len() > MAX_SIZES {
        return Err(invalid(format!("has {} boxes", sizes.len())));
    }
    Ok(sizes)
}

/// The formats: `formats` as text, `webp,jpeg`, in the order given, repeats dropped; `jpg`
/// is read as `jpeg`.
pub fn formats(text: &str) -> Result<Vec<Format>, Refusal> {
    let invalid = |why: String| {
        refuse(
            "FORMATS_INVALID",
            format!(
                "formats '{text}' {why}: give one or more of webp, jpeg, png and avif, \
                 separated by commas, like 'webp,jpeg'"
            ),
        )
    };
    let mut formats = Vec::new();
    for item in items(text) {
        let item = item.map_err(|_| invalid("has an empty entry".into()))?;
        let format = match item.to_ascii_lowercase().as_str() {
            "webp" => Format::Webp,
            "jpeg" | "jpg" => Format::Jpeg,
            "png" => Format::Png,
            "avif" => Format::Avif,
            _ => return Err(invalid(format!("has '{item}', which is not a format"))),
        };
        if !formats.contains(&format) {
            formats.push(format);
        }
    }
    if formats.is_empty() {
        return Err(invalid("names no format".into()));
    }
    Ok(formats)
}

/// The trimmed items of a comma list; nothing for blank text; `Err` for an empty item
/// (`320,,640`), though one trailing comma is forgiven.
fn items(text: &str) -> impl Iterator<Item = Result<&str, ()>> {
    let text = text.trim();
    let text = text.strip_suffix(',').unwrap_or(text);
    text.split(',')
        .filter(move |_| !text.trim().is_empty())
        .map(|item| {
            let item = item.trim();
            if item.is_empty() { Err(()) } else { Ok(item) }
        })
}

/// One side in pixels, `MIN_SIDE` to `MAX_SIDE`.
fn side(text: &str) -> Result<u32, String> {
    let value: u32 = text
        .parse()
        .map_err(|_| "is not a whole number".to_owned())?;
    if !(MIN_SIDE..=MAX_SIDE).contains(&value) {
        return Err(format!("is outside {MIN_SIDE} to {MAX_SIDE}"));
    }
    Ok(value)
}
