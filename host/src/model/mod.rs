//! The host's own model of media, plans and analyses: what every module outside `preset/`
//! speaks.
//!
//! It is versioned with the HTTP API (the dry run shows it), not with the preset interface: each
//! interface version's adapter in `preset/` converts its WIT types to and from these, so a new
//! interface version changes one adapter, not the validator, the renderer or the worker.
//!
//! Not here: checking a plan (that is [`crate::plan::validate`]) or anything that runs.

pub mod analysis;
pub mod media;
pub mod plan;
pub mod preset;

pub use analysis::*;
pub use media::*;
pub use plan::*;
pub use preset::*;
