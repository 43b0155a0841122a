//! Plans from presets: what they may contain and how they are checked.

pub mod allowlist;
pub mod validate;
