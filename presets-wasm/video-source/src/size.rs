//! Picture sizes: what a height limit makes of a source's display size.

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

    /// The shorter side: what "720p" names, whichever way the picture is turned.
    pub fn short_side(&self) -> u32 {
        self.width.min(self.height)
    }

    /// `1280x720`.
    pub fn text(&self) -> String {
        format!("{}x{}", self.width, self.height)
    }
}

/// The size `display` is scaled to so that its shorter side is `short_side`, keeping its
/// aspect, both sides even (4:2:0 needs them even). A source smaller than that keeps its own
/// size (rounded down to even) unless `upscale`.
///
/// ```
/// use video_source::{Size, fit};
/// assert_eq!(fit(Size::new(1920, 1080), 720, false), Size::new(1280, 720));
/// assert_eq!(fit(Size::new(720, 1280), 360, false), Size::new(360, 640));
/// assert_eq!(fit(Size::new(640, 360), 720, false), Size::new(640, 360));
/// assert_eq!(fit(Size::new(640, 360), 720, true), Size::new(1280, 720));
/// ```
pub fn fit(display: Size, short_side: u32, upscale: bool) -> Size {
    let source_short = display.short_side().max(1);
    let target = if upscale {
        short_side
    } else {
        short_side.min(source_short)
    };
    let scale = f64::from(target) / f64::from(source_short);
    let even = |v: f64| ((v / 2.0).round() as u32 * 2).max(2);
    Size::new(
        even(f64::from(display.width) * scale),
        even(f64::from(display.height) * scale),
    )
}

/// The size `display` is scaled to for a width of `width` (never more than its own), keeping
/// its aspect, both sides even.
///
/// ```
/// use video_source::{Size, fit_width};
/// assert_eq!(fit_width(Size::new(1920, 1080), 640), Size::new(640, 360));
/// assert_eq!(fit_width(Size::new(720, 1280), 1080), Size::new(720, 1280));
/// ```
pub fn fit_width(display: Size, width: u32) -> Size {
    let width = width.min(display.width).max(2);
    let height = f64::from(width) * f64::from(display.height) / f64::from(display.width.max(1));
    Size::new(width / 2 * 2, ((height / 2.0).round() as u32 * 2).max(2))
}
