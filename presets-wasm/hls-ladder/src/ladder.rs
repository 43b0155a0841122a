//! The ladder's rungs, and which of them a source gets.

use video_source::Size;

/// The H.265 levels the 2160p rung may be pinned to.
pub const UHD_LEVELS: [&str; 4] = ["5.0", "5.1", "5.2", "4.1"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    H264,
    H265,
}

impl Codec {
    pub fn name(self) -> &'static str {
        match self {
            Codec::H264 => "h264",
            Codec::H265 => "h265",
        }
    }
}

/// One rendition of the ladder: its height (the picture's shorter side), bit rate and codec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rung {
    pub name: String,
    pub height: u32,
    pub bit_rate: u64,
    pub codec: Codec,
}

impl Rung {
    fn new(height: u32, bit_rate: u64, codec: Codec) -> Rung {
        Rung {
            name: format!("{height}p"),
            height,
            bit_rate,
            codec,
        }
    }
}

/// The full ladder, lowest first.
const LADDER: [(u32, u64, Codec); 4] = [
    (360, 400_000, Codec::H264),
    (720, 2_500_000, Codec::H264),
    (1080, 5_000_000, Codec::H264),
    (2160, 18_000_000, Codec::H265),
];

/// The rungs a source of `display` size gets: those its shorter side reaches, up to
/// `max_height`, the H.265 rung only with `uhd`. A source below the lowest rung gets one rung
/// at its own height, its bit rate the lowest rung's scaled by area.
pub fn rungs(display: Size, max_height: Option<i64>, uhd: bool) -> Vec<Rung> {
    let short = display.short_side();
    let limit = max_height.map_or(u32::MAX, |h| h.clamp(1, i64::from(u32::MAX)) as u32);
    let rungs: Vec<Rung> = LADDER
        .iter()
        .filter(|(height, _, codec)| {
            *height <= short && *height <= limit && (uhd || *codec == Codec::H264)
        })
        .map(|&(height, bit_rate, codec)| Rung::new(height, bit_rate, codec))
        .collect();
    if !rungs.is_empty() {
        return rungs;
    }
    let (lowest, rate, _) = LADDER[0];
    let height = (short.min(limit) / 2 * 2).max(2);
    let area = f64::from(height) / f64::from(lowest);
    let bit_rate = ((rate as f64 * area * area) as u64).max(100_000);
    vec![Rung::new(height, bit_rate, Codec::H264)]
}
