//! Channel conversions as explicit gain matrices, rendered as ffmpeg `pan` specs.
//!
//! The 5.1 to stereo downmix uses the ITU-R BS.775 coefficients, with the LFE channel dropped:
//!
//! ```text
//! FL' = FL + 0.707*FC + 0.707*BL        (5.1(side): SL instead of BL)
//! FR' = FR + 0.707*FC + 0.707*BR        (5.1(side): SR instead of BR)
//! ```
//!
//! 0.707 is -3 dB: centre and surrounds keep their power when spread over two speakers. The
//! coefficients are not normalized, so a loud, fully correlated 5.1 mix can sum above full
//! scale: the mix runs in float and only an integer output format clips it (`bit_depth` 32f
//! keeps it). Stereo to mono `average` is `FC = 0.5*FL + 0.5*FR` (-6 dB each: identical
//! channels keep their level, opposite ones cancel); `left` is `FC = FL`, `right` is `FC = FR`.
//! 5.1 to mono applies the stereo downmix, then that choice.

use preset_sdk::{Refusal, refuse};

/// The `downmix` param's choices.
pub const DOWNMIXES: [&str; 3] = ["average", "left", "right"];
/// -3 dB, the ITU-R BS.775 gain of centre and surround channels in a stereo downmix.
pub const ITU_GAIN: f64 = 0.707;

/// What happens to the channels.
#[derive(Clone, Debug, PartialEq)]
pub enum Mix {
    /// Already the asked-for channel count.
    Unchanged,
    /// An explicit matrix.
    Pan(Matrix),
    /// A layout without a matrix here: ffmpeg's own downmix (libswresample's matrix).
    Default,
}

impl Mix {
    /// Whether the `downmix` param shaped this mix (a conversion to mono from more channels).
    pub fn uses_downmix_choice(&self, from: u32, to: u32) -> bool {
        matches!(self, Mix::Pan(_)) && to == 1 && from >= 2
    }
}

/// Output channels, each a sum of input channels times gains.
#[derive(Clone, Debug, PartialEq)]
pub struct Matrix {
    /// "mono" or "stereo".
    pub layout: &'static str,
    /// Per output channel: its name and its terms (input channel name, gain).
    pub rows: Vec<(&'static str, Vec<(&'static str, f64)>)>,
}

impl Matrix {
    /// `pan`'s argument: "stereo|FL=FL+0.707*FC+0.707*BL|FR=FR+0.707*FC+0.707*BR".
    pub fn to_pan(&self) -> String {
        let mut spec = self.layout.to_owned();
        for (out, terms) in &self.rows {
            let sum: Vec<String> = terms
                .iter()
                .map(|(channel, gain)| {
                    if *gain == 1.0 {
                        (*channel).to_owned()
                    } else {
                        format!("{}*{channel}", number(*gain))
                    }
                })
                .collect();
            spec.push_str(&format!("|{out}={}", sum.join("+")));
        }
        spec
    }
}

/// `gain` with at most four decimals and no trailing zeros.
fn number(gain: f64) -> String {
    let text = format!("{gain:.4}");
    text.trim_end_matches('0').trim_end_matches('.').to_owned()
}

/// The conversion from `channels` (with ffmpeg's `layout` name, when known) to `to` channels.
pub fn plan(channels: u32, layout: Option<&str>, to: u32, downmix: &str) -> Result<Mix, Refusal> {
    if !DOWNMIXES.contains(&downmix) {
        return Err(refuse(
            "DOWNMIX_UNSUPPORTED",
            format!("downmix '{downmix}' is not one of {}", DOWNMIXES.join(", ")),
        ));
    }
    if channels == to {
        return Ok(Mix::Unchanged);
    }
    // Input channels by name where the layout names them, by position (cN) where it does not.
    let stereo_in = match (channels, layout) {
        (1, Some("mono")) => vec![("FL", vec![("FC", 1.0)]), ("FR", vec![("FC", 1.0)])],
        (1, _) => vec![("FL", vec![("c0", 1.0)]), ("FR", vec![("c0", 1.0)])],
        (2, Some("stereo")) => vec![("FL", vec![("FL", 1.0)]), ("FR", vec![("FR", 1.0)])],
        (2, _) => vec![("FL", vec![("c0", 1.0)]), ("FR", vec![("c1", 1.0)])],
        (6, Some("5.1")) => itu_stereo(["FL", "FR", "FC", "BL", "BR"]),
        (6, Some("5.1(side)")) => itu_stereo(["FL", "FR", "FC", "SL", "SR"]),
        // Six channels and no layout: ffmpeg's default order for six is 5.1's.
        (6, None) => itu_stereo(["c0", "c1", "c2", "c4", "c5"]),
        _ => return Ok(Mix::Default),
    };
    if to == 2 {
        return Ok(Mix::Pan(Matrix {
            layout: "stereo",
            rows: stereo_in,
        }));
    }
    let [(_, left), (_, right)] = [&stereo_in[0], &stereo_in[1]];
    let mono = match downmix {
        "left" => left.clone(),
        "right" => right.clone(),
        _ => {
            // 0.5 * (left + right), merging terms on the same input channel.
            let mut terms: Vec<(&'static str, f64)> = Vec::new();
            for (channel, gain) in left.iter().chain(right.iter()) {
                match terms.iter_mut().find(|(c, _)| c == channel) {
                    Some((_, g)) => *g += 0.5 * gain,
                    None => terms.push((channel, 0.5 * gain)),
                }
            }
            terms
        }
    };
    Ok(Mix::Pan(Matrix {
        layout: "mono",
        rows: vec![("FC", mono)],
    }))
}

/// ITU-R BS.775 stereo rows from the names of front left, front right, centre, left surround
/// and right surround.
fn itu_stereo(
    [fl, fr, fc, sl, sr]: [&'static str; 5],
) -> Vec<(&'static str, Vec<(&'static str, f64)>)> {
    vec![
        ("FL", vec![(fl, 1.0), (fc, ITU_GAIN), (sl, ITU_GAIN)]),
        ("FR", vec![(fr, 1.0), (fc, ITU_GAIN), (sr, ITU_GAIN)]),
    ]
}
