//! The hostile presets of `tests/fixtures/hostile-presets`: WebAssembly components that each try
//! something a preset must not get away with.
//!
//! This module finds them in the workspace's `dist/` (built when stale, see
//! [`crate::fixture_workspace`]) and lays them out beside the built-in presets in a presets
//! directory for a host.
//!
//! Not here: what a host must do with them; the tests that load them say that.

use std::path::PathBuf;
use std::sync::OnceLock;

use crate::fixture_workspace::{self, Dist};

/// The hostile workspace, relative to the repository root.
const WORKSPACE: &str = "tests/fixtures/hostile-presets";

/// Every hostile component's file name in `dist/` (`<package name>-<version>.wasm`), one per
/// member of the hostile workspace.
pub fn components() -> Result<Vec<&'static str>, String> {
    Ok(dist()?.files.iter().map(String::as_str).collect())
}

/// The path of a built hostile component, by its file name in `dist/`
/// (`hostile-pad-1.0.0.wasm`).
pub fn component(file: &str) -> Result<PathBuf, String> {
    dist()?.component(WORKSPACE, file)
}

/// A fresh presets directory holding the built-in presets and the named hostile components.
pub fn presets_with(label: &str, hostile: &[&str]) -> Result<tempfile::TempDir, String> {
    let presets = crate::process::fixture_dir(label);
    let builtin = crate::host::presets_dir();
    for entry in std::fs::read_dir(&builtin).map_err(|e| format!("{}: {e}", builtin.display()))? {
        let path = entry.map_err(|e| e.to_string())?.path();
        if path.extension().is_some_and(|x| x == "wasm") {
            let dest = presets.path().join(path.file_name().expect("a file name"));
            std::fs::copy(&path, &dest).map_err(|e| format!("copy {}: {e}", path.display()))?;
        }
    }
    for file in hostile {
        let path = component(file)?;
        std::fs::copy(&path, presets.path().join(file))
            .map_err(|e| format!("copy {}: {e}", path.display()))?;
    }
    Ok(presets)
}

fn dist() -> Result<&'static Dist, String> {
    static DIST: OnceLock<Result<Dist, String>> = OnceLock::new();
    fixture_workspace::built(&DIST, WORKSPACE)
}
