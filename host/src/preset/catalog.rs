//! The catalog: the durable record of published preset versions, and keeping every process's
//! [`Registry`] in step with it.
//!
//! Publishing a version stores its component in object storage under its content hash
//! (`presets/blobs/<sha256>.wasm`, so a racing upload can never overwrite another's bytes), then
//! adds its record to the Redis hash `<prefix>:presets` with `HSETNX`: the first writer of a
//! name@version wins and a published version is immutable. The record is also written beside
//! the component (`presets/<name>/<version>.json`). A yank is a field of `<prefix>:presets:yanked`.
//!
//! Every change is announced on the channel `<prefix>:presets:events`. Each process subscribes,
//! and also reconciles its registry with the index on a timer, so a missed message (a dropped
//! connection, a process that was starting) delays a change by one period at most.
//!
//! A process loads what is published in the background ([`Catalog::spawn_load_at_start`]): it
//! answers at once, and `/readyz` says how far loading is ([`Catalog::loading`]). A lookup of a
//! version that is published but still loading (at start, or being compiled after an
//! announcement) waits for it, up to [`Catalog::loading_wait`], then fails `PRESET_LOADING`,
//! instead of answering that the version does not exist. Compiles run one at a time in a
//! process, in a child process of their own (`preset::compile`).
//!
//! Not here: compiling and calling components (`preset::runtime`), resolution (`preset::registry`).

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt;
use mediahost_api::PresetOrigin;
use redis::AsyncCommands;
use semver::Version;
use tokio::sync::watch;

use super::compile::CompileCost;
use super::registry::{self, Listing, Preset, PresetRecord, Registry};
use super::runtime::{CompiledFrom, Runtime};
use crate::error::{ApiError, ErrorCode};
use crate::job::now_rfc3339;
use crate::storage::{CachePolicy, ObjectKey, ObjectMeta, Storage, StorageError};

/// The largest component the catalog accepts.
pub const MAX_COMPONENT_BYTES: usize = 32 << 20;

pub struct Catalog {
    redis: redis::aio::ConnectionManager,
    client: redis::Client,
    storage: Arc<Storage>,
    runtime: Arc<Runtime>,
    registry: Arc<Registry>,
    prefix: String,
    /// One reconcile at a time: the timer, notifications and on-demand lookups share it.
    reconciling: tokio::sync::Mutex<()>,
    /// Index entries this process could not load, with why (see [`Failure`]).
    failing: Mutex<HashMap<String, Failure>>,
    /// Index entries (`name@version`) a load is under way or due for: lookups of them wait.
    pending: Mutex<HashSet<String>>,
    /// How far loading at start is, for `/readyz`.
    loading: Mutex<Loading>,
    /// Index entries known at start and not yet attempted (they count in [`Loading`]).
    at_start: Mutex<HashSet<String>>,
    /// Bumped whenever a load attempt ends or loading at start advances; lookups that wait for
    /// a version watch it.
    attempts: watch::Sender<u64>,
    /// What loading at start found wrong, for `/healthz`.
    warnings: Mutex<Vec<String>>,
    /// The bundled components are being read at start: until they are, which names and
    /// versions they hold is unknown, so every resolve waits.
    seeding: std::sync::atomic::AtomicBool,
    /// How long a lookup of a version that is still loading waits for it.
    pub loading_wait: Duration,
}

/// How far a process is with loading the published versions and bundled components it knew of
/// at start. `attempted` counts failures too: a version that does not load does not keep a
/// process unready.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Loading {
    pub attempted: usize,
    pub total: usize,
    /// Every one of them was attempted.
    pub done: bool,
}

/// How long a lookup waits for a version that is still loading, by default.
pub const LOADING_WAIT: Duration = Duration::from_secs(60);

/// Why an index entry did not load here. Bytes that were refused (they do not compile, link or
/// describe themselves, or are not what the entry says) are refused again until the entry names
/// other bytes: compiling them on every reconcile and every lookup that misses would cost
/// seconds and hundreds of MiB each time. Anything else (the component could not be fetched)
/// is tried again.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Failure {
    why: String,
    /// The SHA-256 of the bytes that were refused.
    refused: Option<String>,
}

/// What a process did when it caught up with the index.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Reconciled {
    pub loaded: usize,
    /// Entries that did not load, `remembered` included.
    pub failed: usize,
    /// Entries whose bytes were refused before and were not tried again.
    pub remembered: usize,
}

fn field(name: &str, version: &Version) -> String {
    format!("{name}@{version}")
}

fn blob_key(sha256: &str) -> ObjectKey {
    ObjectKey::parse(&format!("presets/blobs/{sha256}.wasm")).expect("hex digests make valid keys")
}

fn record_key(name: &str, version: &Version) -> Option<ObjectKey> {
    ObjectKey::parse(&format!("presets/{name}/{version}.json"))
}

fn redis_failed(e: redis::RedisError) -> ApiError {
    ApiError::new(
        ErrorCode::QueueUnavailable,
        format!("the preset index in Redis is unavailable: {e}; retry the request"),
    )
}

fn storage_failed(e: StorageError) -> ApiError {
    ApiError::new(
        ErrorCode::StorageFailed,
        format!("storing the component failed: {e}; retry the request"),
    )
}

impl Catalog {
    pub fn new(
        redis: redis::aio::ConnectionManager,
        client: redis::Client,
        storage: Arc<Storage>,
        runtime: Arc<Runtime>,
        prefix: &str,
    ) -> Self {
        Self {
            redis,
            client,
            storage,
            runtime,
            registry: Arc::new(Registry::default()),
            prefix: prefix.to_owned(),
            reconciling: tokio::sync::Mutex::new(()),
            failing: Mutex::new(HashMap::new()),
            pending: Mutex::new(HashSet::new()),
            loading: Mutex::new(Loading {
                attempted: 0,
                total: 0,
                done: true,
            }),
            at_start: Mutex::new(HashSet::new()),
            attempts: watch::Sender::new(0),
            warnings: Mutex::new(Vec::new()),
            seeding: std::sync::atomic::AtomicBool::new(false),
            loading_wait: LOADING_WAIT,
        }
    }

    /// How far loading at start is.
    pub fn loading(&self) -> Loading {
        *self.loading.lock().expect("loading lock")
    }

    /// What loading at start found wrong (refused bundled components, versions that did not
    /// load), for `/healthz`.
    pub fn warnings(&self) -> Vec<String> {
        self.warnings.lock().expect("warnings lock").clone()
    }

    fn warn(&self, why: String) {
        tracing::warn!("{why}");
        self.warnings.lock().expect("warnings lock").push(why);
    }

    fn bump(&self) {
        self.attempts.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// A load of `key` ended (or was found not needed): lookups waiting for it look again.
    fn settled(&self, key: &str) {
        self.pending.lock().expect("pending lock").remove(key);
        if self.at_start.lock().expect("at_start lock").remove(key) {
            self.loading.lock().expect("loading lock").attempted += 1;
        }
        self.bump();
    }

    /// Whether a load of `name` (`version`: of that exact version) is under way or due.
    fn pending_has(&self, name: &str, version: Option<&Version>) -> bool {
        let pending = self.pending.lock().expect("pending lock");
        match version {
            Some(v) => pending.contains(&field(name, v)),
            None => pending
                .iter()
                .any(|k| k.rsplit_once('@').is_some_and(|(n, _)| n == name)),
        }
    }

    fn still_loading(name: &str, version: Option<&Version>, waited: Duration) -> ApiError {
        let what = match version {
            Some(v) => format!("{name}@{v}"),
            None => format!("a version of {name}"),
        };
        ApiError::new(
            ErrorCode::PresetLoading,
            format!(
                "{what} is published but this process is still loading it (waited {} s); \
                 retry shortly (GET /readyz shows how far loading is)",
                waited.as_secs()
            ),
        )
        .with("preset", name)
    }

    /// Loads, in the background, the bundled components of `presets_dir` (publishing those not
    /// published yet, see [`Catalog::seed_dir`]) and every published version, one compile at a
    /// time. [`Catalog::loading`] says how far it is from the moment this returns.
    pub fn spawn_load_at_start(
        self: &Arc<Self>,
        presets_dir: PathBuf,
    ) -> tokio::task::JoinHandle<()> {
        {
            let mut loading = self.loading.lock().expect("loading lock");
            *loading = Loading {
                attempted: 0,
                total: 0,
                done: false,
            };
            self.seeding
                .store(true, std::sync::atomic::Ordering::SeqCst);
        }
        let catalog = self.clone();
        tokio::spawn(async move {
            let started = Instant::now();
            catalog.load_at_start(&presets_dir).await;
            let loading = {
                let mut loading = catalog.loading.lock().expect("loading lock");
                loading.done = true;
                loading.attempted = loading.total;
                *loading
            };
            catalog.at_start.lock().expect("at_start lock").clear();
            catalog.bump();
            tracing::info!(
                attempted = loading.total,
                presets = catalog.registry.len(),
                ms = started.elapsed().as_millis() as u64,
                "presets loaded; ready"
            );
        })
    }

    async fn load_at_start(&self, presets_dir: &Path) {
        // What is published now counts, and lookups of it wait, from the start.
        let mut conn = self.redis.clone();
        let keys: Vec<String> = conn.hkeys(self.index_key()).await.unwrap_or_default();
        let files = wasm_files(presets_dir).map(|f| f.len()).unwrap_or(0);
        {
            let mut pending = self.pending.lock().expect("pending lock");
            let mut at_start = self.at_start.lock().expect("at_start lock");
            for key in &keys {
                pending.insert(key.clone());
                at_start.insert(key.clone());
            }
            self.loading.lock().expect("loading lock").total = keys.len() + files;
        }
        self.bump();
        match self.seed_dir(presets_dir).await {
            Ok(warnings) => self
                .warnings
                .lock()
                .expect("warnings lock")
                .extend(warnings),
            Err(e) => self.warn(format!("{e:#}")),
        }
        self.seeding
            .store(false, std::sync::atomic::Ordering::SeqCst);
        self.bump();
        let reconciled = self.reconcile().await;
        if reconciled.failed > 0 {
            self.warn(format!(
                "{} published preset versions could not be loaded; see the log",
                reconciled.failed
            ));
        }
        if self.registry.is_empty() {
            self.warn(format!(
                "no presets loaded from {} or the catalog; point --presets-dir at \
                 presets-wasm/released or publish one with `mediahost preset push`",
                presets_dir.display()
            ));
        }
    }

    pub fn registry(&self) -> &Arc<Registry> {
        &self.registry
    }

    fn index_key(&self) -> String {
        format!("{}:presets", self.prefix)
    }

    fn yanked_key(&self) -> String {
        format!("{}:presets:yanked", self.prefix)
    }

    fn channel(&self) -> String {
        format!("{}:presets:events", self.prefix)
    }

    /// Compiles and checks a component off the async threads (compiles run one at a time in
    /// a process, in a child process: see `preset::compile`), and logs what it cost.
    async fn load(&self, bytes: Bytes) -> Result<(Arc<Preset>, CompileCost), ApiError> {
        let runtime = self.runtime.clone();
        let (preset, cost) =
            tokio::task::spawn_blocking(move || registry::load_with_cost(&runtime, &bytes))
                .await
                .map_err(ApiError::internal)?
                .map_err(|e| ApiError::new(e.code, e.message))?;
        tracing::info!(
            preset = %preset.name, version = %preset.version, sha256 = %preset.sha256,
            ms = cost.ms, peak_rss_mib = cost.peak_rss_mib,
            cached = cost.from == CompiledFrom::Cache,
            "loaded preset component"
        );
        Ok((preset, cost))
    }

    /// Publishes an uploaded component: checks it, stores it, indexes it and announces it.
    /// Returns the listing and what compiling the component cost.
    pub async fn publish(&self, bytes: Bytes) -> Result<(Listing, CompileCost), ApiError> {
        if bytes.len() > MAX_COMPONENT_BYTES {
            return Err(ApiError::new(
                ErrorCode::PresetTooLarge,
                format!(
                    "the component is {} bytes; this host accepts at most {MAX_COMPONENT_BYTES}",
                    bytes.len()
                ),
            ));
        }
        let (preset, cost) = self.load(bytes.clone()).await?;
        let mut conn = self.redis.clone();
        let existing: Option<String> = conn
            .hget(self.index_key(), field(&preset.name, &preset.version))
            .await
            .map_err(redis_failed)?;
        if let Some(existing) = existing {
            return Err(exists(&preset, &existing));
        }
        let record = record_of(&preset, bytes.len(), PresetOrigin::Uploaded);
        match self.index(&record, bytes).await? {
            Indexed::Created => {}
            Indexed::Exists(existing) => return Err(exists(&preset, &existing)),
        }
        let listing = Listing {
            preset,
            record,
            yanked_at: None,
        };
        self.registry.insert(listing.clone());
        self.settled(&field(&listing.record.name, &listing.record.version));
        tracing::info!(preset = %listing.record.name, version = %listing.record.version, sha256 = %listing.record.sha256, "published preset");
        Ok((listing, cost))
    }

    /// Stores the component, then adds its record to the index if the version is new, then
    /// writes the record object and announces it. The component is stored first so that no
    /// process can see an index entry whose bytes are missing.
    async fn index(&self, record: &PresetRecord, bytes: Bytes) -> Result<Indexed, ApiError> {
        self.storage
            .put_bytes(
                &blob_key(&record.sha256),
                bytes,
                &ObjectMeta::new("application/wasm", CachePolicy::Immutable),
            )
            .await
            .map_err(storage_failed)?;
        let json = serde_json::to_string(record).map_err(ApiError::internal)?;
        let mut conn = self.redis.clone();
        let key = field(&record.name, &record.version);
        let created: bool = conn
            .hset_nx(self.index_key(), &key, &json)
            .await
            .map_err(redis_failed)?;
        if !created {
            let existing: Option<String> = conn
                .hget(self.index_key(), &key)
                .await
                .map_err(redis_failed)?;
            return Ok(Indexed::Exists(existing.unwrap_or_default()));
        }
        if let Some(object) = record_key(&record.name, &record.version)
            && let Err(e) = self
                .storage
                .put_bytes(
                    &object,
                    Bytes::from(json),
                    &ObjectMeta::new("application/json", CachePolicy::Revalidate),
                )
                .await
        {
            // The index in Redis is what processes read; the object is a copy for operators.
            tracing::warn!(key = %object, error = %e, "could not store the preset record object");
        }
        self.announce("published", &record.name, &record.version)
            .await;
        Ok(Indexed::Created)
    }

    async fn announce(&self, event: &str, name: &str, version: &Version) {
        let message = serde_json::json!({"event": event, "name": name, "version": version});
        let sent: redis::RedisResult<i64> = self
            .redis
            .clone()
            .publish(self.channel(), message.to_string())
            .await;
        if let Err(e) = sent {
            // Not fatal: every process reconciles on a timer.
            tracing::warn!(error = %e, "could not announce a preset change; processes learn of it at their next reconcile");
        }
    }

    /// Yanks a version: it no longer resolves for new jobs; jobs pinned to it still run.
    /// Yanking twice keeps the first time.
    pub async fn yank(&self, name: &str, version: &Version) -> Result<Listing, ApiError> {
        let mut conn = self.redis.clone();
        let key = field(name, version);
        let known: bool = conn
            .hexists(self.index_key(), &key)
            .await
            .map_err(redis_failed)?;
        if !known {
            return Err(ApiError::new(
                ErrorCode::PresetNotFound,
                format!(
                    "{name}@{version} is not published; GET /v1/presets/{name} lists its versions"
                ),
            )
            .with("preset", name));
        }
        let now = now_rfc3339();
        let _: bool = conn
            .hset_nx(self.yanked_key(), &key, &now)
            .await
            .map_err(redis_failed)?;
        let yanked_at: Option<String> = conn
            .hget(self.yanked_key(), &key)
            .await
            .map_err(redis_failed)?;
        self.announce("yanked", name, version).await;
        if !self.registry.set_yanked(name, version, yanked_at.clone()) {
            self.reconcile().await;
        }
        tracing::info!(preset = %name, version = %version, "yanked preset version");
        self.registry.listing(name, version).ok_or_else(|| {
            ApiError::new(
                ErrorCode::Internal,
                format!("{name}@{version} is yanked but this process could not load it"),
            )
        })
    }

    /// Publishes every component of a presets directory that is not published yet. A component
    /// whose version is already published with other bytes is not used: a published version is
    /// immutable. Returns warnings for `/healthz`.
    pub async fn seed_dir(&self, dir: &Path) -> anyhow::Result<Vec<String>> {
        let paths = wasm_files(dir)?;
        let mut warnings = Vec::new();
        for path in paths {
            self.seed_file(&path, &mut warnings).await;
            self.loading.lock().expect("loading lock").attempted += 1;
            self.bump();
        }
        Ok(warnings)
    }

    async fn seed_file(&self, path: &Path, warnings: &mut Vec<String>) {
        {
            let shown = path.display().to_string();
            let bytes = match std::fs::read(path) {
                Ok(b) => Bytes::from(b),
                Err(e) => {
                    warnings.push(format!("preset {shown} refused: cannot read: {e}"));
                    return;
                }
            };
            let (preset, _) = match self.load(bytes.clone()).await {
                Ok(p) => p,
                Err(e) => {
                    tracing::warn!(file = %shown, reason = %e.detail, "refused preset component");
                    warnings.push(format!("preset {shown} refused: {}", e.detail));
                    return;
                }
            };
            let record = record_of(&preset, bytes.len(), PresetOrigin::Bundled);
            let record = match self.index(&record, bytes).await {
                Err(e) => {
                    // Storage or Redis is down at start: run the bundled preset here anyway;
                    // it is published by the next start that can reach them.
                    let why = format!("preset {shown} is loaded but not published: {}", e.detail);
                    tracing::warn!("{why}");
                    warnings.push(why);
                    record
                }
                Ok(Indexed::Created) => record,
                Ok(Indexed::Exists(existing)) => {
                    match serde_json::from_str::<PresetRecord>(&existing) {
                        Ok(have) if have.sha256 == record.sha256 => have,
                        _ => {
                            let why = format!(
                                "preset {shown} not used: {}@{} is already published with other \
                                 bytes, and a published version is immutable; bump the version \
                                 to ship a change",
                                record.name, record.version
                            );
                            tracing::warn!("{why}");
                            warnings.push(why);
                            return;
                        }
                    }
                }
            };
            tracing::info!(preset = %record.name, version = %record.version, file = %shown, "loaded preset");
            let key = field(&record.name, &record.version);
            self.registry.insert(Listing {
                preset,
                record,
                yanked_at: None,
            });
            self.settled(&key);
        }
    }

    /// Brings the registry in step with the index: loads versions this process lacks, applies
    /// yanks. Failures are logged (once per reason) and retried at the next reconcile.
    pub async fn reconcile(&self) -> Reconciled {
        let _one = self.reconciling.lock().await;
        let mut conn = self.redis.clone();
        let fetched: redis::RedisResult<(HashMap<String, String>, HashMap<String, String>)> =
            redis::pipe()
                .hgetall(self.index_key())
                .hgetall(self.yanked_key())
                .query_async(&mut conn)
                .await;
        let (index, yanked) = match fetched {
            Ok(f) => f,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the preset index; retrying at the next reconcile");
                return Reconciled::default();
            }
        };
        // Lookups of what is about to load wait for it rather than miss.
        let due: Vec<String> = index
            .iter()
            .filter(|(key, json)| {
                parse_record(json).is_ok_and(|r| {
                    !self.registry.has(&r.name, &r.version, &r.sha256)
                        && !self.refused_before(key, &r.sha256)
                })
            })
            .map(|(key, _)| key.clone())
            .collect();
        self.pending
            .lock()
            .expect("pending lock")
            .extend(due.iter().cloned());
        // Should this reconcile be dropped half-way (a lookup that stopped waiting), what it
        // had not reached is not left pending.
        let _unmark = Unmark {
            catalog: self,
            keys: due,
        };
        let mut done = Reconciled::default();
        for (key, json) in index {
            let _settle = Settle {
                catalog: self,
                key: &key,
            };
            let yanked_at = yanked.get(&key).cloned();
            let record = match parse_record(&json) {
                Ok(r) => r,
                Err(why) => {
                    self.note_failure(&key, Failure { why, refused: None });
                    done.failed += 1;
                    continue;
                }
            };
            if self.refused_before(&key, &record.sha256) {
                done.failed += 1;
                done.remembered += 1;
                continue;
            }
            if !self
                .registry
                .has(&record.name, &record.version, &record.sha256)
            {
                let started = Instant::now();
                match self.load_published(&record).await {
                    Ok((preset, cost)) => {
                        let from = cost.from;
                        tracing::info!(
                            preset = %record.name, version = %record.version, ?from,
                            ms = started.elapsed().as_millis() as u64,
                            "loaded published preset"
                        );
                        self.failing.lock().expect("failing lock").remove(&key);
                        self.registry.insert(Listing {
                            preset,
                            record: record.clone(),
                            yanked_at: yanked_at.clone(),
                        });
                        done.loaded += 1;
                    }
                    Err(failure) => {
                        self.note_failure(&key, failure);
                        done.failed += 1;
                        continue;
                    }
                }
            }
            self.registry
                .set_yanked(&record.name, &record.version, yanked_at);
        }
        done
    }

    /// Whether these bytes of this index entry were refused here before.
    fn refused_before(&self, key: &str, sha256: &str) -> bool {
        self.failing
            .lock()
            .expect("failing lock")
            .get(key)
            .is_some_and(|f| f.refused.as_deref() == Some(sha256))
    }

    fn note_failure(&self, key: &str, failure: Failure) {
        self.pending.lock().expect("pending lock").remove(key);
        let mut failing = self.failing.lock().expect("failing lock");
        if failing.get(key) != Some(&failure) {
            let reason = &failure.why;
            if failure.refused.is_some() {
                tracing::warn!(preset = %key, %reason, "a published preset's component is refused; it is not tried again until its index entry changes");
            } else {
                tracing::warn!(preset = %key, %reason, "cannot load a published preset; retrying at the next reconcile");
            }
            failing.insert(key.to_owned(), failure);
        }
    }

    /// Fetches a published component and loads it, checking that it is what the record says.
    async fn load_published(
        &self,
        record: &PresetRecord,
    ) -> Result<(Arc<Preset>, CompileCost), Failure> {
        let bytes = self
            .storage
            .get_bytes(&blob_key(&record.sha256), MAX_COMPONENT_BYTES as u64)
            .await
            .map_err(|e| Failure {
                why: format!("cannot fetch the component: {e}"),
                refused: None,
            })?;
        let refused = |why: String| Failure {
            why,
            refused: Some(record.sha256.clone()),
        };
        let (preset, from) = self.load(Bytes::from(bytes)).await.map_err(|e| {
            // No instance free, or the host's own trouble: the bytes are not to blame.
            if matches!(e.code, ErrorCode::HostOverloaded | ErrorCode::Internal) {
                Failure {
                    why: e.detail,
                    refused: None,
                }
            } else {
                refused(e.detail)
            }
        })?;
        if preset.sha256 != record.sha256
            || preset.name != record.name
            || preset.version != record.version
        {
            return Err(refused(format!(
                "the stored component is {}@{} with sha256 {}, not what the index says",
                preset.name, preset.version, preset.sha256
            )));
        }
        Ok((preset, from))
    }

    /// One exact version, loading it from the catalog if this process does not have it yet
    /// (a job can reach a worker before the announcement of its version does). `None` when it
    /// is not published, or did not load here, or is still loading after [`Self::loading_wait`].
    pub async fn get(&self, name: &str, version: &Version) -> Option<Arc<Preset>> {
        self.lookup(name, version).await.ok().flatten()
    }

    /// Like [`Self::get`], telling a version that is still loading (`PRESET_LOADING`, after
    /// waiting up to [`Self::loading_wait`] for it) from one that is not here (`None`).
    pub async fn lookup(
        &self,
        name: &str,
        version: &Version,
    ) -> Result<Option<Arc<Preset>>, ApiError> {
        let started = Instant::now();
        let deadline = tokio::time::Instant::now() + self.loading_wait;
        loop {
            let mut changed = self.attempts.subscribe();
            if let Some(p) = self.registry.get(name, version) {
                return Ok(Some(p));
            }
            // At start, before the bundled components are read, any version may be on its way.
            if !self.pending_has(name, Some(version)) && self.loading().done {
                break;
            }
            if tokio::time::timeout_at(deadline, changed.changed())
                .await
                .is_err()
            {
                return Err(Self::still_loading(name, Some(version), started.elapsed()));
            }
        }
        // Not loading here: it may be published but not announced to this process yet. A
        // version that is not published, or whose bytes were refused here, is answered at once.
        let key = field(name, version);
        let entry: Option<String> = self
            .redis
            .clone()
            .hget(self.index_key(), &key)
            .await
            .map_err(redis_failed)?;
        let Some(entry) = entry else {
            return Ok(None);
        };
        if let Ok(record) = parse_record(&entry)
            && self.refused_before(&key, &record.sha256)
        {
            return Ok(None);
        }
        match tokio::time::timeout_at(deadline, self.reconcile()).await {
            Ok(_) => Ok(self.registry.get(name, version)),
            Err(_) => Err(Self::still_loading(name, Some(version), started.elapsed())),
        }
    }

    /// Resolves a requirement. While versions of the preset are loading, waits for them (up to
    /// [`Self::loading_wait`]) so that the newest one is not missed; when nothing matches,
    /// catches up with the index once.
    pub async fn resolve(
        &self,
        name: &str,
        requirement: Option<&str>,
    ) -> Result<Arc<Preset>, ApiError> {
        let started = Instant::now();
        let deadline = tokio::time::Instant::now() + self.loading_wait;
        let missing = |r: &Result<Arc<Preset>, ApiError>| {
            matches!(r, Err(e) if matches!(
                e.code,
                ErrorCode::PresetNotFound | ErrorCode::PresetVersionNotFound
            ))
        };
        let found = loop {
            let mut changed = self.attempts.subscribe();
            let found = self.registry.resolve(name, requirement);
            // A version of it is loading: it may be the newest match. At start, until the
            // bundled components are read, any name and version may be on its way.
            let wait = self.pending_has(name, None)
                || self.seeding.load(std::sync::atomic::Ordering::SeqCst)
                || (missing(&found) && !self.loading().done);
            if !wait {
                break found;
            }
            if tokio::time::timeout_at(deadline, changed.changed())
                .await
                .is_err()
            {
                return match found {
                    Ok(p) => Ok(p),
                    Err(_) => Err(Self::still_loading(name, None, started.elapsed())),
                };
            }
        };
        if !missing(&found) {
            return found;
        }
        match tokio::time::timeout_at(deadline, self.reconcile()).await {
            Ok(_) => self.registry.resolve(name, requirement),
            Err(_) => Err(Self::still_loading(name, None, started.elapsed())),
        }
    }

    /// Keeps the registry in step: a subscription to change announcements (reconnecting when
    /// it drops) and a reconcile every `every`. Runs until `shutdown`.
    pub fn spawn_sync(
        self: &Arc<Self>,
        every: Duration,
        shutdown: watch::Receiver<bool>,
    ) -> tokio::task::JoinHandle<()> {
        let catalog = self.clone();
        tokio::spawn(async move {
            let timer = {
                let catalog = catalog.clone();
                async move {
                    let mut ticker = tokio::time::interval(every);
                    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                    loop {
                        ticker.tick().await;
                        catalog.reconcile().await;
                    }
                }
            };
            let mut stop = shutdown;
            tokio::select! {
                _ = timer => {}
                _ = catalog.listen() => {}
                _ = stop.wait_for(|s| *s) => {}
            }
        })
    }

    async fn listen(&self) {
        loop {
            match self.subscribe().await {
                Ok(mut messages) => {
                    // Catch up on anything announced while this process was not listening.
                    self.reconcile().await;
                    while let Some(message) = messages.next().await {
                        let text: String = message.get_payload().unwrap_or_default();
                        tracing::debug!(event = %text, "preset change announced");
                        self.reconcile().await;
                    }
                    tracing::warn!("lost the preset change subscription; reconnecting");
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot subscribe to preset changes; retrying");
                }
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }

    async fn subscribe(
        &self,
    ) -> redis::RedisResult<impl futures::Stream<Item = redis::Msg> + use<>> {
        let mut pubsub = self.client.get_async_pubsub().await?;
        pubsub.subscribe(self.channel()).await?;
        Ok(pubsub.into_on_message())
    }
}

/// Marks an index entry settled when a reconcile is done with it, whichever way.
struct Settle<'a> {
    catalog: &'a Catalog,
    key: &'a str,
}

impl Drop for Settle<'_> {
    fn drop(&mut self) {
        self.catalog.settled(self.key);
    }
}

/// Unmarks the entries a reconcile marked pending, when it ends or is dropped.
struct Unmark<'a> {
    catalog: &'a Catalog,
    keys: Vec<String>,
}

impl Drop for Unmark<'_> {
    fn drop(&mut self) {
        let mut pending = self.catalog.pending.lock().expect("pending lock");
        for key in &self.keys {
            pending.remove(key);
        }
        drop(pending);
        self.catalog.bump();
    }
}

/// The `.wasm` files of a presets directory, sorted.
pub fn wasm_files(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let entries = std::fs::read_dir(dir).map_err(|e| {
        anyhow::anyhow!(
            "cannot read the presets directory {}: {e}; point --presets-dir at a directory \
             of .wasm files (the released built-in presets are in presets-wasm/released)",
            dir.display()
        )
    })?;
    let mut paths: Vec<_> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "wasm"))
        .collect();
    paths.sort();
    Ok(paths)
}

/// An index entry as read back from Redis, which anyone with access to it could have written:
/// bad JSON, a bad version or a version with build metadata (which this host never publishes,
/// and which an exact pin would match) is refused with the reason, to be skipped with a warning.
fn parse_record(json: &str) -> Result<PresetRecord, String> {
    let record: PresetRecord =
        serde_json::from_str(json).map_err(|e| format!("unreadable index entry: {e}"))?;
    if !record.version.build.is_empty() {
        return Err(format!(
            "index entry {}@{} has build metadata, which this host never publishes",
            record.name, record.version
        ));
    }
    Ok(record)
}

/// The record a version is published with, now.
fn record_of(preset: &Preset, size_bytes: usize, origin: PresetOrigin) -> PresetRecord {
    PresetRecord {
        name: preset.name.clone(),
        version: preset.version.clone(),
        sha256: preset.sha256.clone(),
        size_bytes: size_bytes as u64,
        interface: format!("mediahost:preset@{}", preset.interface),
        published_at: now_rfc3339(),
        origin,
    }
}

enum Indexed {
    Created,
    /// The version was already indexed; the existing record's JSON.
    Exists(String),
}

fn exists(preset: &Preset, existing: &str) -> ApiError {
    let same =
        serde_json::from_str::<PresetRecord>(existing).is_ok_and(|r| r.sha256 == preset.sha256);
    let detail = if same {
        format!(
            "{}@{} is already published with these exact bytes; nothing to do",
            preset.name, preset.version
        )
    } else {
        format!(
            "{}@{} is already published with other bytes; a published version is immutable: \
             bump the version in describe() and push again",
            preset.name, preset.version
        )
    };
    ApiError::new(ErrorCode::PresetVersionExists, detail)
        .with("preset", preset.name.as_str())
        .with("version", preset.version.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(version: &str) -> String {
        serde_json::json!({
            "name": "audio-convert",
            "version": version,
            "sha256": "00",
            "size_bytes": 1,
            "interface": "mediahost:preset@1.0.0",
            "published_at": "2026-01-01T00:00:00Z",
            "origin": "uploaded",
        })
        .to_string()
    }

    #[test]
    fn a_well_formed_entry_is_read() {
        let record = parse_record(&entry("1.2.3")).expect("a good entry");
        assert_eq!(record.version, Version::new(1, 2, 3));
    }

    /// A component that does not load is compiled once, not at every reconcile: refused again
    /// without compiling while its index entry names the same bytes, tried again when the entry
    /// names other bytes; a component that could not be fetched is tried every time.
    #[tokio::test]
    async fn refused_bytes_are_remembered_until_the_entry_changes() {
        let Fixture {
            _server,
            _dir,
            manager,
            storage,
            catalog,
            ..
        } = fixture().await;
        let publish = async |bytes: &'static [u8]| {
            let sha = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(bytes));
            storage
                .put_bytes(
                    &blob_key(&sha),
                    Bytes::from_static(bytes),
                    &ObjectMeta::new("application/wasm", CachePolicy::Immutable),
                )
                .await
                .unwrap();
            let entry =
                entry("1.0.0").replace("\"sha256\":\"00\"", &format!("\"sha256\":\"{sha}\""));
            let _: () = manager
                .clone()
                .hset("t:presets", "audio-convert@1.0.0", entry)
                .await
                .unwrap();
        };
        publish(b"\0asm not really a component").await;
        let first = catalog.reconcile().await;
        assert_eq!(
            (first.failed, first.remembered),
            (1, 0),
            "compiled and refused"
        );
        let again = catalog.reconcile().await;
        assert_eq!(
            (again.failed, again.remembered),
            (1, 1),
            "not compiled again"
        );
        assert!(
            catalog
                .get("audio-convert", &Version::new(1, 0, 0))
                .await
                .is_none()
        );

        publish(b"\0asm other bytes, no better").await;
        let changed = catalog.reconcile().await;
        assert_eq!(
            (changed.failed, changed.remembered),
            (1, 0),
            "new bytes are tried"
        );

        // An entry whose component is not there (yet): tried at every reconcile.
        let _: () = manager
            .clone()
            .hset("t:presets", "audio-convert@1.0.0", entry("1.0.0"))
            .await
            .unwrap();
        for _ in 0..2 {
            let missing = catalog.reconcile().await;
            assert_eq!((missing.failed, missing.remembered), (1, 0));
        }
    }

    /// A catalog on a fresh Redis and local storage, compiling in this process.
    struct Fixture {
        _server: crate::lifecycle::tests::Server,
        _dir: tempfile::TempDir,
        manager: redis::aio::ConnectionManager,
        storage: Arc<Storage>,
        runtime: Arc<Runtime>,
        catalog: Catalog,
    }

    async fn fixture() -> Fixture {
        let server = crate::lifecycle::tests::redis_server().await;
        let client = redis::Client::open(server.url.as_str()).unwrap();
        let manager = redis::aio::ConnectionManager::new(client.clone())
            .await
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let storage = Arc::new(Storage::Local(
            crate::storage::local::LocalStorage::open(dir.path(), "http://127.0.0.1:1").unwrap(),
        ));
        let runtime =
            Arc::new(Runtime::new(crate::preset::runtime::SandboxLimits::default(), None).unwrap());
        let catalog = Catalog::new(
            manager.clone(),
            client,
            storage.clone(),
            runtime.clone(),
            "t",
        );
        Fixture {
            _server: server,
            _dir: dir,
            manager,
            storage,
            runtime,
            catalog,
        }
    }

    fn released(file: &str) -> Bytes {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../presets-wasm/released")
            .join(file);
        Bytes::from(std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
    }

    /// However many publishes want a compile at once, compiles run one at a time.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn compiles_run_one_at_a_time() {
        let f = fixture().await;
        let files = [
            "audio-convert-1.0.0.wasm",
            "extract-audio-1.0.0.wasm",
            "channel-normalize-1.0.0.wasm",
        ];
        let published =
            futures::future::join_all(files.iter().map(|file| f.catalog.publish(released(file))))
                .await;
        for (file, result) in files.iter().zip(published) {
            let (listing, cost) = result.unwrap_or_else(|e| panic!("{file}: {}", e.detail));
            assert_eq!(cost.from, CompiledFrom::Compiled, "{file}");
            assert!(f.catalog.registry().has(
                &listing.record.name,
                &listing.record.version,
                &listing.record.sha256
            ));
        }
        assert_eq!(f.runtime.most_compiles_at_once(), 1);
    }

    /// Stores a component and indexes it, as another process's publish would.
    async fn index_elsewhere(f: &Fixture, bytes: &Bytes) -> PresetRecord {
        let (preset, _) = f.catalog.load(bytes.clone()).await.unwrap();
        // Forget it: this process has not loaded it.
        let record = record_of(&preset, bytes.len(), PresetOrigin::Uploaded);
        f.storage
            .put_bytes(
                &blob_key(&record.sha256),
                bytes.clone(),
                &ObjectMeta::new("application/wasm", CachePolicy::Immutable),
            )
            .await
            .unwrap();
        let _: () = f
            .manager
            .clone()
            .hset(
                "t:presets",
                field(&record.name, &record.version),
                serde_json::to_string(&record).unwrap(),
            )
            .await
            .unwrap();
        record
    }

    /// At start, a lookup of a published version that is not loaded yet waits for it and gets
    /// it, instead of answering that it does not exist; readiness follows the loading.
    #[tokio::test]
    async fn a_lookup_of_a_loading_version_waits_then_resolves() {
        let f = fixture().await;
        let record = index_elsewhere(&f, &released("audio-convert-1.0.0.wasm")).await;
        let catalog = Arc::new(f.catalog);
        let empty = tempfile::tempdir().unwrap();
        let loader = catalog.spawn_load_at_start(empty.path().to_owned());
        let loading = catalog.loading();
        assert!(!loading.done, "{loading:?}");
        assert!(catalog.registry().is_empty(), "not loaded yet");

        let found = catalog
            .lookup(&record.name, &record.version)
            .await
            .expect("waits, does not fail")
            .expect("found once loaded");
        assert_eq!(found.sha256, record.sha256);
        let resolved = catalog.resolve(&record.name, Some("^1")).await.unwrap();
        assert_eq!(resolved.version, record.version);

        loader.await.unwrap();
        let loading = catalog.loading();
        assert!(loading.done);
        assert_eq!((loading.attempted, loading.total), (1, 1));
    }

    /// A version still loading when the wait runs out is `PRESET_LOADING`, not "not found"; once
    /// nothing is loading, an unknown version is simply not there.
    #[tokio::test]
    async fn a_version_still_loading_after_the_wait_is_preset_loading() {
        let mut f = fixture().await;
        f.catalog.loading_wait = Duration::from_millis(200);
        let version = Version::new(1, 0, 0);
        f.catalog
            .pending
            .lock()
            .unwrap()
            .insert(field("audio-convert", &version));
        let started = Instant::now();
        let err = f
            .catalog
            .lookup("audio-convert", &version)
            .await
            .err()
            .expect("still loading");
        assert_eq!(err.code, ErrorCode::PresetLoading, "{}", err.detail);
        assert!(started.elapsed() >= Duration::from_millis(200), "it waited");
        let err = f
            .catalog
            .resolve("audio-convert", None)
            .await
            .err()
            .expect("still loading");
        assert_eq!(err.code, ErrorCode::PresetLoading, "{}", err.detail);

        f.catalog.settled(&field("audio-convert", &version));
        assert!(
            f.catalog
                .lookup("audio-convert", &version)
                .await
                .unwrap()
                .is_none()
        );
        let err = f
            .catalog
            .resolve("audio-convert", None)
            .await
            .err()
            .expect("not published");
        assert_eq!(err.code, ErrorCode::PresetNotFound);
    }

    #[test]
    fn malformed_entries_are_refused_not_panicked_on() {
        for (json, why) in [
            ("{not json".to_owned(), "unreadable"),
            (entry("one.two"), "unreadable"),
            (entry("1.0.0+patched"), "build metadata"),
            ("null".to_owned(), "unreadable"),
        ] {
            let err = parse_record(&json).expect_err(&json);
            assert!(err.contains(why), "{json}: {err}");
        }
    }
}
