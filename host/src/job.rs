//! The job record: what was asked, what happened, and where the results are.
//!
//! Records live in Redis as JSON (keys in `lifecycle::keys`); the job's log is a Redis list beside
//! it. The record is written whole by each lifecycle transition, so readers never see half of one;
//! a running attempt's progress lives beside it and is merged in when the record is read.
//!
//! Not here: changing a job's state (`lifecycle`).

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use redis::AsyncCommands;
use semver::Version;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::error::{ErrorCode, JobError};
use crate::lifecycle::Keys;
pub use mediahost_api::{
    Cached, JobState, LogEntry, ObjectRecord, Outcome, OutputKind, OutputPhase, OutputProgress,
    OutputState, Priority, StreamSummary, Timings, Transition, VariantRecord,
};

fn default_max_attempts() -> u32 {
    3
}

fn default_cache() -> bool {
    true
}

/// The most transitions kept in a record (a job retried many times keeps the latest).
const MAX_HISTORY: usize = 64;

/// The exact preset version a job is pinned to.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PresetPin {
    pub name: String,
    pub version: Version,
    pub sha256: String,
}

/// A running attempt's progress: the job's fraction done and each output's, by output name.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Progress {
    pub fraction: f64,
    pub outputs: BTreeMap<String, OutputProgress>,
}

impl OutputRecord {
    /// The output as the wire contract shows it, without download URLs.
    pub fn wire(&self) -> mediahost_api::Output {
        mediahost_api::Output {
            name: self.name.clone(),
            kind: self.kind,
            state: self.state,
            optional: self.optional,
            uri: self.uri.clone(),
            container: self.container.clone(),
            size_bytes: self.size_bytes,
            duration_s: self.duration_s,
            codecs: self.codecs.clone(),
            streams: self.streams.clone(),
            error: self.error.clone(),
            download_url: None,
            objects: self
                .objects
                .iter()
                .map(|object| mediahost_api::StoredObject {
                    object: object.clone(),
                    download_url: None,
                })
                .collect(),
            variants: self.variants.clone(),
        }
    }

    /// The record of an output that was not stored, with why.
    pub fn failed(name: &str, kind: OutputKind, optional: bool, error: JobError) -> Self {
        Self {
            name: name.to_owned(),
            kind,
            state: OutputState::Failed,
            optional,
            error: Some(error),
            uri: String::new(),
            key: String::new(),
            container: String::new(),
            size_bytes: 0,
            duration_s: None,
            codecs: Vec::new(),
            streams: Vec::new(),
            objects: Vec::new(),
            variants: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OutputRecord {
    pub name: String,
    #[serde(default)]
    pub kind: OutputKind,
    #[serde(default)]
    pub state: OutputState,
    #[serde(default)]
    pub optional: bool,
    /// Why an optional output failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<JobError>,
    /// The output's main object: the file or image itself, a rendition's media playlist, a
    /// package's master playlist, the first image of a sequence. Empty when it failed.
    pub uri: String,
    pub key: String,
    pub container: String,
    /// All of the output's objects together.
    pub size_bytes: u64,
    pub duration_s: Option<f64>,
    pub codecs: Vec<String>,
    pub streams: Vec<StreamSummary>,
    /// Every object of a multi-object output (segments, images), main object included.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub objects: Vec<ObjectRecord>,
    /// An HLS package's variant streams, as its master playlist declares them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub variants: Vec<VariantRecord>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Job {
    pub id: Uuid,
    pub state: JobState,
    pub progress: f64,
    /// Each output's state and progress while an attempt runs (merged in from the live record;
    /// a finished job's outputs carry their own state instead).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub output_progress: BTreeMap<String, OutputProgress>,
    pub preset: PresetPin,
    pub inputs: BTreeMap<String, String>,
    /// Params as validated at submit time, defaults filled in.
    pub params: Map<String, Value>,
    pub outputs: Vec<OutputRecord>,
    /// Set when the job completes: `partial` when an optional output failed.
    #[serde(default)]
    pub outcome: Option<Outcome>,
    pub report: Option<Map<String, Value>>,
    pub error: Option<JobError>,
    pub attempts: u32,
    #[serde(default = "default_max_attempts")]
    pub max_attempts: u32,
    #[serde(default)]
    pub priority: Priority,
    /// When a retry is due, while the job waits for one.
    #[serde(default)]
    pub next_attempt_at: Option<String>,
    #[serde(default)]
    pub next_attempt_unix_ms: Option<u64>,
    #[serde(default)]
    pub history: Vec<Transition>,
    /// Log every ffmpeg step's stderr, not only a failing one's.
    #[serde(default)]
    pub verbose: bool,
    /// Where the job's terminal event is delivered (see `webhook`).
    #[serde(default)]
    pub webhook: Option<String>,
    /// The job this one replays, for `POST /v1/jobs/{id}/replay`.
    #[serde(default)]
    pub replay_of: Option<Uuid>,
    /// Whether the job may be answered from the result cache and fill it (`"cache": false`
    /// opts out of both).
    #[serde(default = "default_cache")]
    pub cache: bool,
    /// The SHA-256 of each input's bytes, by input name, once known (at upload or download).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub input_sha256: BTreeMap<String, String>,
    /// Set when the job completed from the result cache: the job whose outputs it reuses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cached: Option<Cached>,
    pub created_unix_ms: u64,
    pub timings: Timings,
}

pub fn now_rfc3339() -> String {
    humantime::format_rfc3339_millis(SystemTime::now()).to_string()
}

pub fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl Job {
    /// The job as the wire contract shows it (`GET /v1/jobs/{id}`, its events, its webhook),
    /// without download URLs: the API signs fresh ones for each answer.
    pub fn wire(&self) -> mediahost_api::Job {
        mediahost_api::Job {
            id: self.id,
            state: self.state,
            progress: self.progress,
            output_progress: self.output_progress.clone(),
            preset: mediahost_api::PresetRef {
                name: self.preset.name.clone(),
                version: self.preset.version.to_string(),
            },
            inputs: self.inputs.clone(),
            params: self.params.clone(),
            outputs: self.outputs.iter().map(OutputRecord::wire).collect(),
            outcome: self.outcome,
            report: self.report.clone(),
            error: self.error.clone(),
            attempts: self.attempts,
            max_attempts: self.max_attempts,
            priority: self.priority,
            next_attempt_at: self.next_attempt_at.clone(),
            history: self.history.clone(),
            replay_of: self.replay_of,
            cache: self.cache,
            cached: self.cached.clone(),
            input_sha256: self.input_sha256.clone(),
            webhook: self.webhook.clone(),
            verbose: self.verbose,
            timings: self.timings.clone(),
            cancel_requested: false,
        }
    }

    /// The job as a list shows it.
    pub fn summary(&self) -> mediahost_api::JobSummary {
        mediahost_api::JobSummary {
            id: self.id,
            state: self.state,
            preset: mediahost_api::PresetRef {
                name: self.preset.name.clone(),
                version: self.preset.version.to_string(),
            },
            priority: self.priority,
            attempts: self.attempts,
            created_at: self.timings.created_at.clone(),
            finished_at: self.timings.finished_at.clone(),
            error: self.error.as_ref().map(|e| mediahost_api::ErrorSummary {
                code: e.code,
                step: e.step.clone(),
            }),
        }
    }

    pub fn new(
        preset: PresetPin,
        inputs: BTreeMap<String, String>,
        params: Map<String, Value>,
    ) -> Self {
        let now = SystemTime::now();
        let created_at = now_rfc3339();
        Self {
            id: Uuid::new_v4(),
            state: JobState::Pending,
            progress: 0.0,
            output_progress: BTreeMap::new(),
            preset,
            inputs,
            params,
            outputs: Vec::new(),
            outcome: None,
            report: None,
            error: None,
            attempts: 0,
            max_attempts: default_max_attempts(),
            priority: Priority::Normal,
            next_attempt_at: None,
            next_attempt_unix_ms: None,
            history: vec![Transition {
                state: JobState::Pending,
                at: created_at.clone(),
                attempt: 0,
                code: None,
                note: None,
            }],
            verbose: false,
            webhook: None,
            replay_of: None,
            cache: true,
            input_sha256: BTreeMap::new(),
            cached: None,
            created_unix_ms: unix_ms(now),
            timings: Timings {
                created_at,
                ..Timings::default()
            },
        }
    }

    /// Moves the job to `state`, recording when, on which attempt and why.
    pub fn transition(&mut self, state: JobState, code: Option<ErrorCode>, note: Option<String>) {
        self.state = state;
        if self.history.len() >= MAX_HISTORY {
            self.history.remove(1);
        }
        self.history.push(Transition {
            state,
            at: now_rfc3339(),
            attempt: self.attempts,
            code,
            note,
        });
    }

    /// Seconds since the job was submitted.
    pub fn age(&self) -> Duration {
        let now = unix_ms(SystemTime::now());
        Duration::from_millis(now.saturating_sub(self.created_unix_ms))
    }
}

/// Reads job records and logs, and appends to logs.
#[derive(Clone)]
pub struct JobStore {
    redis: redis::aio::ConnectionManager,
    keys: Keys,
}

/// How long finished job records and logs are kept.
pub const RECORD_TTL_S: i64 = 30 * 24 * 3600;
/// The most bytes of one log line's message; a longer one is cut.
pub const LOG_LINE_BYTES: usize = 16 * 1024;
/// The most log lines of one job (an empty line counts too), over all its attempts.
pub const LOG_LINES: usize = 2000;
/// The most bytes of one job's log.
pub const LOG_BYTES: usize = 1 << 20;

impl JobStore {
    pub fn new(redis: redis::aio::ConnectionManager, prefix: &str) -> Self {
        Self {
            redis,
            keys: Keys::new(prefix),
        }
    }

    pub fn connection(&self) -> redis::aio::ConnectionManager {
        self.redis.clone()
    }

    /// The record, with a running attempt's progress (the job's and each output's) merged in.
    pub async fn get(&self, id: &Uuid) -> redis::RedisResult<Option<Job>> {
        let (raw, progress, outputs): (Option<String>, Option<f64>, Option<String>) = redis::pipe()
            .get(self.keys.job(id))
            .hget(self.keys.live(id), "progress")
            .hget(self.keys.live(id), "outputs")
            .query_async(&mut self.redis.clone())
            .await?;
        Ok(raw
            .and_then(|r| serde_json::from_str::<Job>(&r).ok())
            .map(|mut job| {
                if job.state == JobState::Processing {
                    if let Some(p) = progress {
                        job.progress = p;
                    }
                    if let Some(outputs) = outputs.and_then(|o| serde_json::from_str(&o).ok()) {
                        job.output_progress = outputs;
                    }
                }
                job
            }))
    }

    /// Up to `count` jobs created at or before `before_ms`, newest first, skipping those at
    /// `before_ms` whose id is not below `before_id` (already returned). Expired ones are left out.
    pub async fn page_before(
        &self,
        before_ms: u64,
        before_id: Option<&str>,
        count: usize,
    ) -> redis::RedisResult<Vec<(u64, Job)>> {
        let mut conn = self.redis.clone();
        let max = if before_ms == u64::MAX {
            "+inf".to_owned()
        } else {
            before_ms.to_string()
        };
        let ids: Vec<(String, f64)> = redis::cmd("ZRANGE")
            .arg(self.keys.index())
            .arg(max)
            .arg("-inf")
            .arg("BYSCORE")
            .arg("REV")
            .arg("LIMIT")
            .arg(0)
            .arg(count + 64)
            .arg("WITHSCORES")
            .query_async(&mut conn)
            .await?;
        let ids: Vec<(u64, Uuid)> = ids
            .into_iter()
            .map(|(id, ms)| (ms as u64, id))
            .filter(|(ms, id)| !(*ms == before_ms && before_id.is_some_and(|b| id.as_str() >= b)))
            .filter_map(|(ms, id)| Some((ms, id.parse().ok()?)))
            .take(count)
            .collect();
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let keys: Vec<String> = ids.iter().map(|(_, id)| self.keys.job(id)).collect();
        let raw: Vec<Option<String>> = redis::cmd("MGET").arg(keys).query_async(&mut conn).await?;
        Ok(ids
            .into_iter()
            .zip(raw)
            .filter_map(|((ms, _), r)| Some((ms, serde_json::from_str(&r?).ok()?)))
            .collect())
    }

    /// Appends a line to the job's log, within the job's log budget.
    pub async fn log(&self, id: &Uuid, source: &str, message: impl Into<String>) {
        append_log(&self.redis, &self.keys, id, source, message.into()).await;
    }

    pub async fn logs(&self, id: &Uuid) -> redis::RedisResult<Vec<LogEntry>> {
        let raw: Vec<String> = self.redis.clone().lrange(self.keys.log(id), 0, -1).await?;
        Ok(raw
            .iter()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect())
    }
}

/// One log line, cut to [`LOG_LINE_BYTES`]; past the job's budget ([`LOG_LINES`] lines or
/// [`LOG_BYTES`]) one "log limit reached" line ends the log.
pub(crate) async fn append_log(
    redis: &redis::aio::ConnectionManager,
    keys: &Keys,
    id: &Uuid,
    source: &str,
    mut message: String,
) {
    if message.len() > LOG_LINE_BYTES {
        let mut cut = LOG_LINE_BYTES;
        while !message.is_char_boundary(cut) {
            cut -= 1;
        }
        message.truncate(cut);
        message.push_str(" [line cut at 16 KiB]");
    }
    let line = |source: &str, message: String| {
        serde_json::to_string(&LogEntry {
            at: now_rfc3339(),
            source: source.to_owned(),
            message,
        })
        .expect("log entries serialize")
    };
    let entry = line(source, message);
    let limit = line(
        "host",
        format!(
            "log limit reached ({LOG_LINES} lines or {} MiB); later lines are not kept",
            LOG_BYTES >> 20
        ),
    );
    let appended: redis::RedisResult<i64> = crate::lifecycle::LOG
        .key(keys.log(id))
        .key(keys.log_usage(id))
        .arg(&entry)
        .arg(entry.len())
        .arg(LOG_LINES)
        .arg(LOG_BYTES)
        .arg(limit)
        .invoke_async(&mut redis.clone())
        .await;
    if let Err(e) = appended {
        tracing::warn!(job_id = %id, error = %e, "could not append to the job log");
    }
}
