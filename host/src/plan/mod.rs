//! Plans from presets: what they may contain and how they are checked.

pub mod allowlist;
pub mod dry_run;
pub mod layout;
pub mod session;
pub mod validate;
