//! The registry: which presets exist, at which versions, and resolving a job's semver
//! requirement to one exact version.
//!
//! Presets are loaded from a directory of built `.wasm` components at start. A component that
//! fails to compile, does not implement the interface or describes itself inconsistently is
//! refused with a reason and skipped; it never stops the host.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::sync::{Arc, RwLock};

use semver::{Version, VersionReq};
use sha2::{Digest, Sha256};

use super::runtime::{CompiledPreset, Runtime};
use super::wit;
use crate::error::{ApiError, ErrorCode};

/// One loaded preset version.
pub struct Preset {
    pub name: String,
    pub version: Version,
    pub descriptor: wit::Descriptor,
    /// SHA-256 of the component's bytes, recorded in jobs for replay.
    pub sha256: String,
    pub compiled: CompiledPreset,
}

#[derive(Default)]
pub struct Registry {
    presets: RwLock<BTreeMap<String, BTreeMap<Version, Arc<Preset>>>>,
}

/// Why a component was not accepted as a preset.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct LoadError(pub String);

impl Registry {
    /// Loads every `*.wasm` in `dir`. Returns the refused files with their reasons.
    pub fn load_dir(&self, runtime: &Runtime, dir: &Path) -> anyhow::Result<Vec<(String, String)>> {
        let mut refused = Vec::new();
        let entries = std::fs::read_dir(dir).map_err(|e| {
            anyhow::anyhow!(
                "cannot read the presets directory {}: {e}; build the presets with \
                 presets-wasm/build.sh or point --presets-dir at a directory of .wasm files",
                dir.display()
            )
        })?;
        let mut paths: Vec<_> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "wasm"))
            .collect();
        paths.sort();
        for path in paths {
            let shown = path.display().to_string();
            let result = std::fs::read(&path)
                .map_err(|e| LoadError(format!("cannot read: {e}")))
                .and_then(|bytes| self.add(runtime, &bytes));
            match result {
                Ok(preset) => tracing::info!(
                    preset = %preset.name, version = %preset.version, file = %shown,
                    "loaded preset"
                ),
                Err(err) => {
                    tracing::warn!(file = %shown, reason = %err, "refused preset component");
                    refused.push((shown, err.0));
                }
            }
        }
        Ok(refused)
    }

    /// Compiles, describes, checks and adds one component.
    pub fn add(&self, runtime: &Runtime, bytes: &[u8]) -> Result<Arc<Preset>, LoadError> {
        let compiled = runtime.compile(bytes).map_err(LoadError)?;
        let descriptor = runtime
            .describe(&compiled)
            .map_err(|e| LoadError(format!("describe() failed: {e}")))?;
        let version = check_descriptor(&descriptor)?;
        let preset = Arc::new(Preset {
            name: descriptor.name.clone(),
            version,
            sha256: hex::encode(Sha256::digest(bytes)),
            descriptor,
            compiled,
        });
        let mut presets = self.presets.write().expect("registry lock");
        let versions = presets.entry(preset.name.clone()).or_default();
        if versions.contains_key(&preset.version) {
            return Err(LoadError(format!(
                "{}@{} is already loaded; a published version is immutable, bump the version",
                preset.name, preset.version
            )));
        }
        versions.insert(preset.version.clone(), preset.clone());
        Ok(preset)
    }

    /// Resolves a semver requirement (default: the newest version) to one exact version.
    pub fn resolve(&self, name: &str, requirement: Option<&str>) -> Result<Arc<Preset>, ApiError> {
        let presets = self.presets.read().expect("registry lock");
        let versions = presets.get(name).ok_or_else(|| {
            ApiError::new(
                ErrorCode::PresetNotFound,
                format!(
                    "no preset named '{name}'; GET /v1/presets lists the presets this host has"
                ),
            )
            .with("preset", name)
        })?;
        let requirement = match requirement {
            None => VersionReq::STAR,
            Some(text) => VersionReq::parse(text).map_err(|e| {
                ApiError::new(
                    ErrorCode::VersionRequirementInvalid,
                    format!("version '{text}' is not a semver requirement ({e}); try \"^1\" or \"1.0.0\""),
                )
            })?,
        };
        versions
            .iter()
            .rev()
            .find(|(v, _)| requirement.matches(v))
            .map(|(_, p)| p.clone())
            .ok_or_else(|| {
                let have: Vec<String> = versions.keys().map(|v| v.to_string()).collect();
                ApiError::new(
                    ErrorCode::PresetVersionNotFound,
                    format!(
                        "no version of '{name}' matches '{requirement}'; available: {}",
                        have.join(", ")
                    ),
                )
                .with("preset", name)
            })
    }

    /// One exact version, as a job is pinned to it.
    pub fn get(&self, name: &str, version: &Version) -> Option<Arc<Preset>> {
        let presets = self.presets.read().expect("registry lock");
        presets.get(name)?.get(version).cloned()
    }

    /// Every loaded preset, grouped by name, versions oldest first.
    pub fn all(&self) -> Vec<(String, Vec<Arc<Preset>>)> {
        let presets = self.presets.read().expect("registry lock");
        presets
            .iter()
            .map(|(name, versions)| (name.clone(), versions.values().cloned().collect()))
            .collect()
    }
}

fn is_name(s: &str, max: usize) -> bool {
    let bytes = s.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= max
        && (bytes[0].is_ascii_lowercase() || bytes[0].is_ascii_digit())
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-' || *b == b'_')
}

/// A descriptor must name itself sanely and declare params whose defaults fit their own ranges.
fn check_descriptor(d: &wit::Descriptor) -> Result<Version, LoadError> {
    let fail = |why: String| Err(LoadError(format!("describe() is inconsistent: {why}")));
    if !is_name(&d.name, 64) {
        return fail(format!(
            "name '{}' must be 1-64 characters of a-z, 0-9, '-' or '_'",
            d.name
        ));
    }
    let version = match Version::parse(&d.version) {
        Ok(v) => v,
        Err(e) => return fail(format!("version '{}' is not semver: {e}", d.version)),
    };
    if d.summary.len() > 1024 {
        return fail("summary is longer than 1024 bytes".into());
    }
    let mut seen = HashSet::new();
    for input in &d.inputs {
        if !is_name(&input.name, 32) || !seen.insert(input.name.as_str()) {
            return fail(format!(
                "input name '{}' is invalid or repeated",
                input.name
            ));
        }
    }
    if d.inputs.is_empty() {
        return fail("a preset must declare at least one input".into());
    }
    let mut seen = HashSet::new();
    for p in &d.params {
        if !is_name(&p.name, 64) || !seen.insert(p.name.as_str()) {
            return fail(format!("param name '{}' is invalid or repeated", p.name));
        }
        if let Err(why) = super::params::check_spec(p) {
            return fail(format!("param '{}': {why}", p.name));
        }
    }
    Ok(version)
}
