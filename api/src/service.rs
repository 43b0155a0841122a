//! The rest of the API: uploads, the queue, health and readiness.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// `POST /v1/uploads`: a fresh object key to PUT a file to.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUpload {
    /// The file's name; only its last path component, cleaned, is kept in the key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filename: Option<String>,
    /// The exact size the PUT must have; without it, up to the host's upload limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size_bytes: Option<u64>,
}

/// Where and how to PUT an upload, and the URI to name it by in a job's inputs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct UploadGrant {
    /// The object URI to use as a job input.
    pub uri: String,
    /// A signed URL to PUT the bytes to.
    pub upload_url: String,
    /// Always `PUT`.
    pub method: String,
    pub expires_at: String,
    pub max_bytes: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size_bytes: Option<u64>,
    /// Headers the PUT must carry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub headers: Option<BTreeMap<String, String>>,
}

/// `GET /healthz`: the process is up; what it found missing at start.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Health {
    /// Always `ok`.
    pub status: String,
    /// `local` or `s3`.
    pub storage: String,
    /// How many preset versions are loaded.
    pub presets: usize,
    pub warnings: Vec<String>,
}

/// `GET /v1/queue`: the queue as it stands.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct QueueDepth {
    /// Jobs waiting for a worker, per priority.
    pub pending: PendingByPriority,
    /// Jobs workers hold (running, or about to).
    pub processing: u64,
    /// Jobs waiting for a retry's backoff to pass.
    pub delayed: u64,
}

/// Jobs waiting for a worker, per priority (taken high before normal before low).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PendingByPriority {
    pub high: u64,
    pub normal: u64,
    pub low: u64,
}

/// `GET /readyz` when ready. Not ready is `503`, a problem document (`QUEUE_UNAVAILABLE`,
/// `STORAGE_FAILED` or `PRESET_LOADING`) carrying `ready: false` and these same members.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Ready {
    /// Always `ready`.
    pub status: String,
    /// `ok`, or what Redis said.
    pub redis: String,
    /// `ok`, or what storage said.
    pub storage: String,
    pub presets: PresetLoading,
}

/// How far loading the published preset versions has come in this process.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PresetLoading {
    /// Versions attempted (loaded, or refused).
    pub loaded: usize,
    pub total: usize,
    /// `ok` once every version is attempted, else `loading`.
    pub status: String,
}
