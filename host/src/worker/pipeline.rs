//! One job, start to finish: download, probe, plan in rounds (running steps and analyses the
//! preset asks for), run the final steps, upload outputs, write the manifest last.
//!
//! Every failure leaves this module as a [`JobError`] with a code, the step and a message.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use serde_json::{Map, Value, json};
use tokio::sync::watch;

use crate::error::{ErrorCode, JobError};
use crate::ffmpeg::{self, Tools, jail, output, render};
use crate::job::{Job, JobStore, OutputKind, OutputRecord, OutputState, Progress, StreamSummary};
use crate::media::{analysis, probe};
use crate::plan::validate::{self, MediaLookup, ValidatedStep};
use crate::preset::catalog::Catalog;
use crate::preset::registry::Preset;
use crate::preset::runtime::{Lane, PresetFault, Runtime};
use crate::preset::{params, wit};
use crate::storage::{ObjectKey, ObjectMeta, Storage, StorageError};

/// The most planning rounds a preset gets before the job fails.
pub const MAX_ROUNDS: u32 = 8;
/// The most analyses a job may request in all.
const MAX_ANALYSES: usize = 64;

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
    info: wit::MediaInfo,
}

#[derive(Default)]
struct MediaSet {
    inputs: BTreeMap<String, Media>,
    produced: BTreeMap<String, Media>,
}

impl MediaSet {
    fn get(&self, r: &wit::MediaRef) -> Option<&Media> {
        match r {
            wit::MediaRef::Input(n) => self.inputs.get(n),
            wit::MediaRef::Produced(n) => self.produced.get(n),
        }
    }

    fn named(
        map: &BTreeMap<String, Media>,
        wrap: fn(String) -> wit::MediaRef,
    ) -> Vec<wit::NamedMedia> {
        map.iter()
            .map(|(name, m)| wit::NamedMedia {
                source: wrap(name.clone()),
                info: m.info.clone(),
            })
            .collect()
    }
}

impl MediaLookup for MediaSet {
    fn info(&self, source: &wit::MediaRef) -> Option<&wit::MediaInfo> {
        self.get(source).map(|m| &m.info)
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
    child_s: f64,
    progress: &'a watch::Sender<Progress>,
}

impl Run<'_> {
    async fn log(&self, source: &str, message: impl Into<String>) {
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
            self.log("host", format!("downloaded input '{name}' from {uri}"))
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
        self.log(
            "host",
            format!(
                "planning with {}@{} (sha256 {}, interface mediahost:preset@{})",
                preset.name, preset.version, preset.sha256, preset.interface
            ),
        )
        .await;
        let params = params::to_wit(&preset.descriptor.params, &self.job.params);
        let inputs = MediaSet::named(&self.media.inputs, wit::MediaRef::Input);
        let mut analyses: Vec<wit::AnalysisResult> = Vec::new();
        let mut taken: HashSet<String> = HashSet::new();

        for round in 1..=MAX_ROUNDS {
            let request = wit::PlanRequest {
                round,
                inputs: inputs.clone(),
                params: params.clone(),
                produced: MediaSet::named(&self.media.produced, wit::MediaRef::Produced),
                analyses: analyses.clone(),
            };
            let decision = self.call_plan(preset, request, round).await?;
            match decision {
                wit::Decision::Next(work) => {
                    let steps = self.validate(work.steps, &taken)?;
                    for step in &steps {
                        let outputs = self.execute(step, false).await?;
                        for out in outputs {
                            taken.insert(out.name.clone());
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
                            self.media.produced.insert(
                                out.name,
                                Media {
                                    path: out.path,
                                    info,
                                },
                            );
                        }
                    }
                    if analyses.len() + work.analyses.len() > MAX_ANALYSES {
                        return Err(JobError::new(
                            ErrorCode::PlanRejected,
                            "validate",
                            format!("more than {MAX_ANALYSES} analyses requested"),
                        ));
                    }
                    for request in work.analyses {
                        analyses.push(self.analyze(request).await?);
                    }
                }
                wit::Decision::Finish(finish) => {
                    let steps = self.validate(finish.steps, &taken)?;
                    let mut files = Vec::new();
                    for step in &steps {
                        files.extend(self.execute(step, true).await?);
                    }
                    let outputs = self.publish(files).await?;
                    return Ok(Finished {
                        outputs,
                        report: report_json(&finish.report),
                        child_s: self.child_s,
                    });
                }
            }
        }
        Err(JobError::new(
            ErrorCode::PresetFailed,
            "plan",
            format!("the preset did not finish planning within {MAX_ROUNDS} rounds"),
        ))
    }

    async fn call_plan(
        &self,
        preset: &Arc<Preset>,
        request: wit::PlanRequest,
        round: u32,
    ) -> Result<wit::Decision, JobError> {
        let runtime = self.ctx.runtime.clone();
        let preset = preset.clone();
        let (answer, logs) = tokio::task::spawn_blocking(move || {
            runtime.plan(Lane::Job, &preset.compiled, &request)
        })
        .await
        .map_err(|e| JobError::new(ErrorCode::Internal, "plan", e.to_string()))?;
        for line in logs {
            self.log("preset", format!("[{}] {}", line.level, line.message))
                .await;
        }
        let decision = decision(answer, round)?;
        let plan = serde_json::to_string(&decision).unwrap_or_default();
        self.log(
            "host",
            format!("round {round} plan: {}", clip(&plan, 16 << 10)),
        )
        .await;
        Ok(decision)
    }

    fn validate(
        &self,
        steps: Vec<wit::Step>,
        taken: &HashSet<String>,
    ) -> Result<Vec<ValidatedStep>, JobError> {
        validate::validate_steps(steps, &self.media, taken)
            .map_err(|r| JobError::new(ErrorCode::PlanRejected, "validate", r.to_string()))
    }

    /// Duration of the media a step reads, for its time limit and progress.
    fn step_media_s(&self, step: &wit::Step) -> f64 {
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
    ) -> Result<Vec<render::RenderedOutput>, JobError> {
        let dir = self
            .scratch
            .path()
            .join(if deliver { "out" } else { "work" });
        let rendered = render::render(
            step,
            |r| {
                self.media
                    .get(r)
                    .map(|m| m.path.clone())
                    .unwrap_or_default()
            },
            &dir,
        );
        let name = step.step().name.clone();
        let shown: Vec<String> = rendered
            .argv
            .iter()
            .map(|a| shell_quote(&a.to_string_lossy()))
            .collect();
        self.log(
            "ffmpeg",
            format!("step '{name}': ffmpeg {}", shown.join(" ")),
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
        let result = ffmpeg::run_with_progress(
            &self.ctx.tools,
            &rendered.argv,
            self.scratch.path(),
            ffmpeg::time_limit(media_s),
            self.ctx.disk_budget,
            |t| {
                if media_s > 0.0 {
                    let to = start + span * (t / media_s).clamp(0.0, 1.0);
                    progress.send_if_modified(|p| {
                        let changed = to > p.fraction + 0.01;
                        if changed {
                            p.fraction = to;
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
            self.log("ffmpeg", format!("step '{name}' stderr:\n{stderr}"))
                .await;
            let last = stderr
                .lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("no error output");
            return Err(JobError::new(
                ErrorCode::FfmpegFailed,
                "ffmpeg",
                format!("step '{name}' failed: {}", clip(last, 512)),
            ));
        }
        if self.job.verbose {
            self.log("ffmpeg", format!("step '{name}' stderr:\n{stderr}"))
                .await;
        }
        self.log(
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

    async fn analyze(
        &mut self,
        request: wit::AnalysisRequest,
    ) -> Result<wit::AnalysisResult, JobError> {
        let reject = |why: String| {
            JobError::new(
                ErrorCode::PlanRejected,
                "validate",
                format!("analysis '{}': {why}", clip(&request.id, 64)),
            )
        };
        if request.id.is_empty() || request.id.len() > 64 {
            return Err(reject("ids are 1-64 bytes".into()));
        }
        let media = self
            .media
            .get(&request.source)
            .ok_or_else(|| reject("its source does not exist".into()))?;
        let is_audio = media
            .info
            .streams
            .iter()
            .any(|s| s.index == request.stream && s.kind == wit::StreamKind::Audio);
        if !is_audio {
            return Err(reject(format!(
                "stream {} is not an audio stream",
                request.stream
            )));
        }
        let duration = media.info.container.duration_s.unwrap_or(0.0);
        let path = media.path.clone();
        let started = Instant::now();
        let value = match request.kind {
            wit::AnalysisKind::Loudness => {
                analysis::loudness(&self.ctx.tools, &path, request.stream, duration).await
            }
        };
        self.child_s += started.elapsed().as_secs_f64();
        let measured = value?;
        let loudness = wit::Loudness {
            integrated_lufs: measured.integrated_lufs,
            true_peak_dbtp: measured.true_peak_dbtp,
            lra_lu: measured.lra_lu,
            threshold_lufs: measured.threshold_lufs,
        };
        self.log(
            "host",
            format!(
                "analysis '{}': I={:.2} LUFS, TP={:.2} dBTP, LRA={:.2} LU",
                request.id, loudness.integrated_lufs, loudness.true_peak_dbtp, loudness.lra_lu
            ),
        )
        .await;
        Ok(wit::AnalysisResult {
            id: request.id,
            value: wit::AnalysisValue::Loudness(loudness),
        })
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

    /// Uploads delivered files under deterministic keys, then the manifest, last.
    async fn publish(
        &mut self,
        files: Vec<render::RenderedOutput>,
    ) -> Result<Vec<OutputRecord>, JobError> {
        let mut records = Vec::new();
        for file in files {
            let checked = self.checked("deliver", &file)?;
            let started = Instant::now();
            let info = probe::probe_written(&self.ctx.tools, &file.path).await;
            self.child_s += started.elapsed().as_secs_f64();
            let info = info.map_err(|e| {
                JobError::new(
                    e.code(ErrorCode::FfmpegFailed),
                    "ffmpeg",
                    format!("output '{}' is unreadable: {e}", file.name),
                )
            })?;
            let ext = file
                .path
                .extension()
                .and_then(|e| e.to_str())
                .unwrap_or("bin");
            let key = ObjectKey::parse(&format!("jobs/{}/{}.{ext}", self.job.id, file.name))
                .expect("output names are validated");
            let size = checked.len;
            self.ctx
                .storage
                .upload(
                    &checked.fd_path(),
                    &key,
                    &ObjectMeta::for_output(key.as_str()),
                )
                .await
                .map_err(|e| JobError::new(ErrorCode::StorageFailed, "upload", e.to_string()))?;
            records.push(output_record(&self.ctx.storage, &file, &key, size, &info));
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

fn output_record(
    storage: &Storage,
    file: &render::RenderedOutput,
    key: &ObjectKey,
    size: u64,
    info: &wit::MediaInfo,
) -> OutputRecord {
    let streams: Vec<StreamSummary> = info
        .streams
        .iter()
        .map(|s| {
            let (sample_rate, channels, channel_layout, width, height) = match &s.detail {
                wit::StreamDetail::Audio(a) => (
                    Some(a.sample_rate),
                    Some(a.channels),
                    a.channel_layout.clone(),
                    None,
                    None,
                ),
                wit::StreamDetail::Video(v) => (None, None, None, Some(v.width), Some(v.height)),
                wit::StreamDetail::Other => (None, None, None, None, None),
            };
            StreamSummary {
                index: s.index,
                kind: kind_name(s.kind).to_owned(),
                codec: s.codec.clone(),
                sample_rate,
                channels,
                channel_layout,
                width,
                height,
            }
        })
        .collect();
    OutputRecord {
        name: file.name.clone(),
        kind: OutputKind::File,
        state: OutputState::Completed,
        optional: false,
        error: None,
        uri: storage.uri(key),
        key: key.to_string(),
        container: file.container.clone(),
        size_bytes: size,
        duration_s: info.container.duration_s,
        codecs: streams.iter().map(|s| s.codec.clone()).collect(),
        streams,
        objects: Vec::new(),
        variants: Vec::new(),
    }
}

fn kind_name(kind: wit::StreamKind) -> &'static str {
    match kind {
        wit::StreamKind::Audio => "audio",
        wit::StreamKind::Video => "video",
        wit::StreamKind::Subtitle => "subtitle",
        wit::StreamKind::Data => "data",
        wit::StreamKind::Attachment => "attachment",
        wit::StreamKind::Unknown => "unknown",
    }
}

/// What a preset's answer to a plan call means for the job: its decision, or why it failed.
pub(super) fn decision(
    answer: Result<Result<wit::Decision, wit::Refusal>, PresetFault>,
    round: u32,
) -> Result<wit::Decision, JobError> {
    match answer {
        Err(fault) => Err(JobError::new(
            fault.code(),
            "plan",
            format!("round {round}: {fault}"),
        )),
        Ok(Err(refusal)) => Err(JobError::new(
            ErrorCode::PresetRefused,
            "plan",
            format!(
                "{}: {}",
                clip(&refusal.code, 64),
                clip(&refusal.message, 1024)
            ),
        )),
        Ok(Ok(decision)) => Ok(decision),
    }
}

pub(super) fn report_json(report: &[wit::OptionValue]) -> Map<String, Value> {
    report
        .iter()
        .take(64)
        .map(|o| {
            let v = match &o.value {
                wit::Value::Integer(i) => json!(i),
                wit::Value::Number(n) => json!(n),
                wit::Value::Boolean(b) => json!(b),
                wit::Value::Text(t) => json!(clip(t, 1024)),
            };
            (clip(&o.name, 64), v)
        })
        .collect()
}

fn clip(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    let mut cut = max;
    while !s.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}…", &s[..cut])
}

pub(super) fn shell_quote(s: &str) -> String {
    if !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./:=,+@%".contains(&b))
    {
        s.to_owned()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}
