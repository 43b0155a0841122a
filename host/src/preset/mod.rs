//! Presets: loading components, calling them in a sandbox, and the registry of versions.
//!
//! This is the only part of the host that names WIT types: each released interface version has
//! an adapter (`v1`, `v2`) that converts its bindings to and from [`crate::model`]. A 3.0 adds a
//! frozen `wit/3.0.0`, a `v3.rs` beside these, and a case in the runtime's dispatch.

pub mod cache;
pub mod catalog;
pub mod compile;
mod convert;
pub mod params;
pub mod registry;
pub mod runtime;
mod v1;
mod v2;
