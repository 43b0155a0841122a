//! Released presets: the committed `presets-wasm/released/<name>-<version>.wasm` artifacts, the
//! lock file `presets-wasm/released.lock` that pins them, and the source hash that ties each
//! release to the source it was built from.
//!
//! A released version is never rebuilt: the host loads these bytes, so a new compiler or SDK
//! cannot change a published version. [`check`] is what the test command runs (a released
//! artifact differs from its lock entry; a preset's source changed without a new version; a
//! preset's current version was never released); [`release`] is what `scripts/release-presets`
//! runs after `presets-wasm/build.sh`.
//!
//! The source hash of a preset crate covers every file (but `target/`, `dist/` and
//! `Cargo.lock`) under the crate's directory and under every path dependency it uses,
//! transitively, plus the directories a crate names in `[package.metadata.source-hash] include`
//! (the SDK names the WIT directory its bindings are generated from). It is the SHA-256 of
//! `sha256sum`'s output for those files, sorted by their path relative to the repository root:
//! `cd <repo> && find <dirs> -type f ... | LC_ALL=C sort | xargs sha256sum | sha256sum`.
//! The presets workspace's own `Cargo.toml` and `Cargo.lock` are left out: they change whenever
//! any preset is added, and say nothing about one preset.
//!
//! Not here: building components (`presets-wasm/build.sh`), loading them (the host).

use sha2::{Digest, Sha256};
use std::collections::{BTreeSet, HashMap};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The presets workspace, relative to the repository root.
pub const WORKSPACE: &str = "presets-wasm";
/// Where released artifacts live, relative to the repository root.
pub const RELEASED_DIR: &str = "presets-wasm/released";
/// The lock file, relative to the repository root.
pub const LOCK_FILE: &str = "presets-wasm/released.lock";

/// One released preset version, as the lock file records it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// The preset's name (`describe().name`).
    pub name: String,
    /// Its version (semver).
    pub version: String,
    /// The `mediahost:preset` interface version the component exports ("1.0.0", "2.0.0").
    pub interface: String,
    /// SHA-256 (hex) of the released `.wasm`.
    pub sha256: String,
    /// The source hash of the crate it was built from (see the module docs).
    pub source: String,
}

impl Entry {
    /// The artifact's file name in the released directory: `<name>-<version>.wasm`.
    pub fn file(&self) -> String {
        format!("{}-{}.wasm", self.name, self.version)
    }
}

/// The lock file: every released version, sorted by name then version.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Lock {
    /// The entries, one per released version.
    pub entries: Vec<Entry>,
}

impl Lock {
    /// Reads a lock file; a missing file is an empty lock.
    pub fn read(path: &Path) -> Result<Lock, String> {
        match std::fs::read_to_string(path) {
            Ok(text) => Lock::parse(&text).map_err(|e| format!("{}: {e}", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Lock::default()),
            Err(e) => Err(format!("{}: {e}", path.display())),
        }
    }

    /// Parses the lock's TOML subset: `[[preset]]` tables of `key = "value"` lines.
    pub fn parse(text: &str) -> Result<Lock, String> {
        let mut tables: Vec<HashMap<String, String>> = Vec::new();
        for (number, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            if line == "[[preset]]" {
                tables.push(HashMap::new());
                continue;
            }
            let (key, value) = line
                .split_once('=')
                .and_then(|(k, v)| Some((k.trim(), v.trim().strip_prefix('"')?.strip_suffix('"')?)))
                .ok_or_else(|| format!("line {}: expected key = \"value\"", number + 1))?;
            tables
                .last_mut()
                .ok_or_else(|| format!("line {}: a key before the first [[preset]]", number + 1))?
                .insert(key.to_owned(), value.to_owned());
        }
        let entries = tables
            .into_iter()
            .map(|mut table| {
                let mut take = |key: &str| {
                    table
                        .remove(key)
                        .ok_or_else(|| format!("a [[preset]] without `{key}`"))
                };
                Ok(Entry {
                    name: take("name")?,
                    version: take("version")?,
                    interface: take("interface")?,
                    sha256: take("sha256")?,
                    source: take("source")?,
                })
            })
            .collect::<Result<Vec<_>, String>>()?;
        Ok(Lock { entries })
    }

    /// The lock file's text, entries sorted.
    pub fn render(&self) -> String {
        let mut entries = self.entries.clone();
        entries.sort_by(|a, b| {
            (a.name.as_str(), version_key(&a.version))
                .cmp(&(b.name.as_str(), version_key(&b.version)))
        });
        let mut text = String::from(
            "# Released preset versions: written by scripts/release-presets, never edited by hand.\n\
             # Each artifact is presets-wasm/released/<name>-<version>.wasm; `sha256` pins its bytes,\n\
             # `source` the preset's sources (tests/src/released.rs says what that hash covers).\n",
        );
        for e in &entries {
            let _ = write!(
                text,
                "\n[[preset]]\nname = \"{}\"\nversion = \"{}\"\ninterface = \"{}\"\nsha256 = \"{}\"\nsource = \"{}\"\n",
                e.name, e.version, e.interface, e.sha256, e.source
            );
        }
        text
    }

    /// The entry for `name` at `version`.
    pub fn find(&self, name: &str, version: &str) -> Option<&Entry> {
        self.entries
            .iter()
            .find(|e| e.name == name && e.version == version)
    }
}

/// Numeric ordering of a semver string's core, so 1.10.0 sorts after 1.9.0.
fn version_key(version: &str) -> Vec<u64> {
    version
        .split(['.', '-', '+'])
        .map_while(|part| part.parse().ok())
        .collect()
}

/// A preset crate of the workspace at its current version.
#[derive(Clone, Debug)]
pub struct PresetCrate {
    /// The crate's directory.
    pub dir: PathBuf,
    /// The preset's name: `[package.metadata.preset] name`, else the package name.
    pub name: String,
    /// The preset's version: `[package.metadata.preset] version`, else the package version.
    pub version: String,
    /// Its current source hash.
    pub source: String,
}

/// Every preset crate (every `cdylib` member) of the presets workspace, with its source hash.
/// Asks `cargo metadata` (offline; no build) for the members and their path dependencies.
pub fn preset_crates(root: &Path) -> Result<Vec<PresetCrate>, String> {
    let workspace = root.join(WORKSPACE);
    let output = Command::new("cargo")
        .args(["metadata", "--format-version", "1", "--offline"])
        .current_dir(&workspace)
        .output()
        .map_err(|e| format!("cannot run cargo metadata: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "cargo metadata in {} failed: {}",
            workspace.display(),
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    let metadata: serde_json::Value = serde_json::from_slice(&output.stdout)
        .map_err(|e| format!("cargo metadata printed no JSON: {e}"))?;
    let packages = metadata["packages"].as_array().cloned().unwrap_or_default();
    let local: HashMap<PathBuf, &serde_json::Value> = packages
        .iter()
        .filter(|p| p["source"].is_null())
        .filter_map(|p| Some((manifest_dir(p)?, p)))
        .collect();
    let members: BTreeSet<&str> = metadata["workspace_members"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| m.as_str())
        .collect();
    let mut crates = Vec::new();
    for package in packages
        .iter()
        .filter(|p| p["id"].as_str().is_some_and(|id| members.contains(id)) && is_cdylib(p))
    {
        let dir = manifest_dir(package).ok_or("a package without a manifest path")?;
        let preset = &package["metadata"]["preset"];
        let field = |key: &str| {
            preset[key]
                .as_str()
                .or_else(|| package[key].as_str())
                .map(str::to_owned)
                .ok_or_else(|| format!("{}: no {key}", dir.display()))
        };
        let dirs = source_dirs(&dir, &local)?;
        crates.push(PresetCrate {
            source: source_hash(root, &dirs)?,
            name: field("name")?,
            version: field("version")?,
            dir,
        });
    }
    crates.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(crates)
}

fn manifest_dir(package: &serde_json::Value) -> Option<PathBuf> {
    Some(
        Path::new(package["manifest_path"].as_str()?)
            .parent()?
            .to_path_buf(),
    )
}

fn is_cdylib(package: &serde_json::Value) -> bool {
    package["targets"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|t| {
            t["crate_types"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|c| c == "cdylib")
        })
}

/// The crate's directory, its path dependencies' directories (transitively) and the
/// directories each of them names in `[package.metadata.source-hash] include`.
fn source_dirs(
    dir: &Path,
    local: &HashMap<PathBuf, &serde_json::Value>,
) -> Result<BTreeSet<PathBuf>, String> {
    let mut dirs = BTreeSet::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        if !dirs.insert(dir.clone()) {
            continue;
        }
        let package = local
            .get(&dir)
            .ok_or_else(|| format!("cargo metadata does not list {}", dir.display()))?;
        for include in package["metadata"]["source-hash"]["include"]
            .as_array()
            .into_iter()
            .flatten()
        {
            let include = include
                .as_str()
                .ok_or_else(|| format!("{}: source-hash include must be paths", dir.display()))?;
            let path = dir
                .join(include)
                .canonicalize()
                .map_err(|e| format!("{}: source-hash include {include}: {e}", dir.display()))?;
            dirs.insert(path);
        }
        for dependency in package["dependencies"].as_array().into_iter().flatten() {
            if let Some(path) = dependency["path"].as_str() {
                stack.push(PathBuf::from(path));
            }
        }
    }
    Ok(dirs)
}

/// The source hash of `dirs` (see the module docs).
pub fn source_hash(root: &Path, dirs: &BTreeSet<PathBuf>) -> Result<String, String> {
    let root = root
        .canonicalize()
        .map_err(|e| format!("{}: {e}", root.display()))?;
    let mut files = BTreeSet::new();
    for dir in dirs {
        collect_files(dir, &mut files)?;
    }
    let mut listing = String::new();
    let mut sorted: Vec<(String, PathBuf)> = files
        .into_iter()
        .map(|path| {
            let relative = path
                .strip_prefix(&root)
                .map_err(|_| format!("{} is outside the repository", path.display()))?
                .to_string_lossy()
                .into_owned();
            Ok((relative, path))
        })
        .collect::<Result<_, String>>()?;
    sorted.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    for (relative, path) in sorted {
        let bytes = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let _ = writeln!(listing, "{}  {relative}", sha256_hex(&bytes));
    }
    Ok(sha256_hex(listing.as_bytes()))
}

fn collect_files(path: &Path, files: &mut BTreeSet<PathBuf>) -> Result<(), String> {
    let meta = std::fs::metadata(path).map_err(|e| format!("{}: {e}", path.display()))?;
    if meta.is_file() {
        files.insert(path.to_path_buf());
        return Ok(());
    }
    for entry in std::fs::read_dir(path).map_err(|e| format!("{}: {e}", path.display()))? {
        let entry = entry.map_err(|e| format!("{}: {e}", path.display()))?;
        let name = entry.file_name();
        if name == "target" || name == "dist" || name == "Cargo.lock" {
            continue;
        }
        collect_files(&entry.path(), files)?;
    }
    Ok(())
}

/// Lowercase hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .fold(String::with_capacity(64), |mut hex, byte| {
            let _ = write!(hex, "{byte:02x}");
            hex
        })
}

/// The `mediahost:preset` interface version a component exports, read from its export name.
pub fn interface_of(component: &[u8]) -> Option<String> {
    let marker = b"mediahost:preset/preset@";
    let at = component
        .windows(marker.len())
        .position(|window| window == marker)?;
    let version: String = component[at + marker.len()..]
        .iter()
        .take_while(|b| b.is_ascii_digit() || **b == b'.')
        .map(|b| char::from(*b))
        .collect();
    (!version.is_empty()).then_some(version)
}

/// Problems with the released artifacts of `released_dir` against `lock`: an artifact whose
/// bytes differ from its entry, an entry without its artifact, an artifact without an entry.
pub fn check_artifacts(released_dir: &Path, lock: &Lock) -> Result<Vec<String>, String> {
    let mut problems = Vec::new();
    for entry in &lock.entries {
        let path = released_dir.join(entry.file());
        match std::fs::read(&path) {
            Ok(bytes) => {
                let actual = sha256_hex(&bytes);
                if actual != entry.sha256 {
                    problems.push(format!(
                        "{}: sha256 {actual}, but released.lock pins {} {} at {}; a released \
                         version never changes: restore the file (git checkout -- {})",
                        path.display(),
                        entry.name,
                        entry.version,
                        entry.sha256,
                        path.display()
                    ));
                }
            }
            Err(e) => problems.push(format!(
                "{}: {e}; released.lock lists {} {}: restore the artifact from git",
                path.display(),
                entry.name,
                entry.version
            )),
        }
    }
    let entries =
        std::fs::read_dir(released_dir).map_err(|e| format!("{}: {e}", released_dir.display()))?;
    for file in entries.flatten() {
        let name = file.file_name().to_string_lossy().into_owned();
        if !lock.entries.iter().any(|e| e.file() == name) {
            problems.push(format!(
                "{}: not in released.lock; release presets only with scripts/release-presets",
                file.path().display()
            ));
        }
    }
    Ok(problems)
}

/// Problems with the preset crates against `lock`: a current version without an entry, or a
/// source hash that differs from its version's entry.
pub fn check_sources(crates: &[PresetCrate], lock: &Lock) -> Vec<String> {
    crates
        .iter()
        .filter_map(|c| match lock.find(&c.name, &c.version) {
            None => Some(format!(
                "{} {} ({}) is not released: release it with `scripts/release-presets`",
                c.name,
                c.version,
                c.dir.display()
            )),
            Some(entry) if entry.source != c.source => Some(format!(
                "{} {} ({}): its source (or a library it uses: the SDK, the WIT it binds, a \
                 shared crate) changed since {} was released (source hash {}, released.lock \
                 says {}): bump its version and release it with `scripts/release-presets`",
                c.name,
                c.version,
                c.dir.display(),
                c.version,
                c.source,
                entry.source
            )),
            Some(_) => None,
        })
        .collect()
}

/// Every problem with the repository's released presets; empty when all is well.
pub fn check(root: &Path) -> Result<Vec<String>, String> {
    let lock = Lock::read(&root.join(LOCK_FILE))?;
    let mut problems = check_artifacts(&root.join(RELEASED_DIR), &lock)?;
    problems.extend(check_sources(&preset_crates(root)?, &lock));
    Ok(problems)
}

/// Releases every preset crate's current version that has no lock entry: copies
/// `presets-wasm/dist/<name>-<version>.wasm` (built by `build.sh`) into the released
/// directory and adds its entry. Refuses, changing nothing, when a released version's source
/// changed or when a file in the released directory would be overwritten with other bytes.
/// Returns one line per preset saying what happened.
pub fn release(root: &Path) -> Result<Vec<String>, String> {
    let lock_path = root.join(LOCK_FILE);
    let released_dir = root.join(RELEASED_DIR);
    let dist = root.join(WORKSPACE).join("dist");
    let mut lock = Lock::read(&lock_path)?;
    let crates = preset_crates(root)?;

    let mut refusals = Vec::new();
    let mut report = Vec::new();
    let mut new = Vec::new();
    for c in &crates {
        if let Some(entry) = lock.find(&c.name, &c.version) {
            if entry.source == c.source {
                report.push(format!("{} {}: already released", c.name, c.version));
            } else {
                refusals.push(format!(
                    "{} {} is released and its source changed since: bump its version",
                    c.name, c.version
                ));
            }
            continue;
        }
        let file = format!("{}-{}.wasm", c.name, c.version);
        let bytes = std::fs::read(dist.join(&file)).map_err(|e| {
            format!(
                "{}: {e}; run presets-wasm/build.sh",
                dist.join(&file).display()
            )
        })?;
        let dest = released_dir.join(&file);
        if std::fs::read(&dest).is_ok_and(|existing| existing != bytes) {
            refusals.push(format!(
                "{} exists with other bytes: a released version is never overwritten; bump {}'s version",
                dest.display(),
                c.name
            ));
            continue;
        }
        let interface = interface_of(&bytes)
            .ok_or_else(|| format!("{file} exports no mediahost:preset/preset interface"))?;
        new.push((
            dest,
            bytes.clone(),
            Entry {
                name: c.name.clone(),
                version: c.version.clone(),
                interface,
                sha256: sha256_hex(&bytes),
                source: c.source.clone(),
            },
        ));
    }
    if !refusals.is_empty() {
        return Err(refusals.join("\n"));
    }
    std::fs::create_dir_all(&released_dir)
        .map_err(|e| format!("{}: {e}", released_dir.display()))?;
    for (dest, bytes, entry) in new {
        std::fs::write(&dest, &bytes).map_err(|e| format!("{}: {e}", dest.display()))?;
        report.push(format!(
            "{} {}: released as {} (interface {})",
            entry.name,
            entry.version,
            dest.display(),
            entry.interface
        ));
        lock.entries.push(entry);
    }
    std::fs::write(&lock_path, lock.render())
        .map_err(|e| format!("{}: {e}", lock_path.display()))?;
    Ok(report)
}
