//! The end-to-end harness for mediahost: real services, real ffmpeg, real HTTP.
//!
//! Each module owns one piece of the setup a test needs:
//!
//! - [`process`]: child processes that die with the test binary, free ports, log tails;
//! - [`redis`]: a private `redis-server` on a free port;
//! - [`s3`]: a private `s3s-fs` (S3-compatible server) and a SigV4 presigner to talk to it;
//! - [`host`]: the `mediahost serve` binary under test, one per test binary where possible;
//! - [`deployment`]: separate `mediahost api` and `mediahost worker` processes on one Redis;
//! - [`fixture_workspace`]: fixture workspaces of components under `tests/fixtures/`, built when stale;
//! - [`hostile`]: the hostile preset components, beside the built-in presets;
//! - [`interface_fixtures`]: a component built from the frozen 1.0 WIT and a 2.0 one using every new output kind;
//! - [`released`]: the released preset artifacts, their lock file and the check that pins them;
//! - [`client`]: the HTTP calls a user makes (upload, submit, poll, download) and problem checks;
//! - [`media`]: test media made with ffmpeg and espeak-ng, and measurements of the results;
//! - [`video`]: video test media (480p to 2160p, interlaced, rotated, black lead-in) and what a
//!   player checks of HLS ladders, stills and files.
//! - [`image`]: still images with EXIF, XMP and ICC profiles put in and read back.
//! - [`browser`]: a headless Chromium driven over WebDriver, for the pages the host serves.
//!
//! It is not for unit-testing the host's internals: everything here goes through the binary's
//! public surface, the way a user or an operator would.

pub mod browser;
pub mod client;
pub mod deployment;
pub mod fixture_workspace;
pub mod host;
pub mod hostile;
pub mod image;
pub mod interface_fixtures;
pub mod media;
pub mod process;
pub mod redis;
pub mod released;
pub mod s3;
pub mod video;

pub use client::{Client, Problem};
pub use host::Host;
pub use media::{Fixtures, Loudness};
pub use redis::Redis;
pub use s3::S3Server;

use std::path::PathBuf;

/// The repository checkout this crate lives in.
pub fn repo_root() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest
        .parent()
        .expect("tests/ has a parent directory")
        .to_path_buf()
}

/// Cargo's target directory for the root workspace: `$CARGO_TARGET_DIR` or `<repo>/target`.
pub fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => {
            let dir = PathBuf::from(dir);
            if dir.is_absolute() {
                dir
            } else {
                // cargo resolves a relative CARGO_TARGET_DIR against where it was run; the
                // scripts run it from the repository root.
                repo_root().join(dir)
            }
        }
        _ => repo_root().join("target"),
    }
}
