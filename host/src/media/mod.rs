//! What the host learns about media before a preset plans: ffprobe's view and measurements.

pub mod analysis;
pub mod probe;
