//! The hostile presets of `tests/fixtures/hostile-presets`: WebAssembly components that each try
//! something a preset must not get away with.
//!
//! This module finds them in the workspace's `dist/`, runs its `build.sh` first (at most once per
//! test binary) when a component is missing or older than any member's sources, `preset-sdk` or
//! `wit`, and lays them out beside the built-in presets in a presets directory for a host.
//!
//! Not here: what a host must do with them; the tests that load them say that.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::SystemTime;

/// The hostile workspace, relative to the repository root.
const WORKSPACE: &str = "tests/fixtures/hostile-presets";

/// The built components: `dist/` and one file name per workspace member.
struct Dist {
    dir: PathBuf,
    files: Vec<String>,
}

/// Every hostile component's file name in `dist/` (`<package name>-<version>.wasm`), one per
/// member of the hostile workspace.
pub fn components() -> Result<Vec<&'static str>, String> {
    Ok(dist()?.files.iter().map(String::as_str).collect())
}

/// The path of a built hostile component, by its file name in `dist/`
/// (`hostile-pad-1.0.0.wasm`).
pub fn component(file: &str) -> Result<PathBuf, String> {
    let dist = dist()?;
    if !dist.files.iter().any(|f| f == file) {
        return Err(format!(
            "{file} is not a hostile component; {WORKSPACE} builds {:?}",
            dist.files
        ));
    }
    Ok(dist.dir.join(file))
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
    DIST.get_or_init(build_when_stale)
        .as_ref()
        .map_err(Clone::clone)
}

fn build_when_stale() -> Result<Dist, String> {
    let root = crate::repo_root();
    let workspace = root.join(WORKSPACE);
    let members = members(&workspace)?;
    let files = members
        .iter()
        .map(|member| component_file(&workspace.join(member)))
        .collect::<Result<Vec<_>, _>>()?;
    let dir = workspace.join("dist");
    let oldest = files.iter().map(|f| modified(&dir.join(f))).min().flatten();
    let mut sources = vec![
        workspace.join("Cargo.toml"),
        root.join("preset-sdk"),
        root.join("wit"),
    ];
    sources.extend(members.iter().map(|member| workspace.join(member)));
    let newest = sources.iter().filter_map(|p| newest_in(p)).max();
    if !matches!((oldest, newest), (Some(built), Some(source)) if built >= source) {
        build(&workspace)?;
    }
    match files.iter().find(|f| !dir.join(f).is_file()) {
        Some(missing) => Err(format!("build.sh did not produce dist/{missing}")),
        None => Ok(Dist { dir, files }),
    }
}

fn build(workspace: &Path) -> Result<(), String> {
    eprintln!(
        "[hostile] building the hostile presets: {}/build.sh",
        workspace.display()
    );
    let output = Command::new("bash")
        .arg(workspace.join("build.sh"))
        // build.sh looks for its artifacts under its own target/.
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("CARGO_BUILD_TARGET_DIR")
        .output()
        .map_err(|e| format!("cannot run {}/build.sh: {e}", workspace.display()))?;
    if !output.status.success() {
        return Err(format!(
            "{}/build.sh failed with {}; the tests need its components:\n{}\n{}",
            workspace.display(),
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    Ok(())
}

/// The workspace's members, from the `members = [...]` list of its `Cargo.toml`.
fn members(workspace: &Path) -> Result<Vec<String>, String> {
    let manifest = read(&workspace.join("Cargo.toml"))?;
    let list = manifest
        .split_once("\nmembers")
        .and_then(|(_, rest)| rest.split_once(']'))
        .map(|(list, _)| list)
        .ok_or_else(|| format!("no members list in {WORKSPACE}/Cargo.toml"))?;
    Ok(list
        .split('"')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect())
}

/// The file `build.sh` copies a member's component to: `<name>-<version>.wasm`, from the first
/// `name =` and `version =` lines of the member's `Cargo.toml`, as `build.sh` reads them.
fn component_file(member: &Path) -> Result<String, String> {
    let path = member.join("Cargo.toml");
    let manifest = read(&path)?;
    let field = |key: &str| {
        manifest
            .lines()
            .find_map(|line| {
                let value = line.strip_prefix(key)?.trim_start().strip_prefix('=')?;
                value.trim().strip_prefix('"')?.strip_suffix('"')
            })
            .ok_or_else(|| format!("no `{key} = \"...\"` line in {}", path.display()))
    };
    Ok(format!("{}-{}.wasm", field("name")?, field("version")?))
}

fn read(path: &Path) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// The newest modification time of a file or of any file under a directory (skipping `target`).
fn newest_in(path: &Path) -> Option<SystemTime> {
    let meta = std::fs::metadata(path).ok()?;
    if !meta.is_dir() {
        return meta.modified().ok();
    }
    std::fs::read_dir(path)
        .ok()?
        .flatten()
        .filter(|e| e.file_name() != "target")
        .filter_map(|e| newest_in(&e.path()))
        .max()
}
