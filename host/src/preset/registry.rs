//! The registry: the preset versions this process has loaded, which of them are yanked, and
//! resolving a job's semver requirement to one exact version.
//!
//! It is an in-memory view. The durable record (components in object storage, the index in
//! Redis) and keeping this view in step with it across processes is `preset::catalog`.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, RwLock};

use mediahost_api::PresetOrigin;
use semver::{Version, VersionReq};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::compile::CompileCost;
use super::runtime::{CompiledFrom, CompiledPreset, LoadError, Runtime};
use crate::error::{ApiError, ErrorCode};
use crate::model;

/// One loaded preset version.
pub struct Preset {
    pub name: String,
    pub version: Version,
    pub descriptor: model::Descriptor,
    /// SHA-256 of the component's bytes, recorded in jobs for replay.
    pub sha256: String,
    /// The `mediahost:preset` interface version the component was built for.
    pub interface: Version,
    pub compiled: CompiledPreset,
}

/// The published facts of one version, as the catalog stores them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PresetRecord {
    pub name: String,
    pub version: Version,
    pub sha256: String,
    pub size_bytes: u64,
    /// `mediahost:preset@<version>` the component was built for.
    pub interface: String,
    pub published_at: String,
    pub origin: PresetOrigin,
}

/// A loaded version with its published record and whether it is yanked.
#[derive(Clone)]
pub struct Listing {
    pub preset: Arc<Preset>,
    pub record: PresetRecord,
    pub yanked_at: Option<String>,
}

#[derive(Default)]
pub struct Registry {
    presets: RwLock<BTreeMap<String, BTreeMap<Version, Listing>>>,
}

/// Compiles (or loads from the artifact cache), describes and checks one component.
pub fn load(runtime: &Runtime, bytes: &[u8]) -> Result<(Arc<Preset>, CompiledFrom), LoadError> {
    load_with_cost(runtime, bytes).map(|(preset, cost)| (preset, cost.from))
}

/// Like [`load`], with what compiling cost.
pub fn load_with_cost(
    runtime: &Runtime,
    bytes: &[u8],
) -> Result<(Arc<Preset>, CompileCost), LoadError> {
    let sha256 = hex::encode(Sha256::digest(bytes));
    let loaded = runtime.load(bytes, &sha256)?;
    let descriptor = runtime
        .describe(&loaded.compiled)
        .map_err(|e| match e.code() {
            ErrorCode::PresetFailed => LoadError::invalid(format!("describe() failed: {e}")),
            code => LoadError {
                code,
                message: format!("describe() could not run: {e}"),
            },
        })?;
    let version = check_descriptor(&descriptor)?;
    let preset = Arc::new(Preset {
        name: descriptor.name.clone(),
        version,
        sha256,
        descriptor,
        interface: loaded.interface,
        compiled: loaded.compiled,
    });
    Ok((preset, loaded.cost))
}

impl Registry {
    /// Adds a loaded version. A version is immutable: if this name@version is already here
    /// with other bytes, the one already here stays and this returns false.
    pub fn insert(&self, listing: Listing) -> bool {
        let mut presets = self.presets.write().expect("registry lock");
        let versions = presets.entry(listing.preset.name.clone()).or_default();
        match versions.get(&listing.preset.version) {
            Some(have) => have.preset.sha256 == listing.preset.sha256,
            None => {
                versions.insert(listing.preset.version.clone(), listing);
                true
            }
        }
    }

    /// Whether this exact component is loaded as this version.
    pub fn has(&self, name: &str, version: &Version, sha256: &str) -> bool {
        self.listing(name, version)
            .is_some_and(|l| l.preset.sha256 == sha256)
    }

    /// Marks a version yanked (or not); returns false when the version is not loaded.
    pub fn set_yanked(&self, name: &str, version: &Version, yanked_at: Option<String>) -> bool {
        let mut presets = self.presets.write().expect("registry lock");
        match presets.get_mut(name).and_then(|v| v.get_mut(version)) {
            Some(listing) => {
                listing.yanked_at = yanked_at;
                true
            }
            None => false,
        }
    }

    /// Resolves a semver requirement (default: the newest version) to the newest exact version
    /// that matches and is not yanked.
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
        if let Some(found) = versions
            .iter()
            .rev()
            .find(|(v, l)| l.yanked_at.is_none() && requirement.matches(v))
        {
            return Ok(found.1.preset.clone());
        }
        let live: Vec<String> = versions
            .iter()
            .filter(|(_, l)| l.yanked_at.is_none())
            .map(|(v, _)| v.to_string())
            .collect();
        let yanked: Vec<String> = versions
            .iter()
            .filter(|(v, l)| l.yanked_at.is_some() && requirement.matches(v))
            .map(|(v, _)| v.to_string())
            .collect();
        let mut detail = format!(
            "no version of '{name}' matches '{requirement}'; available: {}",
            if live.is_empty() {
                "none".to_owned()
            } else {
                live.join(", ")
            }
        );
        if !yanked.is_empty() {
            detail.push_str(&format!(
                " ({} matches but is yanked: it runs only for jobs already pinned to it)",
                yanked.join(", ")
            ));
        }
        Err(ApiError::new(ErrorCode::PresetVersionNotFound, detail).with("preset", name))
    }

    /// One exact version, yanked or not, as a job is pinned to it.
    pub fn get(&self, name: &str, version: &Version) -> Option<Arc<Preset>> {
        self.listing(name, version).map(|l| l.preset)
    }

    pub fn listing(&self, name: &str, version: &Version) -> Option<Listing> {
        let presets = self.presets.read().expect("registry lock");
        presets.get(name)?.get(version).cloned()
    }

    /// Every loaded version, grouped by name, versions oldest first.
    pub fn all(&self) -> Vec<(String, Vec<Listing>)> {
        let presets = self.presets.read().expect("registry lock");
        presets
            .iter()
            .map(|(name, versions)| (name.clone(), versions.values().cloned().collect()))
            .collect()
    }

    /// How many versions are loaded.
    pub fn len(&self) -> usize {
        let presets = self.presets.read().expect("registry lock");
        presets.values().map(BTreeMap::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
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
fn check_descriptor(d: &model::Descriptor) -> Result<Version, LoadError> {
    let fail = |why: String| {
        Err(LoadError::invalid(format!(
            "describe() is inconsistent: {why}"
        )))
    };
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
    if !version.build.is_empty() {
        // Semver requirements ignore build metadata, so `=1.0.0` would match `1.0.0+patched`:
        // such a version could pose as the one a job pins.
        return fail(format!(
            "version '{version}' has build metadata ('+{}'); build metadata does not make a \
             version distinct, so it is not accepted: bump the version instead (e.g. {}.{}.{})",
            version.build,
            version.major,
            version.minor,
            version.patch + 1
        ));
    }
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
