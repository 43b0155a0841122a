//! Fixture workspaces under `tests/fixtures/`: cargo workspaces of WebAssembly components with
//! a `build.sh` that copies each member to `dist/<name>-<version>.wasm`. [`built`] runs that
//! script at most once per test binary, and only when a component is missing or older than any
//! member's sources, `preset-sdk` or `wit`.
//!
//! Not here: what the components are for; [`crate::hostile`] and [`crate::interface_fixtures`]
//! say that.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::SystemTime;

/// A fixture workspace's built components: `dist/` and one file name per workspace member.
pub struct Dist {
    /// The workspace's `dist/`.
    pub dir: PathBuf,
    /// `<name>-<version>.wasm`, one per member.
    pub files: Vec<String>,
}

impl Dist {
    /// The path of a built component by its file name in `dist/`.
    pub fn component(&self, workspace: &str, file: &str) -> Result<PathBuf, String> {
        if !self.files.iter().any(|f| f == file) {
            return Err(format!(
                "{file} is not a component of {workspace}; it builds {:?}",
                self.files
            ));
        }
        Ok(self.dir.join(file))
    }
}

/// The components of `workspace` (relative to the repository root), built when stale, once per
/// `cell` (one static cell per workspace).
pub fn built(
    cell: &'static OnceLock<Result<Dist, String>>,
    workspace: &str,
) -> Result<&'static Dist, String> {
    cell.get_or_init(|| build_when_stale(workspace))
        .as_ref()
        .map_err(Clone::clone)
}

fn build_when_stale(relative: &str) -> Result<Dist, String> {
    let root = crate::repo_root();
    let workspace = root.join(relative);
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
    eprintln!("[fixtures] building {}/build.sh", workspace.display());
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
        .ok_or_else(|| format!("no members list in {}/Cargo.toml", workspace.display()))?;
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
