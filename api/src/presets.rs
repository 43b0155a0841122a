//! Presets on the wire: the catalog's listings, publishing, and a version's dry run.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use crate::Object;

/// `GET /v1/presets`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PresetList {
    pub presets: Vec<Preset>,
}

/// A preset with its versions, newest first; its summary is the newest live version's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Preset {
    pub name: String,
    pub summary: String,
    /// The newest version that is not yanked; `null` when every version is.
    pub latest: Option<String>,
    pub versions: Vec<PresetVersion>,
}

/// How a version came to be published.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum PresetOrigin {
    /// Found in the presets directory of a host at start.
    Bundled,
    /// Uploaded through `POST /v1/presets`.
    Uploaded,
}

/// One published version: its record, whether it is yanked, and what it declares.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PresetVersion {
    pub name: String,
    pub version: String,
    pub summary: String,
    /// The SHA-256 of the component's bytes.
    pub sha256: String,
    pub size_bytes: u64,
    /// `mediahost:preset@<version>`: the interface the component was built for.
    pub interface: String,
    pub origin: PresetOrigin,
    pub published_at: String,
    /// A yanked version takes no new jobs unless pinned exactly; its jobs replay.
    pub yanked: bool,
    pub yanked_at: Option<String>,
    pub inputs: Vec<InputSpec>,
    pub params: Vec<ParamSchema>,
    /// What compiling the component cost this host: only in the answer to publishing it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compile: Option<CompileCost>,
}

/// What loading a published component cost: compiled in a subprocess of its own, or read from
/// the host's artifact cache.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CompileCost {
    /// Wall-clock milliseconds.
    pub ms: u64,
    /// The compiling process's peak resident memory, in MiB (0 when read from the cache).
    pub peak_rss_mib: u64,
    /// Whether the compiled artifact came from the cache instead of a compile.
    pub cached: bool,
}

/// An input a preset declares.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct InputSpec {
    pub name: String,
    pub description: String,
    pub required: bool,
}

/// A param a preset declares, with its type and bounds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ParamSchema {
    pub name: String,
    pub description: String,
    /// A required param has no default and must be given by every job.
    pub required: bool,
    #[serde(flatten)]
    pub kind: ParamType,
}

/// A param's type, with the bounds and default that type has.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum ParamType {
    Integer {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        min: Option<i64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max: Option<i64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        default: Option<i64>,
    },
    Number {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        min: Option<f64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max: Option<f64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        default: Option<f64>,
    },
    Boolean {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        default: Option<bool>,
    },
    Text {
        max_length: u32,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        default: Option<String>,
    },
    Choice {
        options: Vec<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        default: Option<String>,
    },
}

/// An input of a dry run: an object URI to probe, or media info as a job's round would get it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum DryRunInput {
    Uri(String),
    #[schema(value_type = Object)]
    Media(Object),
}

fn first_round() -> u32 {
    1
}

/// `POST /v1/presets/{name}/{version}/plan`: one planning call, validated and rendered, not run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DryRunRequest {
    pub inputs: BTreeMap<String, DryRunInput>,
    #[serde(default)]
    #[schema(value_type = Object)]
    pub params: Object,
    /// The round to plan (a preset plans in rounds, measuring between them).
    #[serde(default = "first_round")]
    pub round: u32,
    /// Media info of what earlier rounds produced, by name.
    #[serde(default)]
    #[schema(value_type = BTreeMap<String, Object>)]
    pub produced: BTreeMap<String, Object>,
    /// Results of the analyses earlier rounds asked for.
    #[serde(default)]
    #[schema(value_type = Vec<Object>)]
    pub analyses: Vec<Object>,
}

/// What a planning round decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Decision {
    /// Run these steps, measure, and plan again.
    Next,
    /// These steps deliver the outputs.
    Finish,
}

/// The preset version a dry run planned with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PresetPin {
    pub name: String,
    pub version: String,
    pub sha256: String,
}

/// One ffmpeg command a dry run rendered, as a worker would run it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RenderedCommand {
    pub step: String,
    pub argv: Vec<String>,
    /// The argv as one shell-quoted line, to read or paste.
    pub command: String,
    pub outputs: Vec<RenderedOutput>,
}

/// An output of a rendered command: where the worker would write it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RenderedOutput {
    pub name: String,
    pub container: String,
    pub path: String,
    /// The objects the output would be stored as.
    #[schema(value_type = Object)]
    pub objects: Value,
}

/// The answer of a dry run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct DryRunAnswer {
    pub preset: PresetPin,
    pub round: u32,
    pub decision: Decision,
    /// The media info the preset was given, by input name.
    #[schema(value_type = BTreeMap<String, Object>)]
    pub inputs: BTreeMap<String, Value>,
    /// The plan's steps as the preset returned them, validated.
    #[schema(value_type = Vec<Object>)]
    pub steps: Vec<Value>,
    pub commands: Vec<RenderedCommand>,
    /// The analyses a `next` round asks for.
    #[schema(value_type = Vec<Object>)]
    pub analyses: Vec<Value>,
    /// A `finish` round's report.
    #[schema(value_type = Option<Object>)]
    pub report: Option<Object>,
    /// What the preset logged during the call (including its stdout and stderr).
    #[schema(value_type = Vec<Object>)]
    pub logs: Vec<Value>,
    /// A `finish` round's HLS packages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Vec<Object>>)]
    pub packages: Option<Vec<Value>>,
    /// A `finish` round's documents.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Vec<Object>>)]
    pub documents: Option<Vec<Value>>,
}
