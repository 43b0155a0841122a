//! What the host learns about media before a preset plans (ffprobe's view and measurements),
//! and the image metadata it carries over to image outputs.

pub mod analysis;
pub mod image_meta;
pub mod probe;
