//! Presets: loading components, calling them in a sandbox, and the registry of versions.

pub mod cache;
pub mod catalog;
pub mod params;
pub mod registry;
pub mod runtime;
pub mod v1;

/// The WIT types of the newest interface version; the host speaks only these.
pub use v1::types as wit;
