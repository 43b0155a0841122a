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
use crate::job::{Job, JobStore, OutputPhase, OutputProgress, OutputRecord, OutputState, Progress};
use crate::media::{analysis, image_meta, probe};
use crate::model;
use crate::plan::session::{self, Executor, LogLine, Sandboxed, Session, Stage, Written};
use crate::plan::validate::{ValidatedAnalysis, ValidatedFinish, ValidatedStep};
use crate::preset::catalog::Catalog;
use crate::preset::params;
use crate::preset::registry::Preset;
use crate::preset::runtime::{Lane, Runtime};
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
}

/// The result of a successful job.
pub struct Finished {
    pub outputs: Vec<OutputRecord>,
    pub report: Map<String, Value>,
    /// Seconds spent in ffprobe/ffmpeg child processes.
    pub child_s: f64,
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
    let scratch = Scratch::create(&ctx.scratch_root, job, ctx.tools.jail.drop_user)?;
    let mut run = Run {
        ctx,
        job,
        scratch: &scratch,
        media: MediaSet::default(),
        delivered: Vec::new(),
        child_s: 0.0,
        progress,
    };
    let result = match run.download_and_probe().await {
        Ok(()) => run.plan_and_execute(preset).await,
        Err(e) => Err(e),
    };
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
        let source = if outputs.iter().any(|o| metadata_image(o).is_some()) {
            self.source_metadata(step)?
        } else {
            None
        };
        let to_srgb = srgb_conversions(step, source.as_ref())?;
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

    /// Sets an image output's metadata after encoding: the step's source image's EXIF, XMP and
    /// ICC profile when it keeps them (ffmpeg 5.1 drops EXIF, and the ICC profile in WebP; a
    /// source that is not an image, a video for a poster, has nothing to copy), none at all when
    /// it strips them (ffmpeg carries a JPEG's ICC profile over, which would be wrong for
    /// pixels converted to sRGB). AVIF is written as ffmpeg made it.
    async fn carry_metadata(
        &self,
        step: &ValidatedStep,
        source: Option<&image_meta::Metadata>,
        output: &model::Output,
        rendered: &render::RenderedOutput,
    ) -> Result<(), JobError> {
        let Some(image) = metadata_image(output) else {
            return Ok(());
        };
        let meta = match image.metadata {
            model::ImageMetadata::Strip => image_meta::Metadata::default(),
            model::ImageMetadata::Keep => match source {
                Some(meta) => meta.clone(),
                None => return Ok(()),
            },
        };
        // A plan that turns the pixels has applied the orientation EXIF describes.
        let rotated = step.step().graph.iter().any(|n| {
            matches!(
                n.filter.as_str(),
                "transpose" | "rotate" | "hflip" | "vflip"
            )
        });
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
            let encoded = std::fs::read(checked.fd_path())
                .map_err(|e| JobError::new(ErrorCode::Internal, "metadata", e.to_string()))?;
            let with_meta = image_meta::write(&encoded, image.format, &meta, rotated)
                .map_err(JobError::from)?;
            std::fs::write(&file, with_meta)
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

/// The image spec of an output whose metadata the host sets after encoding (kept from the
/// source or stripped); AVIF is written as ffmpeg made it.
fn metadata_image(output: &model::Output) -> Option<&model::ImageSpec> {
    let image = match &output.kind {
        model::OutputKind::Still(image) => image,
        model::OutputKind::ImageSequence(seq) => &seq.image,
        _ => return None,
    };
    (image.format != model::ImageFormat::Avif).then_some(image)
}

/// The sRGB conversion of each image output that strips its metadata from a source whose
/// ICC profile is not sRGB, by output name. A profile ffmpeg 5.1 cannot convert is refused.
fn srgb_conversions(
    step: &ValidatedStep,
    source: Option<&image_meta::Metadata>,
) -> Result<HashMap<String, String>, JobError> {
    let stripping: Vec<&model::Output> = step
        .step()
        .outputs
        .iter()
        .filter(|o| match &o.kind {
            model::OutputKind::Still(image) => image.metadata == model::ImageMetadata::Strip,
            model::OutputKind::ImageSequence(seq) => {
                seq.image.metadata == model::ImageMetadata::Strip
            }
            _ => false,
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
        let filter = image_meta::srgb_filter(profile).map_err(|e| {
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
