//! Every Redis key the host writes for jobs, named in one place.
//!
//! Not here: what is stored under a key (the record is `job::Job`, transitions are in
//! `lifecycle`, streams and permits in `queue`, events in `webhook`).

use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::job::Priority;

/// The consumer group every worker process reads the job streams in.
pub const GROUP: &str = "workers";

/// The key names under one deployment's prefix.
#[derive(Debug, Clone)]
pub struct Keys {
    prefix: String,
}

impl Keys {
    pub fn new(prefix: &str) -> Self {
        Self {
            prefix: prefix.to_owned(),
        }
    }

    /// The job record (JSON), rewritten only by a lifecycle transition.
    pub fn job(&self, id: &Uuid) -> String {
        format!("{}:job:{id}", self.prefix)
    }

    /// The job's log, a list of JSON lines.
    pub fn log(&self, id: &Uuid) -> String {
        format!("{}:job:{id}:log", self.prefix)
    }

    /// How much of the job's log budget is used (`bytes`, and `full` once the limit was hit).
    pub fn log_usage(&self, id: &Uuid) -> String {
        format!("{}:job:{id}:log:usage", self.prefix)
    }

    /// The running attempt's small, often-written fields (`holder`, `progress`), merged into the
    /// record when it is read, so progress never rewrites the record.
    pub fn live(&self, id: &Uuid) -> String {
        format!("{}:job:{id}:live", self.prefix)
    }

    /// Set when a cancel of the running job was asked for; its worker watches it.
    pub fn cancel(&self, id: &Uuid) -> String {
        format!("{}:job:{id}:cancel", self.prefix)
    }

    /// The sorted set of job ids by creation time, for listing.
    pub fn index(&self) -> String {
        format!("{}:jobs", self.prefix)
    }

    /// Where an `Idempotency-Key` (by its SHA-256) remembers the job it created.
    pub fn idempotency(&self, key_sha256: &str) -> String {
        format!("{}:idem:{key_sha256}", self.prefix)
    }

    /// The stream of a priority. Normal keeps the name of the single stream of earlier versions,
    /// so entries queued before an upgrade are still taken.
    pub fn stream(&self, priority: Priority) -> String {
        match priority {
            Priority::Normal => format!("{}:queue", self.prefix),
            other => format!("{}:queue:{}", self.prefix, other.as_str()),
        }
    }

    /// Retries waiting for their backoff, scored by when they are due.
    pub fn delayed(&self) -> String {
        format!("{}:delayed", self.prefix)
    }

    /// The member of [`Keys::delayed`] for a job.
    pub fn delayed_member(&self, id: &Uuid, priority: Priority) -> String {
        format!("{}:{id}", priority.as_str())
    }

    /// Run permits shared by every worker process (`--max-running`).
    pub fn running(&self) -> String {
        format!("{}:running", self.prefix)
    }

    /// The counters of every process, one hash.
    pub fn metrics(&self) -> String {
        format!("{}:metrics", self.prefix)
    }

    /// The buckets and sums of the duration histograms (see `metrics`).
    pub fn metrics_histograms(&self) -> String {
        format!("{}:metrics:histograms", self.prefix)
    }

    /// The presets the histograms have series for, scored by when each was first observed.
    pub fn metrics_presets(&self) -> String {
        format!("{}:metrics:presets", self.prefix)
    }

    /// The channel every job's end (its terminal transition) is announced on, by job id.
    pub fn ended(&self) -> String {
        format!("{}:jobs:ended", self.prefix)
    }

    /// A result cache entry (JSON: the job that made the outputs, and its outputs and report).
    pub fn cache_entry(&self, cache_key: &str) -> String {
        format!("{}:cache:entry:{cache_key}", self.prefix)
    }

    /// The result cache's entries by when each was last used, for eviction.
    pub fn cache_index(&self) -> String {
        format!("{}:cache:entries", self.prefix)
    }

    /// The lease of the job running a cache key's work; identical jobs wait for its entry.
    pub fn cache_lead(&self, cache_key: &str) -> String {
        format!("{}:cache:lead:{cache_key}", self.prefix)
    }

    /// The SHA-256 of an input object's bytes, remembered from a download with the version
    /// (fingerprint) it had then.
    pub fn input_sha256(&self, uri: &str) -> String {
        format!(
            "{}:cache:input:{}",
            self.prefix,
            hex::encode(Sha256::digest(uri.as_bytes()))
        )
    }

    /// Webhook events by when their next delivery is due.
    pub fn webhooks_due(&self) -> String {
        format!("{}:webhooks:due", self.prefix)
    }

    /// One webhook event waiting for delivery.
    pub fn webhook_event(&self, event_id: &str) -> String {
        format!("{}:webhooks:event:{event_id}", self.prefix)
    }

    /// Set once a receiver answered 410 Gone for the URL.
    pub fn webhooks_disabled(&self, url: &str) -> String {
        format!(
            "{}:webhooks:disabled:{}",
            self.prefix,
            hex::encode(Sha256::digest(url.as_bytes()))
        )
    }
}
