//! The interface-compatibility fixtures of `tests/fixtures/interface-presets`, built when stale
//! (see [`crate::fixture_workspace`]):
//!
//! - [`v1_aac`]: a 1.0 component built straight from the frozen `wit/1.0.0` with `wit-bindgen`
//!   (not through the SDK), planning one AAC file from input `main`: the host's 1.0 path,
//!   tested with a fresh build against the frozen WIT;
//! - [`v2_showcase`]: a 2.0 component built with the SDK that asks for all four video analyses
//!   and plans every 2.0 output kind from one video input with audio (poster, sprite sheet,
//!   two HLS video renditions and an audio one in a package, an optional output, a WebVTT
//!   document referring to the sprites).
//!
//! Copy the returned path into a presets directory (or publish it) to load it in a host.
//!
//! Not here: what a host must do with them; the tests that load them say that.

use std::path::PathBuf;
use std::sync::OnceLock;

use crate::fixture_workspace::{self, Dist};

/// The fixture workspace, relative to the repository root.
const WORKSPACE: &str = "tests/fixtures/interface-presets";

/// The 1.0 fixture's file name (preset `fixture-v1-aac` 1.0.0).
pub const V1_AAC: &str = "fixture-v1-aac-1.0.0.wasm";
/// The 2.0 fixture's file name (preset `fixture-v2-showcase` 1.0.0).
pub const V2_SHOWCASE: &str = "fixture-v2-showcase-1.0.0.wasm";

/// The built 1.0 fixture: `fixture-v1-aac` 1.0.0, interface 1.0.0, input `main`, no params,
/// one output `main` (AAC in M4A, 128 kb/s).
pub fn v1_aac() -> Result<PathBuf, String> {
    dist()?.component(WORKSPACE, V1_AAC)
}

/// The built 2.0 fixture: `fixture-v2-showcase` 1.0.0, interface 2.0.0, input `main` (video
/// with audio), no params.
pub fn v2_showcase() -> Result<PathBuf, String> {
    dist()?.component(WORKSPACE, V2_SHOWCASE)
}

fn dist() -> Result<&'static Dist, String> {
    static DIST: OnceLock<Result<Dist, String>> = OnceLock::new();
    fixture_workspace::built(&DIST, WORKSPACE)
}
