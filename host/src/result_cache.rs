//! The result cache: a job whose inputs' bytes, pinned preset bytes, interface and params match
//! a job that completed reuses that job's outputs instead of running ffmpeg again.
//!
//! Sound by construction: a preset is pure and pinned by the SHA-256 of its component, so the
//! same inputs (by content, whatever their URI) and params give the same plan, and the host
//! renders a plan the same way every time. The key ([`CacheKey`]) is the SHA-256 of exactly
//! those four things.
//!
//! In Redis: an entry per key (the job that made the outputs, its output records and report),
//! ranked by last use and evicted beyond `max_entries`; an entry whose objects are gone from
//! storage is dropped when it is found, never used. Identical jobs at once run once: the first
//! takes the key's lease ([`Lead`]) and runs, the others wait for its entry (or for the lease to
//! lapse, and then one of them runs).
//!
//! Input hashes: local storage hashes every write as it streams (`storage::local`); anything else
//! is hashed by the worker that first downloads it, remembered against the object's fingerprint
//! so the next submission of the same object knows it without reading it.
//!
//! Not here: when a job asks (`api::jobs` at submission, `worker::pipeline` after download).

use std::collections::BTreeMap;
use std::sync::{Arc, LazyLock};
use std::time::{Duration, SystemTime};

use redis::aio::ConnectionManager;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::job::{Job, OutputRecord, OutputState, unix_ms};
use crate::lifecycle::Keys;
use crate::metrics::Metrics;
use crate::storage::{Fingerprint, ObjectKey, Storage, StorageError};

/// How long a remembered input hash is kept.
const INPUT_HASH_TTL_S: u64 = 30 * 24 * 3600;

/// How long a lead lasts without renewal: a leader that dies frees its key this long after.
pub const LEAD_LEASE: Duration = Duration::from_secs(30);

/// Deletes the lease only while this job holds it.
static RELEASE: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end \
         return 0",
    )
});

/// Extends the lease only while this job holds it.
static RENEW: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        "if redis.call('GET', KEYS[1]) == ARGV[1] then \
         return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end return 0",
    )
});

/// What identifies a job's work: the SHA-256 of its inputs' hashes by name, the preset's
/// component hash, its interface version and its params (keys sorted at every level).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheKey(String);

impl CacheKey {
    /// The key of `job`'s work with its inputs' hashes, or `None` while the hash of one of
    /// its inputs is unknown.
    pub fn of(
        job: &Job,
        input_sha256: &BTreeMap<String, String>,
        interface: &semver::Version,
    ) -> Option<Self> {
        let hashes: BTreeMap<&String, &String> = job
            .inputs
            .keys()
            .map(|name| Some((name, input_sha256.get(name)?)))
            .collect::<Option<_>>()?;
        let work = json!({
            "inputs": hashes,
            "interface": interface.to_string(),
            "params": canonical(&Value::Object(job.params.clone())),
            "preset_sha256": job.preset.sha256,
        });
        let bytes = serde_json::to_vec(&canonical(&work)).expect("JSON values serialize");
        Some(Self(hex::encode(Sha256::digest(bytes))))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// `value` with every object's keys in sorted order, so equal params hash equally however they
/// were written.
fn canonical(value: &Value) -> Value {
    match value {
        Value::Object(map) => {
            let sorted: BTreeMap<&String, Value> =
                map.iter().map(|(k, v)| (k, canonical(v))).collect();
            let mut out = Map::new();
            for (k, v) in sorted {
                out.insert(k.clone(), v);
            }
            Value::Object(out)
        }
        Value::Array(items) => Value::Array(items.iter().map(canonical).collect()),
        other => other.clone(),
    }
}

/// A completed job's results, as the cache keeps them.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Entry {
    /// The job that ran ffmpeg and stored these outputs.
    pub job: Uuid,
    pub outputs: Vec<OutputRecord>,
    pub report: Map<String, Value>,
}

/// What [`ResultCache::lead`] found.
pub enum Leadership {
    /// This job holds the key's lease: it runs, and stores the entry when it completes.
    Leads(Lead),
    /// Another job runs the same work now.
    Follows(Uuid),
}

/// A job's lease on a key's work, renewed while it is held and released when dropped.
pub struct Lead {
    cache: Arc<ResultCache>,
    pub key: CacheKey,
    job: Uuid,
    renewing: tokio::task::JoinHandle<()>,
}

impl Drop for Lead {
    fn drop(&mut self) {
        self.renewing.abort();
        let (cache, key, job) = (self.cache.clone(), self.key.clone(), self.job);
        tokio::spawn(async move {
            let released: redis::RedisResult<i64> = RELEASE
                .key(cache.keys.cache_lead(key.as_str()))
                .arg(job.to_string())
                .invoke_async(&mut cache.redis.clone())
                .await;
            if let Err(e) = released {
                tracing::debug!(error = %e, "could not release a cache lease; it lapses by itself");
            }
        });
    }
}

pub struct ResultCache {
    redis: ConnectionManager,
    keys: Keys,
    storage: Arc<Storage>,
    metrics: Metrics,
    max_entries: u64,
}

impl ResultCache {
    pub fn new(
        redis: ConnectionManager,
        prefix: &str,
        storage: Arc<Storage>,
        max_entries: u64,
    ) -> Self {
        Self {
            metrics: Metrics::new(redis.clone(), prefix),
            redis,
            keys: Keys::new(prefix),
            storage,
            max_entries,
        }
    }

    /// Adds to `known` the SHA-256 of each input it lacks whose bytes are known without
    /// reading them (see [`ResultCache::known_sha256`]).
    pub async fn fill_known(
        &self,
        inputs: &BTreeMap<String, String>,
        known: &mut BTreeMap<String, String>,
    ) {
        for (name, uri) in inputs {
            if known.contains_key(name) {
                continue;
            }
            let Ok(key) = self.storage.parse_uri(uri) else {
                continue;
            };
            let Ok(print) = self.storage.fingerprint(&key).await else {
                continue;
            };
            if let Some(sha) = self.known_sha256(uri, &print).await {
                known.insert(name.clone(), sha);
            }
        }
    }

    /// The SHA-256 of the bytes of the object `uri` names, at its current `print`, when known
    /// without reading them: hashed by the store as they were written, or remembered from a
    /// download of the same version.
    pub async fn known_sha256(&self, uri: &str, print: &Fingerprint) -> Option<String> {
        if print.sha256.is_some() {
            return print.sha256.clone();
        }
        let remembered: Option<String> = redis::cmd("GET")
            .arg(self.keys.input_sha256(uri))
            .query_async(&mut self.redis.clone())
            .await
            .ok()?;
        let (version, sha) = remembered?
            .split_once(' ')
            .map(|(v, s)| (v.to_owned(), s.to_owned()))?;
        (version == print.version).then_some(sha)
    }

    /// The object's current version, to pair with a hash computed from a download of it.
    pub async fn version(&self, key: &ObjectKey) -> Result<String, StorageError> {
        Ok(self.storage.fingerprint(key).await?.version)
    }

    /// Remembers the hash of an input downloaded at `version` (unchanged during the download).
    pub async fn remember_sha256(&self, uri: &str, version: &str, sha256: &str) {
        let stored: redis::RedisResult<()> = redis::cmd("SET")
            .arg(self.keys.input_sha256(uri))
            .arg(format!("{version} {sha256}"))
            .arg("EX")
            .arg(INPUT_HASH_TTL_S)
            .query_async(&mut self.redis.clone())
            .await;
        if let Err(e) = stored {
            tracing::debug!(error = %e, "could not remember an input's hash");
        }
    }

    /// The entry for `key`, when there is one and every object it names still exists; an entry
    /// with objects gone is dropped. A hit refreshes the entry's rank.
    pub async fn lookup(&self, key: &CacheKey) -> Option<Entry> {
        let mut redis = self.redis.clone();
        let raw: Option<String> = redis::cmd("GET")
            .arg(self.keys.cache_entry(key.as_str()))
            .query_async(&mut redis)
            .await
            .ok()?;
        let entry: Entry = serde_json::from_str(&raw?).ok()?;
        if !self.objects_exist(&entry).await {
            tracing::info!(cache_key = key.as_str(), job = %entry.job, "a cache entry's objects are gone; dropping it");
            let dropped: redis::RedisResult<()> = redis::pipe()
                .del(self.keys.cache_entry(key.as_str()))
                .ignore()
                .zrem(self.keys.cache_index(), key.as_str())
                .ignore()
                .query_async(&mut redis)
                .await;
            if let Err(e) = dropped {
                tracing::debug!(error = %e, "could not drop a stale cache entry");
            }
            self.metrics
                .add("mediahost_result_cache_stale_entries_total", 1.0)
                .await;
            return None;
        }
        let _: redis::RedisResult<()> = redis::cmd("ZADD")
            .arg(self.keys.cache_index())
            .arg("XX")
            .arg(unix_ms(SystemTime::now()))
            .arg(key.as_str())
            .query_async(&mut redis)
            .await;
        Some(entry)
    }

    /// Whether every object the entry names is a job output (an entry read back from Redis is
    /// not trusted to name anything else) and still exists.
    async fn objects_exist(&self, entry: &Entry) -> bool {
        for output in entry
            .outputs
            .iter()
            .filter(|o| o.state == OutputState::Completed)
        {
            let keys = std::iter::once(output.key.as_str())
                .chain(output.objects.iter().map(|o| o.key.as_str()));
            for key in keys {
                let Some(key) = ObjectKey::parse(key).filter(|k| k.as_str().starts_with("jobs/"))
                else {
                    return false;
                };
                if self.storage.size(&key).await.is_err() {
                    return false;
                }
            }
        }
        true
    }

    /// Stores a completed job's outputs under `key` and evicts the least recently used entries
    /// beyond the bound. Only a job with every output complete is stored.
    pub async fn store(&self, key: &CacheKey, job: &Job) {
        if job
            .outputs
            .iter()
            .any(|o| o.state != OutputState::Completed)
        {
            return;
        }
        let entry = Entry {
            job: job.id,
            outputs: job.outputs.clone(),
            report: job.report.clone().unwrap_or_default(),
        };
        let mut redis = self.redis.clone();
        let stored: redis::RedisResult<(u64,)> = redis::pipe()
            .set(
                self.keys.cache_entry(key.as_str()),
                serde_json::to_string(&entry).expect("entries serialize"),
            )
            .ignore()
            .zadd(
                self.keys.cache_index(),
                key.as_str(),
                unix_ms(SystemTime::now()),
            )
            .ignore()
            .zcard(self.keys.cache_index())
            .query_async(&mut redis)
            .await;
        let count = match stored {
            Ok((count,)) => count,
            Err(e) => {
                tracing::warn!(error = %e, "could not store a result cache entry");
                return;
            }
        };
        if count <= self.max_entries {
            return;
        }
        let evicted: Vec<(String, f64)> = redis::cmd("ZPOPMIN")
            .arg(self.keys.cache_index())
            .arg(count - self.max_entries)
            .query_async(&mut redis)
            .await
            .unwrap_or_default();
        if evicted.is_empty() {
            return;
        }
        let mut pipe = redis::pipe();
        for (old, _) in &evicted {
            pipe.del(self.keys.cache_entry(old)).ignore();
        }
        if let Err(e) = pipe.query_async::<()>(&mut redis).await {
            tracing::debug!(error = %e, "could not evict result cache entries");
        }
    }

    /// Takes the lease on `key`'s work for `job`, or says which job holds it. A job that
    /// already holds it (a retry of the same attempt) takes it again.
    pub async fn lead(
        self: &Arc<Self>,
        key: &CacheKey,
        job: Uuid,
    ) -> redis::RedisResult<Leadership> {
        let lease_key = self.keys.cache_lead(key.as_str());
        let mut redis = self.redis.clone();
        let taken: Option<String> = redis::cmd("SET")
            .arg(&lease_key)
            .arg(job.to_string())
            .arg("NX")
            .arg("PX")
            .arg(LEAD_LEASE.as_millis() as u64)
            .query_async(&mut redis)
            .await?;
        if taken.is_none() {
            let holder: Option<String> = redis::cmd("GET")
                .arg(&lease_key)
                .query_async(&mut redis)
                .await?;
            match holder.and_then(|h| h.parse::<Uuid>().ok()) {
                Some(other) if other != job => return Ok(Leadership::Follows(other)),
                // Lapsed between the two calls, or already this job's: take it (again).
                _ => {
                    let _: () = redis::cmd("SET")
                        .arg(&lease_key)
                        .arg(job.to_string())
                        .arg("PX")
                        .arg(LEAD_LEASE.as_millis() as u64)
                        .query_async(&mut redis)
                        .await?;
                }
            }
        }
        let renewing = {
            let cache = self.clone();
            let lease_key = lease_key.clone();
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(LEAD_LEASE / 3).await;
                    let renewed: redis::RedisResult<i64> = RENEW
                        .key(&lease_key)
                        .arg(job.to_string())
                        .arg(LEAD_LEASE.as_millis() as u64)
                        .invoke_async(&mut cache.redis.clone())
                        .await;
                    if let Err(e) = renewed {
                        tracing::debug!(error = %e, "could not renew a cache lease");
                    }
                }
            })
        };
        Ok(Leadership::Leads(Lead {
            cache: self.clone(),
            key: key.clone(),
            job,
            renewing,
        }))
    }

    /// Counts a job answered from the cache (`hit`) or run because it was not (`miss`).
    pub async fn count(&self, hit: bool) {
        let result = if hit { "hit" } else { "miss" };
        self.metrics
            .add(
                &format!("mediahost_result_cache_lookups_total{{result=\"{result}\"}}"),
                1.0,
            )
            .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::PresetPin;

    fn job(params: Value, inputs: &[(&str, &str)]) -> Job {
        let mut job = Job::new(
            PresetPin {
                name: "image-variants".into(),
                version: "1.0.0".parse().unwrap(),
                sha256: "ab".repeat(32),
            },
            inputs
                .iter()
                .map(|(n, _)| ((*n).to_owned(), format!("local://uploads/{n}")))
                .collect(),
            params.as_object().unwrap().clone(),
        );
        job.input_sha256 = inputs
            .iter()
            .map(|(n, sha)| ((*n).to_owned(), (*sha).to_owned()))
            .collect();
        job
    }

    #[test]
    fn the_key_is_the_work_not_how_it_was_written() {
        let v2: semver::Version = "2.0.0".parse().unwrap();
        let a = job(
            json!({"widths": "320,640", "sharpen": {"a": 1, "b": 2}}),
            &[("main", "11")],
        );
        let b = job(
            json!({"sharpen": {"b": 2, "a": 1}, "widths": "320,640"}),
            &[("main", "11")],
        );
        let key = CacheKey::of(&a, &a.input_sha256, &v2).unwrap();
        assert_eq!(Some(&key), CacheKey::of(&b, &b.input_sha256, &v2).as_ref());
        assert_eq!(key.as_str().len(), 64);
        // Another URI for the same bytes is the same work.
        let mut moved = a.clone();
        moved
            .inputs
            .insert("main".into(), "s3://bucket/elsewhere.jpg".into());
        assert_eq!(
            Some(&key),
            CacheKey::of(&moved, &moved.input_sha256, &v2).as_ref()
        );
    }

    #[test]
    fn any_difference_in_bytes_preset_interface_or_params_is_another_key() {
        let v2: semver::Version = "2.0.0".parse().unwrap();
        let base = job(json!({"widths": "320"}), &[("main", "11")]);
        let key = CacheKey::of(&base, &base.input_sha256, &v2).unwrap();
        let other_bytes = job(json!({"widths": "320"}), &[("main", "12")]);
        let other_params = job(json!({"widths": "640"}), &[("main", "11")]);
        let mut other_preset = base.clone();
        other_preset.preset.sha256 = "cd".repeat(32);
        let other_interface: semver::Version = "1.0.0".parse().unwrap();
        for (what, other) in [
            (
                "input bytes",
                CacheKey::of(&other_bytes, &other_bytes.input_sha256, &v2),
            ),
            (
                "params",
                CacheKey::of(&other_params, &other_params.input_sha256, &v2),
            ),
            (
                "preset bytes",
                CacheKey::of(&other_preset, &other_preset.input_sha256, &v2),
            ),
            (
                "interface",
                CacheKey::of(&base, &base.input_sha256, &other_interface),
            ),
        ] {
            assert_ne!(Some(&key), other.as_ref(), "{what}");
        }
    }

    #[test]
    fn no_key_while_an_input_hash_is_unknown() {
        let v2: semver::Version = "2.0.0".parse().unwrap();
        let mut partial = job(json!({}), &[("voice", "11"), ("music", "12")]);
        partial.input_sha256.remove("music");
        assert_eq!(CacheKey::of(&partial, &partial.input_sha256, &v2), None);
    }
}
