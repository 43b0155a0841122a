//! measured-loudness: bringing audio a preset has produced (a cleaned voice, a mix) to an
//! integrated loudness target under a true-peak ceiling, in measured passes, and encoding it.
//!
//! The algorithm is loudness-normalize's: when plain gain reaches the target without crossing
//! the ceiling, apply exactly that gain. Otherwise render gain followed by a 4x-oversampled
//! limiter to a float WAV, **measure it**, correct the gain from what the limiter really did
//! and repeat (at most five passes) until a pass lands within 0.2 LU of the target under the
//! ceiling. Never loudnorm's dynamic mode.
//!
//! It is for presets whose last stage is "make this loud enough, safely". It keeps no state:
//! every round replays the passes from the analyses in the request (`pass1`, `pass2`, ...),
//! so the same request always gives the same plan.

pub mod format;
mod passes;

pub use format::OutputFormat;
pub use passes::{Delivery, Progress, Source, Target, Unreachable, normalize, normalize_with};

use preset_sdk::FilterNode;

/// Below this integrated loudness BS.1770 gating leaves nothing: the audio is silence.
pub const SILENCE_LUFS: f64 = -70.0;

/// A `volume` node changing the level by `gain_db`.
///
/// ```
/// let node = measured_loudness::volume(-3.456);
/// assert_eq!(node.arg_value("volume").and_then(|v| v.as_str()), Some("-3.46dB"));
/// ```
pub fn volume(gain_db: f64) -> FilterNode {
    FilterNode::new("volume").arg("volume", format!("{gain_db:.2}dB"))
}

/// Decibels to a linear amplitude factor.
///
/// ```
/// assert!((measured_loudness::db_to_linear(-6.0) - 0.501).abs() < 0.001);
/// ```
pub fn db_to_linear(db: f64) -> f64 {
    10f64.powf(db / 20.0)
}

/// `value` rounded to `decimals` places, so plans and reports carry tidy numbers.
///
/// ```
/// assert_eq!(measured_loudness::round_to(1.23456, 2), 1.23);
/// ```
pub fn round_to(value: f64, decimals: i32) -> f64 {
    let scale = 10f64.powi(decimals);
    (value * scale).round() / scale
}
