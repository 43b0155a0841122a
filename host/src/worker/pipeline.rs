//! One job, start to finish: download, probe, plan in rounds through a [`Session`] (this
//! module's executor runs the steps and analyses it validated with ffmpeg, isolating optional
//! outputs that fail and copying image metadata), then store the outputs ([`publish`]) and
//! write the manifest last.
//!
//! Every failure leaves this module as a [`JobError`] with a code, the step and a message.
//!
//! Not here: the round protocol, its caps and what a plan may contain (`plan::session`,
//! `plan::validate`).

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use serde_json::{Map, Value, json};
use tokio::sync::watch;

use crate::error::{ErrorCode, JobError};
use crate::ffmpeg::{self, Tools, jail, output, render};
use crate::job::{
    Cached, Job, JobStore, OutputPhase, OutputProgress, OutputRecord, OutputState, Progress,
};
use crate::media::{analysis, image_meta, probe};
use crate::model;
use crate::plan::session::{self, Executor, LogLine, Sandboxed, Session, Stage, Written};
use crate::plan::validate::{ValidatedAnalysis, ValidatedFinish, ValidatedStep};
use crate::preset::catalog::Catalog;
use crate::preset::params;
use crate::preset::registry::Preset;
use crate::preset::runtime::{Lane, Runtime};
use crate::result_cache::{CacheKey, Entry, Lead, Leadership, ResultCache};
use crate::storage::{ObjectKey, ObjectMeta, Storage, StorageError};

use super::publish;

/// The largest source image whose metadata is copied into image outputs; metadata of a larger
/// one is not read (it would be read whole).
const MAX_METADATA_SOURCE_BYTES: u64 = 256 << 20;

/// What a worker needs to run jobs.
pub struct Context {
    pub storage: Arc<Storage>,
    pub catalog: Arc<Catalog>,
    pub runtime: Arc<Runtime>,
    pub jobs: JobStore,
    pub tools: Tools,
    pub scratch_root: PathBuf,
    /// How long a failed attempt's scratch directory is kept (zero: removed at once).
    pub keep_failed: std::time::Duration,
    /// The most bytes a job's scratch directory may hold while ffmpeg runs.
    pub disk_budget: u64,
    /// The result cache (`None` when it is off).
    pub result_cache: Option<Arc<ResultCache>>,
}

/// The result of a successful job.
pub struct Finished {
    pub outputs: Vec<OutputRecord>,
    pub report: Map<String, Value>,
    /// Seconds spent in ffprobe/ffmpeg child processes.
    pub child_s: f64,
    /// The SHA-256 of each input, as far as the job learned them.
    pub input_sha256: BTreeMap<String, String>,
    /// Set when the outputs came from the result cache.
    pub cached: Option<Cached>,
    /// The job's lease on its work's cache key, when it ran that work for the cache: the
    /// worker stores the entry once the completion is recorded, then lets go.
    pub lead: Option<Lead>,
}

impl Finished {
    /// A job answered from the cache: the entry's outputs and report, no ffmpeg time.
    fn cached(entry: Entry, input_sha256: BTreeMap<String, String>, child_s: f64) -> Self {
        Self {
            outputs: entry.outputs,
            report: entry.report,
            child_s,
            input_sha256,
            cached: Some(Cached { job: entry.job }),
            lead: None,
        }
    }
}

/// A job-scoped scratch directory, removed when dropped (on success and on failure alike),
/// unless kept for debugging a failure.
pub struct Scratch(PathBuf, std::sync::atomic::AtomicBool);

impl Scratch {
    /// Creates the job's directory. With `jail_owns_outputs` (ffmpeg runs as the jail's uid),
    /// `work/` and `out/` belong to that uid; the job directory and `in/` stay the host's, so
    /// ffmpeg can replace nothing but its own files.
    fn create(root: &Path, job: &Job, jail_owns_outputs: bool) -> Result<Self, JobError> {
        use std::os::unix::fs::PermissionsExt;
        let dir = root.join(format!("{}-{}", job.id, job.attempts));
        let _ = std::fs::remove_dir_all(&dir);
        let made = || -> std::io::Result<()> {
            for sub in ["in", "work", "out"] {
                std::fs::create_dir_all(dir.join(sub))?;
            }
            for sub in ["", "in"] {
                std::fs::set_permissions(dir.join(sub), std::fs::Permissions::from_mode(0o755))?;
            }
            if jail_owns_outputs {
                for sub in ["work", "out"] {
                    std::os::unix::fs::chown(
                        dir.join(sub),
                        Some(jail::JAIL_UID),
                        Some(jail::JAIL_GID),
                    )?;
                }
            }
            Ok(())
        };
        made().map_err(|e| {
            JobError::new(
                ErrorCode::Internal,
                "download",
                format!("cannot create scratch directory: {e}"),
            )
        })?;
        Ok(Self(dir, std::sync::atomic::AtomicBool::new(false)))
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    /// Removes the directory now, retrying while a stopped ffmpeg may still be dying (its
    /// last writes can land after a first pass); on success, dropping has nothing left to do.
    async fn remove_now(&self) {
        for _ in 0..40 {
            match std::fs::remove_dir_all(&self.0) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
                _ => {
                    self.1.store(true, std::sync::atomic::Ordering::Relaxed);
                    return;
                }
            }
        }
    }

    /// Moves the directory to `dest` and leaves it there (a failed attempt, for debugging).
    fn keep_at(&self, dest: &Path) -> std::io::Result<()> {
        if let Some(parent) = dest.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let _ = std::fs::remove_dir_all(dest);
        std::fs::rename(&self.0, dest)?;
        self.1.store(true, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if self.1.load(std::sync::atomic::Ordering::Relaxed) {
            return;
        }
        if let Err(e) = std::fs::remove_dir_all(&self.0) {
            tracing::warn!(dir = %self.0.display(), error = %e, "could not remove scratch");
        }
    }
}

struct Media {
    path: PathBuf,
    info: model::MediaInfo,
}

#[derive(Default)]
struct MediaSet {
    inputs: BTreeMap<String, Media>,
    produced: BTreeMap<String, Media>,
}

impl MediaSet {
    fn get(&self, r: &model::MediaRef) -> Option<&Media> {
        match r {
            model::MediaRef::Input(n) => self.inputs.get(n),
            model::MediaRef::Produced(n) => self.produced.get(n),
        }
    }

    fn named(
        map: &BTreeMap<String, Media>,
        wrap: fn(String) -> model::MediaRef,
    ) -> Vec<model::NamedMedia> {
        map.iter()
            .map(|(name, m)| model::NamedMedia {
                source: wrap(name.clone()),
                info: m.info.clone(),
            })
            .collect()
    }
}

/// Runs one job. `progress` receives a rough fraction done, for the job record.
pub async fn run(
    ctx: &Context,
    job: &Job,
    preset: &Arc<Preset>,
    progress: &watch::Sender<Progress>,
) -> Result<Finished, JobError> {
    let cache = ctx.result_cache.as_ref().filter(|_| job.cache);
    let mut input_sha256 = job.input_sha256.clone();
    if let Some(cache) = cache {
        // Hashes the API found are in the record; only the others are looked up here.
        cache.fill_known(&job.inputs, &mut input_sha256).await;
        // Every input's hash known without a download: a hit needs no scratch at all.
        if let Some(key) = CacheKey::of(job, &input_sha256, &preset.interface)
            && let Some(entry) = cache.lookup(&key).await
        {
            cache.count(true).await;
            log_hit(ctx, job, &entry).await;
            return Ok(Finished::cached(entry, input_sha256, 0.0));
        }
    }
    let scratch = Scratch::create(&ctx.scratch_root, job, ctx.tools.jail.drop_user)?;
    let mut run = Run {
        ctx,
        job,
        scratch: &scratch,
        media: MediaSet::default(),
        delivered: Vec::new(),
        child_s: 0.0,
        progress,
        input_sha256,
        lead: None,
    };
    let result = async {
        run.download_and_probe().await?;
        if let Some(cache) = cache
            && let Some(done) = run.reuse_or_lead(cache, preset).await
        {
            return Ok(done);
        }
        run.plan_and_execute(preset).await
    }
    .await;
    // A job over its disk budget is never kept: keeping it is how a full disk stays full.
    let over_budget = matches!(&result, Err(e) if e.code == ErrorCode::OutputTooLarge);
    if over_budget {
        scratch.remove_now().await;
    } else if result.is_err() && !ctx.keep_failed.is_zero() {
        let kept = ctx.scratch_root.join("failed").join(
            scratch
                .path()
                .file_name()
                .expect("scratch directories have names"),
        );
        match scratch.keep_at(&kept) {
            Ok(()) => {
                ctx.jobs
                    .log(
                        &job.id,
                        "host",
                        format!(
                            "the failed attempt's scratch directory is kept for {}s at {}",
                            ctx.keep_failed.as_secs(),
                            kept.display()
                        ),
                    )
                    .await;
            }
            Err(e) => tracing::warn!(error = %e, "could not keep the failed job's scratch"),
        }
    }
    result
}

async fn log_hit(ctx: &Context, job: &Job, entry: &Entry) {
    ctx.jobs
        .log(
            &job.id,
            "host",
            format!(
                "answered from the result cache: the outputs of job {}, no ffmpeg run",
                entry.job
            ),
        )
        .await;
}

/// Removes kept scratch directories of failed attempts once they are older than `keep`.
pub fn sweep_failed(scratch_root: &Path, keep: std::time::Duration) {
    let Ok(entries) = std::fs::read_dir(scratch_root.join("failed")) else {
        return;
    };
    for entry in entries.flatten() {
        let old = entry
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age >= keep);
        if old && let Err(e) = std::fs::remove_dir_all(entry.path()) {
            tracing::warn!(dir = %entry.path().display(), error = %e, "could not remove kept scratch");
        }
    }
}

struct Run<'a> {
    ctx: &'a Context,
    job: &'a Job,
    scratch: &'a Scratch,
    media: MediaSet,
    /// What the finish steps wrote (or failed to write, for optional outputs), to publish.
    delivered: Vec<publish::Delivered>,
    child_s: f64,
    progress: &'a watch::Sender<Progress>,
    /// The inputs' hashes: known before the attempt, or computed as they are downloaded.
    input_sha256: BTreeMap<String, String>,
    /// This job's lease on its work's cache key, while it runs that work.
    lead: Option<Lead>,
}

impl Run<'_> {
    async fn note(&self, source: &str, message: impl Into<String>) {
        self.ctx.jobs.log(&self.job.id, source, message).await;
    }

    fn advance(&self, to: f64) {
        self.progress.send_if_modified(|p| {
            let changed = to > p.fraction;
            if changed {
                p.fraction = to.min(0.99);
            }
            changed
        });
    }

    /// Sets the state and fraction done of the named outputs, for the job's live progress.
    fn mark(&self, names: &[String], state: OutputPhase, fraction: f64) {
        self.progress.send_modify(|p| {
            for name in names {
                p.outputs.insert(
                    name.clone(),
                    OutputProgress {
                        state,
                        progress: fraction,
                    },
                );
            }
        });
    }

    async fn download_and_probe(&mut self) -> Result<(), JobError> {
        for (name, uri) in &self.job.inputs {
            let key = self
                .ctx
                .storage
                .parse_uri(uri)
                .map_err(|e| JobError::new(ErrorCode::InputUriInvalid, "download", e.detail))?;
            let path = self.scratch.path().join("in").join(name);
            // An input the cache has no hash of is hashed once downloaded; its version before
            // the download says whether the hash may be remembered for that object.
            let version = match self.ctx.result_cache.as_ref().filter(|_| self.job.cache) {
                Some(cache) if !self.input_sha256.contains_key(name) => {
                    cache.version(&key).await.ok()
                }
                _ => None,
            };
            self.ctx
                .storage
                .download(&key, &path)
                .await
                .map_err(|e| match e {
                    StorageError::NotFound(_) => JobError::new(
                        ErrorCode::InputNotFound,
                        "download",
                        format!("input '{name}' ({uri}) does not exist; upload it first"),
                    ),
                    StorageError::Failed(why) => JobError::new(
                        ErrorCode::StorageFailed,
                        "download",
                        format!("input '{name}': {why}"),
                    ),
                })?;
            {
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644))
                    .map_err(|e| JobError::new(ErrorCode::Internal, "download", e.to_string()))?;
            }
            self.note("host", format!("downloaded input '{name}' from {uri}"))
                .await;
            if let Some(version) = version {
                self.hash_download(name, uri, &key, &path, &version).await?;
            }
            let started = Instant::now();
            let info = probe::probe(&self.ctx.tools, &path).await;
            self.child_s += started.elapsed().as_secs_f64();
            let info = info.map_err(|e| {
                JobError::new(
                    e.code(ErrorCode::InputUnreadable),
                    "probe",
                    format!("input '{name}' is not readable media: {e}"),
                )
            })?;
            self.media.inputs.insert(name.clone(), Media { path, info });
        }
        self.advance(0.05);
        Ok(())
    }

    /// Hashes a downloaded input and remembers the hash for its object when the object did not
    /// change while it was read.
    async fn hash_download(
        &mut self,
        name: &str,
        uri: &str,
        key: &ObjectKey,
        path: &Path,
        version: &str,
    ) -> Result<(), JobError> {
        let Some(cache) = &self.ctx.result_cache else {
            return Ok(());
        };
        let file = path.to_owned();
        let sha256 = tokio::task::spawn_blocking(move || sha256_file(&file))
            .await
            .map_err(|e| JobError::new(ErrorCode::Internal, "download", e.to_string()))?
            .map_err(|e| {
                JobError::new(
                    ErrorCode::Internal,
                    "download",
                    format!("cannot hash input '{name}': {e}"),
                )
            })?;
        if cache.version(key).await.ok().as_deref() == Some(version) {
            cache.remember_sha256(uri, version, &sha256).await;
        }
        self.input_sha256.insert(name.to_owned(), sha256);
        Ok(())
    }

    /// With every input's hash known: the cached outputs of the same work, waiting for a job
    /// that runs it now, or `None` when this job is to run it (holding its lease).
    async fn reuse_or_lead(
        &mut self,
        cache: &Arc<ResultCache>,
        preset: &Preset,
    ) -> Option<Finished> {
        let key = CacheKey::of(self.job, &self.input_sha256, &preset.interface)?;
        let mut waiting_for = None;
        loop {
            if let Some(entry) = cache.lookup(&key).await {
                cache.count(true).await;
                log_hit(self.ctx, self.job, &entry).await;
                return Some(Finished::cached(
                    entry,
                    std::mem::take(&mut self.input_sha256),
                    self.child_s,
                ));
            }
            match cache.lead(&key, self.job.id).await {
                Ok(Leadership::Leads(lead)) => {
                    cache.count(false).await;
                    self.lead = Some(lead);
                    return None;
                }
                Ok(Leadership::Follows(other)) => {
                    if waiting_for != Some(other) {
                        self.note(
                            "host",
                            format!(
                                "job {other} is running the same work; waiting for its outputs"
                            ),
                        )
                        .await;
                        waiting_for = Some(other);
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "the result cache is unreachable; running the job");
                    return None;
                }
            }
        }
    }

    async fn plan_and_execute(&mut self, preset: &Arc<Preset>) -> Result<Finished, JobError> {
        self.note(
            "host",
            format!(
                "planning with {}@{} (sha256 {}, interface mediahost:preset@{})",
                preset.name, preset.version, preset.sha256, preset.interface
            ),
        )
        .await;
        let request = model::PlanRequest {
            round: 1,
            inputs: MediaSet::named(&self.media.inputs, model::MediaRef::Input),
            params: params::typed(&preset.descriptor.params, &self.job.params),
            produced: Vec::new(),
            analyses: Vec::new(),
        };
        let call = Sandboxed {
            runtime: self.ctx.runtime.clone(),
            preset: preset.clone(),
            lane: Lane::Job,
        };
        let finish = Session::new(&call, self, request).run().await?;
        let delivered = std::mem::take(&mut self.delivered);
        let outputs = self.publish(delivered, &finish).await?;
        Ok(Finished {
            outputs,
            report: session::report_json(&finish.report),
            child_s: self.child_s,
            input_sha256: std::mem::take(&mut self.input_sha256),
            cached: None,
            lead: self.lead.take(),
        })
    }

    /// Duration of the media a step reads, for its time limit and progress.
    fn step_media_s(&self, step: &model::Step) -> f64 {
        step.inputs
            .iter()
            .map(|i| {
                let full = self
                    .media
                    .get(&i.source)
                    .and_then(|m| m.info.container.duration_s)
                    .unwrap_or(0.0);
                i.duration_s.map_or(full, |d| d.min(full))
            })
            .fold(0.0, f64::max)
    }

    async fn execute(
        &mut self,
        step: &ValidatedStep,
        deliver: bool,
        to_srgb: &HashMap<String, String>,
    ) -> Result<Vec<render::RenderedOutput>, JobError> {
        let rendered = self.render(step, deliver, to_srgb);
        let name = step.step().name.clone();
        for dir in rendered.outputs.iter().filter_map(|o| o.dir.as_ref()) {
            self.output_dir(dir).map_err(|e| {
                JobError::new(
                    ErrorCode::Internal,
                    "ffmpeg",
                    format!("step '{name}': cannot create {}: {e}", dir.display()),
                )
            })?;
        }
        self.note(
            "ffmpeg",
            format!("step '{name}': {}", render::shell_line(&rendered.argv)),
        )
        .await;

        let media_s = self.step_media_s(step.step());
        let start = self.progress.borrow().fraction;
        let span = if deliver {
            0.95 - start
        } else {
            (0.95 - start) * 0.5
        };
        let progress = self.progress;
        let names: Vec<String> = rendered.outputs.iter().map(|o| o.name.clone()).collect();
        if deliver {
            self.mark(&names, OutputPhase::Running, 0.0);
        }
        let result = ffmpeg::run_with_progress(
            &self.ctx.tools,
            &rendered.argv,
            self.scratch.path(),
            ffmpeg::time_limit(media_s),
            self.ctx.disk_budget,
            |t| {
                if media_s > 0.0 {
                    let done = (t / media_s).clamp(0.0, 1.0);
                    let to = start + span * done;
                    progress.send_if_modified(|p| {
                        let changed = to > p.fraction + 0.01;
                        if changed {
                            p.fraction = to;
                            if deliver {
                                for name in &names {
                                    p.outputs.insert(
                                        name.clone(),
                                        OutputProgress {
                                            state: OutputPhase::Running,
                                            progress: done,
                                        },
                                    );
                                }
                            }
                        }
                        changed
                    });
                }
            },
        )
        .await;
        let captured = result.map_err(|e| {
            let hint = match e {
                ffmpeg::RunError::OverBudget { .. } => {
                    "; the scratch was freed. Ask for a smaller or shorter output, or raise \
                     --job-disk-budget-mib"
                }
                _ => "",
            };
            JobError::new(
                e.code(ErrorCode::FfmpegFailed),
                "ffmpeg",
                format!("step '{name}': {e}{hint}"),
            )
        })?;
        self.child_s += captured.wall.as_secs_f64();
        let stderr = String::from_utf8_lossy(&captured.stderr).into_owned();
        if !captured.success {
            self.note("ffmpeg", format!("step '{name}' stderr:\n{stderr}"))
                .await;
            return Err(JobError::new(
                ErrorCode::FfmpegFailed,
                "ffmpeg",
                format!("step '{name}' failed: {}", ffmpeg::failure_summary(&stderr)),
            ));
        }
        if self.job.verbose {
            self.note("ffmpeg", format!("step '{name}' stderr:\n{stderr}"))
                .await;
        }
        self.note(
            "ffmpeg",
            format!(
                "step '{name}' finished in {:.2}s",
                captured.wall.as_secs_f64()
            ),
        )
        .await;
        self.advance(start + span);
        Ok(rendered.outputs)
    }

    /// The step's command line, writing intermediates under `work/` and deliverables under `out/`.
    fn render(
        &self,
        step: &ValidatedStep,
        deliver: bool,
        to_srgb: &HashMap<String, String>,
    ) -> render::Rendered {
        let dir = self
            .scratch
            .path()
            .join(if deliver { "out" } else { "work" });
        render::render_converting(
            step,
            |r| {
                self.media
                    .get(r)
                    .map(|m| m.path.clone())
                    .unwrap_or_default()
            },
            &dir,
            to_srgb,
        )
    }

    /// Creates an output's own directory (an image sequence's, a rendition's), owned like
    /// `work/` and `out/`: by the jail's uid when ffmpeg runs as it.
    fn output_dir(&self, dir: &Path) -> std::io::Result<()> {
        std::fs::create_dir_all(dir)?;
        if self.ctx.tools.jail.drop_user {
            std::os::unix::fs::chown(dir, Some(jail::JAIL_UID), Some(jail::JAIL_GID))?;
        }
        Ok(())
    }

    /// Measures what the session asked for, on the file the source names.
    async fn measure(
        &mut self,
        analysis: &ValidatedAnalysis,
    ) -> Result<model::AnalysisValue, JobError> {
        let request = analysis.request();
        let path = self
            .media
            .get(&request.source)
            .map(|m| m.path.clone())
            .expect("validated analyses name known media");
        let started = Instant::now();
        let value = analysis::run(&self.ctx.tools, &path, request, analysis.media_s()).await;
        self.child_s += started.elapsed().as_secs_f64();
        let value = value?;
        self.note(
            "host",
            format!(
                "analysis '{}': {}",
                request.id,
                serde_json::to_string(&value).unwrap_or_default()
            ),
        )
        .await;
        Ok(value)
    }

    /// Runs a step; intermediates are checked, probed and kept for later rounds, deliverables
    /// kept for publishing.
    async fn run_validated(
        &mut self,
        step: &ValidatedStep,
        stage: Stage,
    ) -> Result<Vec<Written>, JobError> {
        if stage == Stage::Deliver {
            self.deliver(step).await?;
            return Ok(Vec::new());
        }
        let outputs = self.execute(step, false, &HashMap::new()).await?;
        let mut written = Vec::new();
        for out in outputs {
            self.checked(&step.step().name, &out)?;
            let started = Instant::now();
            let info = probe::probe_written(&self.ctx.tools, &out.path).await;
            self.child_s += started.elapsed().as_secs_f64();
            let info = info.map_err(|e| {
                JobError::new(
                    e.code(ErrorCode::FfmpegFailed),
                    "ffmpeg",
                    format!(
                        "step '{}' wrote an unreadable '{}': {e}",
                        step.step().name,
                        out.name
                    ),
                )
            })?;
            written.push(Written {
                name: out.name.clone(),
                info: info.clone(),
            });
            self.media.produced.insert(
                out.name,
                Media {
                    path: out.path,
                    info,
                },
            );
        }
        Ok(written)
    }

    /// Runs a finish step. When it fails and holds optional outputs, it runs again without them:
    /// if the required outputs then succeed, the optional ones are recorded as failed with the
    /// first run's error (running the step again is the whole cost, and only on failure).
    async fn deliver(&mut self, step: &ValidatedStep) -> Result<(), JobError> {
        let outputs = &step.step().outputs;
        // The source image is read and parsed once for the whole step, and only when the step
        // writes an image whose metadata is set from it.
        let source = if outputs.iter().any(|o| image_spec(o).is_some()) {
            self.source_metadata(step)?
        } else {
            None
        };
        let source_alpha = step
            .step()
            .inputs
            .first()
            .and_then(|i| self.media.get(&i.source))
            .and_then(|m| {
                m.info.streams.iter().find_map(|s| match &s.detail {
                    model::StreamDetail::Video(v) => v.pixel_format.clone(),
                    _ => None,
                })
            })
            .is_some_and(|f| has_alpha(&f));
        let to_srgb = srgb_conversions(step.step(), source.as_ref(), source_alpha)?;
        let results: Vec<(render::RenderedOutput, Option<JobError>)> =
            match self.execute(step, true, &to_srgb).await {
                Ok(written) => written.into_iter().map(|r| (r, None)).collect(),
                Err(first)
                    if first.code == ErrorCode::FfmpegFailed
                        && outputs.iter().any(|o| o.optional) =>
                {
                    let failed = |r: &render::RenderedOutput| {
                        outputs.iter().any(|o| o.name == r.name && o.optional)
                    };
                    let mut results: Vec<_> = self
                        .render(step, true, &to_srgb)
                        .outputs
                        .into_iter()
                        .filter(|r| failed(r))
                        .map(|r| (r, Some(first.clone())))
                        .collect();
                    if let Some(required) = step.without_optional() {
                        self.note(
                            "host",
                            format!(
                                "step '{}' failed with optional outputs; running it again with \
                                 only its required ones: {}",
                                step.step().name,
                                first.message
                            ),
                        )
                        .await;
                        let written = self.execute(&required, true, &to_srgb).await?;
                        results.extend(written.into_iter().map(|r| (r, None)));
                    }
                    results
                }
                Err(e) => return Err(e),
            };
        for (rendered, failed) in results {
            let output = outputs
                .iter()
                .find(|o| o.name == rendered.name)
                .expect("rendered outputs are the step's")
                .clone();
            let failed = match failed {
                Some(e) => Some(e),
                None => self
                    .carry_metadata(step, source.as_ref(), &output, &rendered)
                    .await
                    .err(),
            };
            let state = if failed.is_some() {
                OutputPhase::Failed
            } else {
                OutputPhase::Storing
            };
            self.mark(std::slice::from_ref(&output.name), state, 1.0);
            self.delivered.push(publish::Delivered {
                output,
                rendered,
                failed,
            });
        }
        Ok(())
    }

    /// The metadata of the step's source image (its first input), when it is an image that
    /// carries any: a video, or an image over the size read whole, has none to give.
    fn source_metadata(
        &self,
        step: &ValidatedStep,
    ) -> Result<Option<image_meta::Metadata>, JobError> {
        let Some(source) = step
            .step()
            .inputs
            .first()
            .and_then(|i| self.media.get(&i.source))
        else {
            return Ok(None);
        };
        let source_len = std::fs::metadata(&source.path)
            .map(|m| m.len())
            .unwrap_or(0);
        if source_len > MAX_METADATA_SOURCE_BYTES {
            return Ok(None);
        }
        let bytes = std::fs::read(&source.path)
            .map_err(|e| JobError::new(ErrorCode::Internal, "metadata", e.to_string()))?;
        Ok(image_meta::read(&bytes).ok().filter(|m| !m.is_empty()))
    }

    /// Finishes an image output after encoding. A JPEG is made progressive ([`progressive_jpeg`]).
    /// Its metadata is then set: the step's source image's EXIF, XMP and ICC profile when it
    /// keeps them (ffmpeg 5.1 drops EXIF, and the ICC profile in WebP; a source that is not an
    /// image, a video for a poster, has nothing to copy, and what ffmpeg wrote stays), none at
    /// all when it strips them (ffmpeg carries a JPEG's ICC profile over, which would be wrong
    /// for pixels converted to sRGB). EXIF's orientation is reset to 1 only when the output's
    /// own picture went through a turn or a flip ([`turns_pixels`]): the input was decoded as
    /// stored, so an untouched picture keeps the orientation that tells a viewer how to show it.
    /// AVIF is written as ffmpeg made it.
    async fn carry_metadata(
        &mut self,
        step: &ValidatedStep,
        source: Option<&image_meta::Metadata>,
        output: &model::Output,
        rendered: &render::RenderedOutput,
    ) -> Result<(), JobError> {
        let Some(image) = metadata_image(output) else {
            return Ok(());
        };
        let meta = match image.metadata {
            model::ImageMetadata::Strip => Some(image_meta::Metadata::default()),
            model::ImageMetadata::Keep => source.cloned(),
        };
        let jpeg = image.format == model::ImageFormat::Jpeg;
        if meta.is_none() && !jpeg {
            return Ok(());
        }
        let rotated = turns_pixels(step.step(), output);
        let files: Vec<PathBuf> = match &rendered.dir {
            None => vec![rendered.path.clone()],
            Some(dir) => {
                let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
                    .map_err(|e| JobError::new(ErrorCode::Internal, "metadata", e.to_string()))?
                    .flatten()
                    .map(|e| e.path())
                    .collect();
                files.sort();
                files
            }
        };
        for file in files {
            // Checked to be a regular file inside the job; ffmpeg is gone, so it stays one.
            let checked = output::open_regular(self.scratch.path(), &file).map_err(|e| {
                JobError::new(
                    ErrorCode::FfmpegFailed,
                    "metadata",
                    format!("output '{}' left an unusable file: {e}", output.name),
                )
            })?;
            let mut encoded = std::fs::read(checked.fd_path())
                .map_err(|e| JobError::new(ErrorCode::Internal, "metadata", e.to_string()))?;
            drop(checked);
            let mut meta = meta.clone();
            if jpeg {
                // jpegtran keeps no marker: what ffmpeg wrote is put back when the source
                // gives nothing to keep.
                if meta.is_none() {
                    meta = Some(image_meta::read(&encoded).unwrap_or_default());
                }
                let (progressive, wall) = progressive_jpeg(
                    &self.ctx.tools,
                    self.scratch.path(),
                    &file,
                    self.ctx.disk_budget,
                )
                .await
                .map_err(|e| {
                    JobError::new(
                        e.code,
                        &e.step,
                        format!("output '{}': {}", output.name, e.message),
                    )
                })?;
                self.child_s += wall.as_secs_f64();
                encoded = progressive;
            }
            let finished = match &meta {
                Some(meta) => image_meta::write(&encoded, image.format, meta, rotated)
                    .map_err(JobError::from)?,
                None => encoded,
            };
            std::fs::write(&file, finished)
                .map_err(|e| JobError::new(ErrorCode::Internal, "metadata", e.to_string()))?;
        }
        Ok(())
    }

    /// Opens a file a step wrote as a regular file reached without symlinks. Every process of
    /// the step is gone by now (its PID namespace died with it), so nothing swaps it after this.
    fn checked(
        &self,
        step: &str,
        out: &render::RenderedOutput,
    ) -> Result<output::CheckedFile, JobError> {
        output::open_regular(self.scratch.path(), &out.path).map_err(|e| {
            JobError::new(
                ErrorCode::FfmpegFailed,
                "ffmpeg",
                format!("step '{step}' left an unusable '{}': {e}", out.name),
            )
        })
    }

    /// Stores what the finish wrote (see [`publish`]), then the manifest, last.
    async fn publish(
        &mut self,
        delivered: Vec<publish::Delivered>,
        finish: &ValidatedFinish,
    ) -> Result<Vec<OutputRecord>, JobError> {
        let publisher = publish::Publisher {
            storage: &self.ctx.storage,
            tools: &self.ctx.tools,
            job_dir: self.scratch.path(),
            prefix: format!("jobs/{}", self.job.id),
        };
        let started = Instant::now();
        let records = publisher
            .publish(delivered, &finish.documents, &finish.packages)
            .await;
        self.child_s += started.elapsed().as_secs_f64();
        let records = records?;
        for record in records.iter().filter(|r| r.state == OutputState::Failed) {
            let why = record.error.as_ref().map_or("", |e| e.message.as_str());
            self.note(
                "host",
                format!("optional output '{}' failed: {why}", record.name),
            )
            .await;
        }
        let manifest = json!({
            "job": self.job.id,
            "preset": self.job.preset,
            "outputs": records,
        });
        let manifest_path = self.scratch.path().join("manifest.json");
        std::fs::write(
            &manifest_path,
            serde_json::to_vec_pretty(&manifest).unwrap_or_default(),
        )
        .map_err(|e| JobError::new(ErrorCode::Internal, "upload", e.to_string()))?;
        let key =
            ObjectKey::parse(&format!("jobs/{}/manifest.json", self.job.id)).expect("a valid key");
        self.ctx
            .storage
            .upload(
                &manifest_path,
                &key,
                &ObjectMeta::for_output("manifest.json"),
            )
            .await
            .map_err(|e| JobError::new(ErrorCode::StorageFailed, "upload", e.to_string()))?;
        Ok(records)
    }
}

/// The SHA-256 of a file, read in 1 MiB pieces.
fn sha256_file(path: &Path) -> std::io::Result<String> {
    use sha2::{Digest, Sha256};
    use std::io::Read;
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            return Ok(hex::encode(hasher.finalize()));
        }
        hasher.update(&buf[..n]);
    }
}

/// A JPEG output rewritten as progressive, which ffmpeg 5.1's mjpeg encoder cannot write, with
/// the time jpegtran took. Lossless: jpegtran reorders the same DCT coefficients into scans
/// (and optimises the Huffman tables); it keeps no marker (`-copy none`), the metadata is
/// written afterwards. It runs as ffmpeg does: jailed, confined to the job's directory, under
/// the job's disk budget and a time limit by the file's size, stdin closed; it writes into
/// `work/` under a name no output can have, read back here and removed.
async fn progressive_jpeg(
    tools: &Tools,
    job_dir: &Path,
    file: &Path,
    disk_budget: u64,
) -> Result<(Vec<u8>, std::time::Duration), JobError> {
    let fail = |code: ErrorCode, why: String| JobError::new(code, "jpegtran", why);
    let progressive = job_dir.join("work").join(".progressive.jpg");
    let _ = std::fs::remove_file(&progressive);
    let mut args: Vec<std::ffi::OsString> = ["-progressive", "-optimize", "-copy", "none"]
        .iter()
        .map(Into::into)
        .collect();
    args.extend(["-outfile".into(), progressive.clone().into_os_string()]);
    args.push(file.as_os_str().to_owned());
    let size = std::fs::metadata(file).map_or(0, |m| m.len());
    let limit = std::time::Duration::from_secs(30 + size / (1 << 20));
    let ran = ffmpeg::run_jpegtran(tools, &args, job_dir, limit, disk_budget).await;
    let result = match ran {
        Err(e) => Err(fail(
            e.code(ErrorCode::FfmpegFailed),
            format!("making the JPEG progressive: {e}"),
        )),
        Ok(out) if !out.success => Err(fail(
            ErrorCode::FfmpegFailed,
            format!(
                "jpegtran could not make the JPEG progressive: {}",
                ffmpeg::failure_summary(&String::from_utf8_lossy(&out.stderr))
            ),
        )),
        Ok(out) => output::open_regular(job_dir, &progressive)
            .and_then(|checked| std::fs::read(checked.fd_path()))
            .map(|bytes| (bytes, out.wall))
            .map_err(|e| {
                fail(
                    ErrorCode::FfmpegFailed,
                    format!("jpegtran left no usable file: {e}"),
                )
            }),
    };
    let _ = std::fs::remove_file(&progressive);
    result
}

/// Whether an output's picture went through a filter that turns or mirrors it (transpose,
/// rotate, hflip, vflip), following its streams back through the graph: then the plan applied
/// the orientation EXIF describes. Another branch of the same graph does not count.
fn turns_pixels(step: &model::Step, output: &model::Output) -> bool {
    fn link(pad: &model::Pad) -> Option<&str> {
        match pad {
            model::Pad::Link(label) => Some(label.as_str()),
            model::Pad::Stream(_) => None,
        }
    }
    let producers: HashMap<&str, &model::FilterNode> = step
        .graph
        .iter()
        .flat_map(|n| n.outputs.iter().map(move |label| (label.as_str(), n)))
        .collect();
    let mut pending: Vec<&str> = output
        .streams
        .iter()
        .filter_map(|s| link(&s.source))
        .collect();
    let mut seen = std::collections::HashSet::new();
    while let Some(label) = pending.pop() {
        if !seen.insert(label) {
            continue;
        }
        let Some(node) = producers.get(label) else {
            continue;
        };
        if matches!(
            node.filter.as_str(),
            "transpose" | "rotate" | "hflip" | "vflip"
        ) {
            return true;
        }
        pending.extend(node.inputs.iter().filter_map(link));
    }
    false
}

/// The image spec of an image output (a still or an image sequence).
fn image_spec(output: &model::Output) -> Option<&model::ImageSpec> {
    match &output.kind {
        model::OutputKind::Still(image) => Some(image),
        model::OutputKind::ImageSequence(seq) => Some(&seq.image),
        _ => None,
    }
}

/// The image spec of an output whose metadata the host sets after encoding (kept from the
/// source or stripped); AVIF is written as ffmpeg made it.
fn metadata_image(output: &model::Output) -> Option<&model::ImageSpec> {
    image_spec(output).filter(|image| image.format != model::ImageFormat::Avif)
}

/// Whether an ffmpeg pixel format carries transparency (a palette may).
fn has_alpha(pixel_format: &str) -> bool {
    ["yuva", "gbrap", "ya"]
        .iter()
        .any(|p| pixel_format.starts_with(p))
        || ["rgba", "bgra", "argb", "abgr"]
            .iter()
            .any(|p| pixel_format.contains(p))
        || pixel_format == "pal8"
}

/// The sRGB conversion of each image output that leaves its source's ICC profile behind (it
/// strips the metadata, or it is AVIF, which carries none here) when that profile is not sRGB,
/// by output name. A profile ffmpeg 5.1 cannot convert is refused. The conversion keeps an
/// alpha plane for a PNG or WebP output of a transparent source, or of a graph that makes
/// transparency (a `format` with alpha, for transparent padding).
fn srgb_conversions(
    step: &model::Step,
    source: Option<&image_meta::Metadata>,
    source_alpha: bool,
) -> Result<HashMap<String, String>, JobError> {
    let graph_alpha = step.graph.iter().any(|n| {
        n.filter == "format"
            && n.args
                .iter()
                .any(|a| matches!(&a.value, model::Value::Text(t) if t.split('|').any(has_alpha)))
    });
    let stripping: Vec<&model::Output> = step
        .outputs
        .iter()
        .filter(|o| {
            image_spec(o).is_some_and(|image| {
                image.metadata == model::ImageMetadata::Strip
                    || image.format == model::ImageFormat::Avif
            })
        })
        .collect();
    let mut conversions = HashMap::new();
    if stripping.is_empty() {
        return Ok(conversions);
    }
    let Some(profile) = source.and_then(|m| m.icc.as_ref()) else {
        return Ok(conversions);
    };
    for output in stripping {
        let alpha = (source_alpha || graph_alpha)
            && image_spec(output).is_some_and(|image| {
                matches!(
                    image.format,
                    model::ImageFormat::Png | model::ImageFormat::Webp
                )
            });
        let filter = image_meta::srgb_filter(profile, alpha).map_err(|e| {
            let e = JobError::from(e);
            JobError::new(
                e.code,
                &e.step,
                format!("output '{}': {}", output.name, e.message),
            )
        })?;
        if let Some(filter) = filter {
            conversions.insert(output.name.clone(), filter);
        }
    }
    Ok(conversions)
}

impl Executor for Run<'_> {
    async fn run_step(
        &mut self,
        step: &ValidatedStep,
        stage: Stage,
    ) -> Result<Vec<Written>, JobError> {
        self.run_validated(step, stage).await
    }

    async fn analyze(
        &mut self,
        analysis: &ValidatedAnalysis,
    ) -> Result<model::AnalysisValue, JobError> {
        self.measure(analysis).await
    }

    async fn log(&mut self, line: LogLine) {
        match line {
            LogLine::Preset(l) => {
                Run::note(self, "preset", format!("[{}] {}", l.level, l.message)).await
            }
            LogLine::Host(message) => Run::note(self, "host", message).await,
        }
    }
}

#[cfg(test)]
mod image_output_tests {
    use super::*;

    /// The markers of a JPEG's segments before its first scan.
    fn markers(jpeg: &[u8]) -> Vec<u8> {
        let mut found = Vec::new();
        let mut at = 2;
        while at + 4 <= jpeg.len() && jpeg[at] == 0xff && jpeg[at + 1] != 0xda {
            found.push(jpeg[at + 1]);
            at += 2 + usize::from(u16::from_be_bytes([jpeg[at + 2], jpeg[at + 3]]));
        }
        found
    }

    /// A job directory as [`Scratch::create`] makes it, for jailed tools to work in.
    fn job_dir(tools: &Tools) -> tempfile::TempDir {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        for sub in ["work", "out"] {
            std::fs::create_dir(dir.path().join(sub)).unwrap();
            if tools.jail.drop_user {
                std::os::unix::fs::chown(
                    dir.path().join(sub),
                    Some(jail::JAIL_UID),
                    Some(jail::JAIL_GID),
                )
                .unwrap();
            }
        }
        dir
    }

    /// The picture ffmpeg decodes from a file, as raw RGB.
    fn pixels(file: &Path) -> Vec<u8> {
        let out = std::process::Command::new("ffmpeg")
            .args(["-v", "error", "-i"])
            .arg(file)
            .args(["-f", "rawvideo", "-pix_fmt", "rgb24", "-"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    }

    #[tokio::test]
    async fn a_jpeg_output_is_made_progressive_without_changing_a_pixel() {
        let (tools, missing) = Tools::detect().await;
        assert!(
            !missing.iter().any(|m| m.contains("jpegtran")),
            "jpegtran runs here: {missing:?}"
        );
        let job = job_dir(&tools);
        let file = job.path().join("out/o.jpg");
        let made = std::process::Command::new("ffmpeg")
            .args(["-v", "error", "-f", "lavfi", "-i", "testsrc2=size=320x240"])
            .args(["-frames:v", "1", "-q:v", "3", "-pix_fmt", "yuvj420p"])
            .arg(&file)
            .status()
            .unwrap();
        assert!(made.success());
        let baseline = std::fs::read(&file).unwrap();
        assert!(markers(&baseline).contains(&0xc0), "ffmpeg writes baseline");

        let (progressive, _) = progressive_jpeg(&tools, job.path(), &file, 1 << 30)
            .await
            .unwrap();
        let found = markers(&progressive);
        assert!(found.contains(&0xc2), "no SOF2: {found:x?}");
        assert!(!found.contains(&0xc0), "still baseline: {found:x?}");
        assert!(
            !job.path().join("work/.progressive.jpg").exists(),
            "jpegtran's file is removed"
        );
        let check = job.path().join("progressive.jpg");
        std::fs::write(&check, &progressive).unwrap();
        assert_eq!(pixels(&check), pixels(&file), "the same picture");

        // What a kept source's metadata then does to it: written in, still progressive.
        let meta = image_meta::Metadata {
            xmp: Some(b"<x:xmpmeta xmlns:x=\"adobe:ns:meta/\"/>".to_vec()),
            ..Default::default()
        };
        let with_meta =
            image_meta::write(&progressive, model::ImageFormat::Jpeg, &meta, false).unwrap();
        assert!(markers(&with_meta).contains(&0xc2));
        assert_eq!(image_meta::read(&with_meta).unwrap(), meta);
    }

    #[tokio::test]
    async fn a_jpeg_jpegtran_cannot_read_fails_its_output_with_a_reason() {
        let (tools, _) = Tools::detect().await;
        let job = job_dir(&tools);
        let file = job.path().join("out/o.jpg");
        std::fs::write(&file, b"\xff\xd8 not really a JPEG").unwrap();
        let err = progressive_jpeg(&tools, job.path(), &file, 1 << 30)
            .await
            .unwrap_err();
        assert_eq!(err.code, ErrorCode::FfmpegFailed);
        assert_eq!(err.step, "jpegtran");
        assert!(err.message.contains("jpegtran"), "{}", err.message);
    }

    fn link(label: &str) -> model::Pad {
        model::Pad::Link(label.into())
    }

    fn filter(name: &str, inputs: Vec<model::Pad>, outputs: &[&str]) -> model::FilterNode {
        model::FilterNode {
            filter: name.into(),
            args: vec![],
            inputs,
            outputs: outputs.iter().map(|o| (*o).into()).collect(),
        }
    }

    fn still(name: &str, source: model::Pad) -> model::Output {
        let image = model::ImageSpec {
            format: model::ImageFormat::Jpeg,
            quality: None,
            metadata: model::ImageMetadata::Keep,
        };
        model::Output::encoded(name, model::OutputKind::Still(image), source, "mjpeg")
    }

    /// Orientation is reset only for the picture that went through a turn: a branch of the same
    /// graph that did not, and a picture mapped straight from the input, keep theirs.
    #[test]
    fn only_an_output_whose_picture_turned_counts_as_rotated() {
        let input = model::Pad::Stream(model::StreamRef {
            input: 0,
            stream: 0,
        });
        let turned = still("turned", link("t"));
        let flipped = still("flipped", link("f"));
        let untouched = still("untouched", link("s"));
        let direct = still("direct", input.clone());
        let step = model::Step {
            name: "s".into(),
            inputs: vec![],
            graph: vec![
                filter("split", vec![input], &["a", "b", "c"]),
                filter("transpose", vec![link("a")], &["ta"]),
                filter("scale", vec![link("ta")], &["t"]),
                filter("hflip", vec![link("b")], &["f"]),
                filter("scale", vec![link("c")], &["s"]),
            ],
            outputs: vec![],
        };
        assert!(turns_pixels(&step, &turned));
        assert!(turns_pixels(&step, &flipped));
        assert!(!turns_pixels(&step, &untouched));
        assert!(!turns_pixels(&step, &direct));
    }

    /// An output that leaves a Display P3 source's profile behind gets its pixels converted to
    /// sRGB: one that strips it, and an AVIF (which carries no profile here) even when it asks
    /// to keep it. A kept JPEG keeps the profile and its pixels as they are.
    #[test]
    fn outputs_that_lose_the_icc_profile_are_converted_to_srgb() {
        let input = model::Pad::Stream(model::StreamRef {
            input: 0,
            stream: 0,
        });
        let image = |name: &str, format, metadata| {
            let mut out = still(name, input.clone());
            out.kind = model::OutputKind::Still(model::ImageSpec {
                format,
                quality: None,
                metadata,
            });
            out
        };
        let step = model::Step {
            name: "s".into(),
            inputs: vec![],
            graph: vec![],
            outputs: vec![
                image("kept", model::ImageFormat::Jpeg, model::ImageMetadata::Keep),
                image(
                    "stripped",
                    model::ImageFormat::Webp,
                    model::ImageMetadata::Strip,
                ),
                image("avif", model::ImageFormat::Avif, model::ImageMetadata::Keep),
            ],
        };
        let p3 = image_meta::Metadata {
            icc: Some(image_meta::tests::display_p3_profile()),
            ..Default::default()
        };
        let conversions = srgb_conversions(&step, Some(&p3), false).unwrap();
        let mut converted: Vec<&str> = conversions.keys().map(String::as_str).collect();
        converted.sort();
        assert_eq!(converted, ["avif", "stripped"]);
        assert!(
            conversions["avif"].contains("primariesin=smpte432"),
            "{conversions:?}"
        );
        assert!(srgb_conversions(&step, None, false).unwrap().is_empty());
    }
}
