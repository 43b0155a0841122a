//! Jobs on the wire: submitting one, the job view every answer, event and webhook carries, the
//! list, the log, and the vocabulary the host's job records share with them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::{ErrorCode, Object};

/// Why a job (or one optional output of it) failed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct JobError {
    pub code: ErrorCode,
    /// The pipeline step that failed: download, probe, analyze, plan, validate, ffmpeg, upload.
    pub step: String,
    pub message: String,
}

impl JobError {
    pub fn new(code: ErrorCode, step: &str, message: impl Into<String>) -> Self {
        Self {
            code,
            step: step.to_owned(),
            message: message.into(),
        }
    }
}

impl std::fmt::Display for JobError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} at {}: {}", self.code, self.step, self.message)
    }
}

impl std::error::Error for JobError {}

/// Where a job answered from the result cache got its outputs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Cached {
    /// The job that ran ffmpeg and stored the outputs this one reuses.
    pub job: Uuid,
}

/// `PENDING → PROCESSING → COMPLETED | FAILED`, or back to `PENDING` (a retry after a
/// retryable failure) until the attempts run out: then `DEAD`. `CANCELLED` by request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum JobState {
    Pending,
    Processing,
    Completed,
    Failed,
    Dead,
    Cancelled,
}

impl JobState {
    /// The wire name: `PENDING`, `COMPLETED`, ...
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "PENDING",
            Self::Processing => "PROCESSING",
            Self::Completed => "COMPLETED",
            Self::Failed => "FAILED",
            Self::Dead => "DEAD",
            Self::Cancelled => "CANCELLED",
        }
    }

    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            Self::Completed | Self::Failed | Self::Dead | Self::Cancelled
        )
    }
}

/// Which queue a job waits in; workers take high before normal before low, FIFO within one.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Priority {
    High,
    #[default]
    Normal,
    Low,
}

impl Priority {
    pub const ALL: [Priority; 3] = [Priority::High, Priority::Normal, Priority::Low];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::High => "high",
            Self::Normal => "normal",
            Self::Low => "low",
        }
    }
}

/// One state change, timestamped, with the failure that caused it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Transition {
    pub state: JobState,
    pub at: String,
    pub attempt: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<ErrorCode>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct StreamSummary {
    pub index: u32,
    pub kind: String,
    pub codec: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sample_rate: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channels: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channel_layout: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub width: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub height: Option<u32>,
}

/// What an output is: one file, one image, a run of images, an HLS rendition, an HLS package
/// (its master playlist), or a text document.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum OutputKind {
    #[default]
    File,
    Still,
    ImageSequence,
    HlsRendition,
    HlsPackage,
    Document,
}

/// How an output of a finished job ended: an optional one may fail without failing the job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum OutputState {
    #[default]
    Completed,
    Failed,
}

/// Where one output of a running attempt stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum OutputPhase {
    /// Its step has not started.
    Pending,
    /// ffmpeg is writing it.
    Running,
    /// Written; being checked and stored.
    Storing,
    Completed,
    Failed,
}

/// One output's state and fraction done (0..1) while the job runs.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct OutputProgress {
    pub state: OutputPhase,
    pub progress: f64,
}

/// How a completed job ended: every output stored, or only the required ones (`partial`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Complete,
    Partial,
}

/// One stored object of an output (a segment, a playlist, an image of a sequence).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ObjectRecord {
    pub key: String,
    pub uri: String,
    pub content_type: String,
    pub size_bytes: u64,
}

/// What the host measured of one variant stream of an HLS package, as its master says it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct VariantRecord {
    pub output: String,
    pub bandwidth: u64,
    pub average_bandwidth: u64,
    pub codecs: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resolution: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub frame_rate: Option<f64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Timings {
    pub created_at: String,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    /// Seconds from submission to the start of the last attempt.
    pub queue_s: Option<f64>,
    /// Seconds the last attempt ran.
    pub run_s: Option<f64>,
    /// Seconds spent in ffprobe and ffmpeg child processes during the last attempt.
    pub ffmpeg_s: Option<f64>,
}

/// One line of a job's log: host events, the preset's own log, ffmpeg command lines and stderr.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct LogEntry {
    pub at: String,
    pub source: String,
    pub message: String,
}

fn yes() -> bool {
    true
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// `POST /v1/jobs`: run a preset over stored inputs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SubmitJob {
    /// The preset's name.
    pub preset: String,
    /// A semver requirement (`1`, `^1.2`, `=1.2.0`); the newest live version matching it runs.
    /// Without it, the newest live version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Each input the preset declares, by name: an object URI of this host's storage.
    pub inputs: BTreeMap<String, String>,
    /// The preset's params; defaults fill what is left out.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub params: Object,
    #[serde(default)]
    pub priority: Priority,
    /// A URL the job's terminal event is POSTed to (Standard Webhooks).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook: Option<String>,
    /// Log every ffmpeg step's stderr, not only a failing one's.
    #[serde(default)]
    pub verbose: bool,
    /// Whether the result cache may answer the job and keep its outputs.
    #[serde(default = "yes")]
    pub cache: bool,
}

impl SubmitJob {
    /// A submission of `preset` over `inputs` with every option at its default.
    pub fn new(preset: impl Into<String>, inputs: BTreeMap<String, String>) -> Self {
        Self {
            preset: preset.into(),
            version: None,
            inputs,
            params: Object::new(),
            priority: Priority::default(),
            webhook: None,
            verbose: false,
            cache: true,
        }
    }
}

/// `POST /v1/jobs/{id}/replay`: the same inputs, pinned version and params, run again.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReplayJob {
    /// Log every ffmpeg step's stderr.
    #[serde(default)]
    pub verbose: bool,
}

/// The exact preset version a job runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PresetRef {
    pub name: String,
    pub version: String,
}

/// One stored object of an output (a segment, a playlist, an image of a sequence).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct StoredObject {
    #[serde(flatten)]
    pub object: ObjectRecord,
    /// A signed URL to GET the object, valid for an hour (absent in webhooks).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub download_url: Option<String>,
}

/// One output of a job, as the preset's plan named it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Output {
    pub name: String,
    pub kind: OutputKind,
    pub state: OutputState,
    /// An optional output may fail without failing the job (its outcome is then `partial`).
    pub optional: bool,
    /// The output's main object: the file or image itself, a rendition's media playlist, a
    /// package's master playlist, the first image of a sequence. Empty when it failed.
    pub uri: String,
    pub container: String,
    /// All of the output's objects together.
    pub size_bytes: u64,
    pub duration_s: Option<f64>,
    pub codecs: Vec<String>,
    pub streams: Vec<StreamSummary>,
    /// Why an optional output failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<JobError>,
    /// A signed URL to GET the main object, valid for an hour (absent in webhooks).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub download_url: Option<String>,
    /// Every object of a multi-object output (segments, images), main object included.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub objects: Vec<StoredObject>,
    /// An HLS package's variant streams, as its master playlist declares them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub variants: Vec<VariantRecord>,
}

/// A job as every client sees it: the answer of `GET /v1/jobs/{id}` and of submitting,
/// replaying and cancelling, the data of each event of its event stream, and a webhook's `data`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Job {
    pub id: Uuid,
    pub state: JobState,
    /// The fraction done (0..1) of the running attempt; 1 once completed.
    pub progress: f64,
    /// Each output's phase and fraction done while an attempt runs, by output name.
    #[serde(default)]
    pub output_progress: BTreeMap<String, OutputProgress>,
    pub preset: PresetRef,
    pub inputs: BTreeMap<String, String>,
    /// Params as validated at submission, defaults filled in.
    #[schema(value_type = Object)]
    pub params: Object,
    pub outputs: Vec<Output>,
    /// Set when the job completes: `partial` when an optional output failed.
    pub outcome: Option<Outcome>,
    /// What the preset reported when it finished (measurements, choices it made).
    #[schema(value_type = Option<Object>)]
    pub report: Option<Object>,
    pub error: Option<JobError>,
    pub attempts: u32,
    pub max_attempts: u32,
    pub priority: Priority,
    /// When a retry is due, while the job waits for one.
    pub next_attempt_at: Option<String>,
    /// Every change of state, oldest first (the latest 64).
    pub history: Vec<Transition>,
    /// The job this one replays.
    pub replay_of: Option<Uuid>,
    /// Whether the result cache may answer the job and keep its outputs.
    pub cache: bool,
    /// Set when the job completed from the result cache: the job whose outputs it reuses.
    pub cached: Option<Cached>,
    /// The SHA-256 of each input's bytes, by input name, once known.
    #[serde(default)]
    pub input_sha256: BTreeMap<String, String>,
    pub webhook: Option<String>,
    pub verbose: bool,
    pub timings: Timings,
    /// Set on the answer to a cancel of a running job: its worker stops it within about a second.
    #[serde(default, skip_serializing_if = "is_false")]
    pub cancel_requested: bool,
}

/// One job in a list: enough to find it and see how it ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct JobSummary {
    pub id: Uuid,
    pub state: JobState,
    pub preset: PresetRef,
    pub priority: Priority,
    pub attempts: u32,
    pub created_at: String,
    pub finished_at: Option<String>,
    pub error: Option<ErrorSummary>,
}

/// A failure's code and step, as a list shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ErrorSummary {
    pub code: ErrorCode,
    pub step: String,
}

/// `GET /v1/jobs`: jobs newest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct JobList {
    pub jobs: Vec<JobSummary>,
    /// Pass as `cursor` for the next page; `null` on the last one.
    pub next_cursor: Option<String>,
}

/// `GET /v1/jobs/{id}/logs`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct JobLogs {
    pub id: Uuid,
    pub logs: Vec<LogEntry>,
}

/// The kind of a job event (its SSE `event:` name; the `data:` is a [`Job`]): `state` when its state or attempt changed, `progress` otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum JobEventKind {
    State,
    Progress,
}

impl JobEventKind {
    /// The SSE `event:` name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::State => "state",
            Self::Progress => "progress",
        }
    }
}

/// One server-sent event of `GET /v1/jobs/{id}/events`: its `event:` name and its `data:`,
/// which is a [`Job`] as JSON (the OpenAPI document says so with `contentSchema`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct JobEventFrame {
    pub event: JobEventKind,
    pub data: String,
}

/// The kind of a webhook event, one per terminal state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub enum WebhookEventType {
    #[serde(rename = "job.completed")]
    JobCompleted,
    #[serde(rename = "job.failed")]
    JobFailed,
    #[serde(rename = "job.dead")]
    JobDead,
    #[serde(rename = "job.cancelled")]
    JobCancelled,
}

impl WebhookEventType {
    /// The event type for a job's terminal state; `None` for a state that is not terminal.
    pub fn of(state: JobState) -> Option<Self> {
        match state {
            JobState::Completed => Some(Self::JobCompleted),
            JobState::Failed => Some(Self::JobFailed),
            JobState::Dead => Some(Self::JobDead),
            JobState::Cancelled => Some(Self::JobCancelled),
            JobState::Pending | JobState::Processing => None,
        }
    }
}

/// The body POSTed to a job's webhook when it ends (Standard Webhooks: signed with the
/// `webhook-id`, `webhook-timestamp` and `webhook-signature` headers).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct WebhookEvent {
    #[serde(rename = "type")]
    pub kind: WebhookEventType,
    pub timestamp: String,
    /// The job as `GET /v1/jobs/{id}` shows it, without download URLs (a delivery may be
    /// retried for hours; GET the job for fresh ones).
    pub data: Job,
}
