//! The source image: whether the input is one still image at all, its size as it is displayed
//! (after its EXIF orientation), and whether it has transparency.
//!
//! Not here: the sizes of the variants ([`crate::geometry`]) or the filters that make them
//! ([`crate::graph`]).

use preset_sdk::*;

use crate::geometry::Size;

/// Codecs (as ffprobe names them) of the still images this preset reads.
pub const IMAGE_CODECS: [&str; 6] = ["mjpeg", "png", "webp", "tiff", "bmp", "gif"];

/// The stream tag the host's probe sets from the image's EXIF orientation (JPEG APP1 Exif, PNG
/// eXIf, WebP EXIF), "1" to "8". The host turns ffmpeg's own autorotation off for the input, so
/// the preset applies it, once.
pub const ORIENTATION_TAG: &str = "exif_orientation";

/// One still image, as the plan needs it.
pub struct Image<'a> {
    pub stream: &'a StreamInfo,
    /// The coded picture, as stored.
    pub stored: Size,
    /// The EXIF orientation, 1 (none) to 8.
    pub orientation: Orientation,
    /// Whether its pixels carry alpha (or a palette that may be transparent).
    pub alpha: bool,
}

impl<'a> Image<'a> {
    /// The single image of input `name`; `NOT_AN_IMAGE` when it is anything else, and
    /// `SOURCE_TOO_LARGE` when it has more than `max_megapixels` million pixels (ffprobe reads
    /// the size from the header, so nothing has been decoded yet).
    pub fn of(
        request: &'a PlanRequest,
        name: &str,
        max_megapixels: i64,
    ) -> Result<Image<'a>, Refusal> {
        let info = request.input(name)?;
        let not_an_image = |what: String| {
            refuse(
                "NOT_AN_IMAGE",
                format!(
                    "input '{name}' {what}; give one still image: JPEG, PNG, WebP, TIFF, BMP or \
                     GIF (its first frame)"
                ),
            )
        };
        if info.audio_streams().next().is_some() {
            return Err(not_an_image("has audio, so it is not a still image".into()));
        }
        let [stream] = info.streams.as_slice() else {
            return Err(not_an_image(format!(
                "has {} streams; an image has exactly one",
                info.streams.len()
            )));
        };
        let Some(video) = stream.video() else {
            return Err(not_an_image("has no picture".into()));
        };
        if !IMAGE_CODECS.contains(&stream.codec.as_str()) {
            return Err(not_an_image(format!(
                "is {} video, not an image",
                stream.codec
            )));
        }
        // Motion JPEG in AVI or MOV, or a raw Motion JPEG stream, is video with the same codec:
        // only an image demuxer's single picture counts.
        if !info
            .container
            .format_names
            .iter()
            .any(|f| is_image_format(f))
        {
            return Err(not_an_image(format!(
                "is a {} file; its {} stream is video, not one image",
                info.container.format_names.join("/"),
                stream.codec
            )));
        }
        if video.width == 0 || video.height == 0 {
            return Err(not_an_image("has no picture size".into()));
        }
        let pixels = u64::from(video.width) * u64::from(video.height);
        let cap = max_megapixels.max(1) as u64 * 1_000_000;
        if pixels > cap {
            return Err(refuse(
                "SOURCE_TOO_LARGE",
                format!(
                    "input '{name}' is {}x{} ({:.1} megapixels), more than max_megapixels \
                     {max_megapixels}: raise max_megapixels (up to 100) or send a smaller image",
                    video.width,
                    video.height,
                    pixels as f64 / 1e6
                ),
            ));
        }
        Ok(Image {
            stream,
            stored: Size::new(video.width, video.height),
            orientation: Orientation::of(stream),
            alpha: video.pixel_format.as_deref().is_some_and(has_alpha),
        })
    }

    /// A pad of the image's stream in a step whose first input is the source.
    pub fn pad(&self) -> Pad {
        Pad::stream(0, self.stream.index)
    }

    /// The picture as it is displayed: upright, sides swapped for the quarter turns.
    pub fn upright(&self) -> Size {
        if self.orientation.swaps_sides() {
            Size::new(self.stored.height, self.stored.width)
        } else {
            self.stored
        }
    }
}

/// Demuxers that read one picture from an image file: `jpeg_pipe`, `png_pipe`, `webp_pipe`,
/// `tiff_pipe`, `bmp_pipe`, `gif_pipe`, `image2` (one file), and `gif` for GIF. Not
/// `image2pipe`, which reads a run of images.
fn is_image_format(name: &str) -> bool {
    name.ends_with("_pipe") || name == "image2" || name == "gif"
}

/// Whether ffmpeg's pixel format `name` carries alpha; a palette may be transparent (PNG
/// with tRNS), so it counts.
fn has_alpha(name: &str) -> bool {
    ["yuva", "rgba", "bgra", "argb", "abgr", "gbrap", "ya"]
        .iter()
        .any(|p| name.starts_with(p))
        || name == "pal8"
}

/// An EXIF orientation: how the stored picture is turned to be shown upright.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Orientation(u8);

impl Orientation {
    /// Upright as stored.
    pub const NONE: Orientation = Orientation(1);

    /// The stream's `exif_orientation` tag; 1 when it is absent or not 1 to 8 (as browsers
    /// treat a value EXIF does not define).
    pub fn of(stream: &StreamInfo) -> Orientation {
        stream
            .tags
            .iter()
            .find(|t| t.key == ORIENTATION_TAG)
            .and_then(|t| t.value.trim().parse::<u8>().ok())
            .filter(|v| (1..=8).contains(v))
            .map_or(Orientation::NONE, Orientation)
    }

    pub fn value(self) -> u8 {
        self.0
    }

    /// 5 to 8 turn the picture a quarter: its displayed width is its stored height.
    pub fn swaps_sides(self) -> bool {
        self.0 >= 5
    }

    /// The filters that make the stored picture upright, in order (EXIF 2 to 8).
    pub fn filters(self) -> Vec<FilterNode> {
        let transpose = |dir: &str| FilterNode::new("transpose").arg("dir", dir);
        match self.0 {
            2 => vec![FilterNode::new("hflip")],
            3 => vec![FilterNode::new("hflip"), FilterNode::new("vflip")],
            4 => vec![FilterNode::new("vflip")],
            5 => vec![transpose("cclock_flip")],
            6 => vec![transpose("clock")],
            7 => vec![transpose("clock_flip")],
            8 => vec![transpose("cclock")],
            _ => Vec::new(),
        }
    }

    /// The filters as the report says them: `transpose=clock`, `hflip,vflip`, `none`.
    pub fn text(self) -> String {
        let filters = self.filters();
        if filters.is_empty() {
            return "none".into();
        }
        filters
            .iter()
            .map(|f| match f.arg_value("dir").and_then(Value::as_str) {
                Some(dir) => format!("{}={dir}", f.filter),
                None => f.filter.clone(),
            })
            .collect::<Vec<_>>()
            .join(",")
    }
}
