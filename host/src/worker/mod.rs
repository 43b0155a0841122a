//! Workers: take jobs from the queue, run them within their time budget, and have the lifecycle
//! record how each attempt ended.
//!
//! A job is acknowledged only when its outcome is recorded, so a worker that dies at any point
//! leaves the job in the queue for another worker (see [`crate::queue`]). A panic inside a job
//! is caught and recorded as that job's failure; it never takes the worker down. Stopping is
//! never a failure: on shutdown a worker takes no new job, lets running ones finish within the
//! grace period and hands the rest back to the queue at once.
//!
//! Not here: the state changes themselves (`lifecycle`), one job's steps (`pipeline`).

pub mod pipeline;
pub mod publish;
pub mod scratch_lock;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::watch;
use tracing::Instrument;
use uuid::Uuid;

use crate::error::{ErrorCode, JobError};
use crate::job::{JobState, Progress};
use crate::lifecycle::{Ending, Held, Lifecycle, Start};
use crate::metrics::{ChildCpu, Metrics};
use crate::queue::{Delivery, Queue};
use crate::webhook::{Outbox, Secret};
use pipeline::Context;
use scratch_lock::ScratchLock;

pub struct Worker {
    pub ctx: Arc<Context>,
    pub queue: Queue,
    pub lifecycle: Lifecycle,
    pub metrics: Metrics,
    pub child_cpu: ChildCpu,
    pub outbox: Outbox,
    pub webhook_secrets: Vec<Secret>,
    /// Jobs running at once across every worker process (0: no limit beyond `concurrency`).
    pub max_running: usize,
    pub redis: redis::Client,
    pub concurrency: usize,
    pub name: String,
    /// The wall-clock budget of one attempt, whatever the media claims.
    pub job_timeout: Duration,
    /// How long running jobs may take to finish once the worker is asked to stop.
    pub shutdown_grace: Duration,
    /// Where attempts hold the locks of their scratch directories (see [`scratch_lock`]).
    pub scratch_locks: PathBuf,
}

impl Worker {
    /// Runs `concurrency` job slots until `shutdown` turns true; running jobs get
    /// `shutdown_grace` to finish and are then handed back.
    pub async fn run(self: Arc<Self>, shutdown: watch::Receiver<bool>) {
        let (locks, root) = (self.scratch_locks.clone(), self.ctx.scratch_root.clone());
        if let Ok(swept) =
            tokio::task::spawn_blocking(move || scratch_lock::sweep_crashed(&locks, &root)).await
            && swept > 0
        {
            tracing::info!(
                directories = swept,
                "removed scratch left by workers that stopped"
            );
        }
        let promoter = tokio::spawn(promote_retries(
            self.queue.clone(),
            self.ctx.jobs.connection(),
        ));
        let sweeper = {
            let root = self.ctx.scratch_root.clone();
            let keep = self.ctx.keep_failed;
            tokio::spawn(async move {
                loop {
                    let (root, keep) = (root.clone(), keep);
                    let _ =
                        tokio::task::spawn_blocking(move || pipeline::sweep_failed(&root, keep))
                            .await;
                    tokio::time::sleep(keep.clamp(Duration::from_secs(1), Duration::from_secs(60)))
                        .await;
                }
            })
        };
        let webhooks = tokio::spawn(crate::webhook::deliver_forever(
            self.outbox.clone(),
            self.webhook_secrets.clone(),
            self.metrics.clone(),
        ));
        let mut slots = Vec::new();
        for slot in 0..self.concurrency {
            let worker = self.clone();
            let shutdown = shutdown.clone();
            slots.push(tokio::spawn(
                async move { worker.slot(slot, shutdown).await },
            ));
        }
        for s in slots {
            let _ = s.await;
        }
        promoter.abort();
        webhooks.abort();
        sweeper.abort();
    }

    async fn connect(&self) -> redis::RedisResult<redis::aio::MultiplexedConnection> {
        // Blocking reads wait up to 2 s; the response timeout must be longer than that.
        let config = redis::AsyncConnectionConfig::new()
            .set_response_timeout(Some(Duration::from_secs(10)))
            .set_connection_timeout(Some(Duration::from_secs(5)));
        self.redis
            .get_multiplexed_async_connection_with_config(&config)
            .await
    }

    async fn slot(&self, slot: usize, mut shutdown: watch::Receiver<bool>) {
        let consumer = format!("{}-{slot}", self.name);
        let mut conn = None;
        while !*shutdown.borrow() {
            let c = match &mut conn {
                Some(c) => c,
                None => match self.connect().await {
                    Ok(c) => conn.insert(c),
                    Err(e) => {
                        tracing::warn!(error = %e, "worker cannot reach Redis; retrying");
                        wait_or_shutdown(&mut shutdown, Duration::from_secs(1)).await;
                        continue;
                    }
                },
            };
            if let Err(e) = self.queue.ensure_group(c).await {
                tracing::warn!(error = %e, "cannot create the queue's consumer group; retrying");
                conn = None;
                wait_or_shutdown(&mut shutdown, Duration::from_secs(1)).await;
                continue;
            }
            if self.max_running > 0 {
                let now = crate::job::unix_ms(SystemTime::now());
                match self
                    .queue
                    .acquire_run_permit(c, &consumer, self.max_running, now)
                    .await
                {
                    Ok(true) => {}
                    Ok(false) => {
                        wait_or_shutdown(&mut shutdown, Duration::from_millis(250)).await;
                        continue;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot take a run permit; reconnecting");
                        conn = None;
                        wait_or_shutdown(&mut shutdown, Duration::from_secs(1)).await;
                        continue;
                    }
                }
            }
            let next = match self.queue.next(c, &consumer, Duration::from_secs(2)).await {
                // Read while the stop signal arrived: not started, so not this worker's to run.
                Ok(Some(delivery)) if *shutdown.borrow() => {
                    self.queue.give_back(c, &delivery).await
                }
                Ok(Some(delivery)) => {
                    self.handle(c, &consumer, delivery, shutdown.clone()).await;
                    Ok(())
                }
                Ok(None) => Ok(()),
                Err(e) => Err(e),
            };
            if self.max_running > 0
                && let Err(e) = self.queue.release_run_permit(c, &consumer).await
            {
                tracing::warn!(error = %e, "could not return a run permit; it lapses by itself");
            }
            match next {
                Ok(()) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "reading the queue failed; reconnecting");
                    conn = None;
                    wait_or_shutdown(&mut shutdown, Duration::from_secs(1)).await;
                }
            }
        }
    }

    async fn handle(
        &self,
        conn: &redis::aio::MultiplexedConnection,
        consumer: &str,
        delivery: Delivery,
        shutdown: watch::Receiver<bool>,
    ) {
        let id = delivery.job_id;
        // Every line logged while the job is handled carries its id (`--log-format json`: the
        // `job_id` field of each line), tasks it spawns included.
        let span = tracing::info_span!(
            "job",
            job_id = %id,
            preset = tracing::field::Empty,
            version = tracing::field::Empty
        );
        async {
            let held = match self.lifecycle.start(&delivery, consumer).await {
                Ok(Start::Running(held)) => *held,
                Ok(Start::Dead) => {
                    tracing::warn!("job is dead: its workers kept stopping");
                    return;
                }
                Ok(Start::Skipped(why)) => {
                    tracing::info!(%why, "not started");
                    return;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot start the job; it stays queued");
                    return;
                }
            };
            let span = tracing::Span::current();
            span.record("preset", held.job.preset.name.as_str());
            span.record("version", held.job.preset.version.to_string());
            if let Err(e) = self.execute(held, conn.clone(), shutdown).await {
                tracing::error!(error = %e, "could not record the job's outcome; it stays queued for another attempt");
            }
        }
        .instrument(span)
        .await
    }

    /// Runs a held attempt and records how it ended. An `Err` means that could not be stored.
    async fn execute(
        &self,
        held: Held,
        mut conn: redis::aio::MultiplexedConnection,
        mut shutdown: watch::Receiver<bool>,
    ) -> redis::RedisResult<()> {
        let stop_flag = shutdown.clone();
        let jobs = self.ctx.jobs.clone();
        let job = &held.job;
        let deadline = tokio::time::Instant::now() + self.job_timeout;
        jobs.log(
            &job.id,
            "host",
            format!(
                "attempt {} of {} started on {}",
                job.attempts, job.max_attempts, held.consumer
            ),
        )
        .await;
        tracing::info!(attempt = job.attempts, "job started");

        let (progress_tx, progress_rx) = watch::channel(Progress::default());
        let progress = tokio::spawn(
            persist_progress(
                self.lifecycle.clone(),
                job.id,
                held.consumer.clone(),
                progress_rx,
            )
            .instrument(tracing::Span::current()),
        );
        let renew = {
            let queue = self.queue.clone();
            let consumer = held.consumer.clone();
            let delivery = held.delivery.clone();
            let every = self.queue.reclaim_after() / 3;
            let limited = self.max_running;
            tokio::spawn(
                async move {
                    loop {
                        tokio::time::sleep(every).await;
                        if let Err(e) = queue.renew(&mut conn, &consumer, &delivery).await {
                            tracing::warn!(error = %e, "could not renew the job's claim");
                        }
                        if limited > 0 {
                            let now = crate::job::unix_ms(SystemTime::now());
                            if let Err(e) = queue
                                .acquire_run_permit(&mut conn, &consumer, limited, now)
                                .await
                            {
                                tracing::warn!(error = %e, "could not renew the run permit");
                            }
                        }
                    }
                }
                .instrument(tracing::Span::current()),
            )
        };

        // Looked up with the claim renewing: a version this process is still loading (at start,
        // or just published) is waited for, boundedly; past that the attempt fails
        // PRESET_LOADING, which is retried.
        let preset = match self
            .ctx
            .catalog
            .lookup(&job.preset.name, &job.preset.version)
            .await
        {
            Err(loading) => Some(Err(JobError::new(loading.code, "plan", loading.detail))),
            Ok(found) => found
                .filter(|p| p.sha256 == job.preset.sha256)
                // The record came back from Redis: check it again before it steers any download.
                .map(|p| crate::recheck::record(job, &p, &self.ctx.storage).map(|_| p)),
        };

        // The lease on the work's cache key, when this attempt ran it for the cache.
        let mut lead = None;
        let ending = match preset {
            None => Ending::Failed(JobError::new(
                ErrorCode::PresetNotFound,
                "plan",
                format!(
                    "the pinned preset {}@{} (sha256 {}) is not in the catalog this worker reads; \
                     check that the API and workers share one Redis prefix and one storage",
                    job.preset.name, job.preset.version, job.preset.sha256
                ),
            )),
            Some(Err(invalid)) => Ending::Failed(invalid),
            Some(Ok(preset)) => {
                let ctx = self.ctx.clone();
                let run_job = job.clone();
                let lock =
                    ScratchLock::take(&self.scratch_locks, &format!("{}-{}", job.id, job.attempts));
                let mut handle = tokio::spawn(
                    async move {
                        let _lock = lock;
                        pipeline::run(&ctx, &run_job, &preset, &progress_tx).await
                    }
                    .instrument(tracing::Span::current()),
                );
                let grace = self.shutdown_grace;
                let stopping = async move {
                    let _ = shutdown.wait_for(|stop| *stop).await;
                    tokio::time::sleep(grace).await;
                };
                // `Ok`: the task is stopped, which kills ffmpeg (kill_on_drop) and removes scratch.
                let stopped = tokio::select! {
                    joined = &mut handle => Err(match joined {
                        Ok(Ok(done)) => {
                            lead = done.lead;
                            Ending::Completed {
                                outputs: done.outputs,
                                report: done.report,
                                child_s: done.child_s,
                                input_sha256: done.input_sha256,
                                cached: done.cached,
                            }
                        }
                        Ok(Err(error)) => Ending::Failed(error),
                        Err(e) => Ending::Failed(JobError::new(
                            ErrorCode::Internal,
                            "worker",
                            format!("the job's task failed: {e}"),
                        )),
                    }),
                    () = wait_for_cancel(&self.lifecycle, job.id) => Ok(Ending::Cancelled),
                    () = tokio::time::sleep_until(deadline) => Ok(Ending::Failed(JobError::new(
                        ErrorCode::JobTimeout,
                        "worker",
                        format!(
                            "the job ran longer than its budget of {} s (--job-timeout-s); it was \
                             stopped. Split the input or ask the operator for a larger budget",
                            self.job_timeout.as_secs()
                        ),
                    ))),
                    () = stopping => Ok(Ending::HandedBack),
                };
                match stopped {
                    Ok(ending) => {
                        handle.abort();
                        let _ = handle.await;
                        ending
                    }
                    Err(finished) => finished,
                }
            }
        };
        progress.abort();
        renew.abort();

        // A stop signal may reach the job's children too: an attempt that fails while the
        // worker stops is handed back, never recorded as the job's failure.
        let ending = match ending {
            Ending::Failed(error) if *stop_flag.borrow() => {
                jobs.log(
                    &job.id,
                    "host",
                    format!(
                        "attempt {} ended while the worker stopped ({error})",
                        job.attempts
                    ),
                )
                .await;
                Ending::HandedBack
            }
            other => other,
        };
        let note = match &ending {
            Ending::Completed {
                cached: Some(cached),
                ..
            } => format!(
                "completed from the result cache (the outputs of job {})",
                cached.job
            ),
            Ending::Completed { .. } => "completed".to_owned(),
            Ending::Cancelled => "cancelled: ffmpeg stopped, scratch removed".to_owned(),
            Ending::HandedBack => format!(
                "handed back: {} is stopping; the job is queued again at once and this attempt \
                 does not count",
                held.consumer
            ),
            Ending::Failed(error) => format!("attempt {} failed ({error})", job.attempts),
        };
        jobs.log(&job.id, "host", note).await;
        let recorded = self.lifecycle.finish(&held, ending).await;
        self.metrics
            .add("mediahost_ffmpeg_cpu_seconds_total", self.child_cpu.take())
            .await;
        if let (Ok(Ok(job)), Some(lead), Some(cache)) = (&recorded, &lead, &self.ctx.result_cache)
            && job.state == JobState::Completed
        {
            cache.store(&lead.key, job).await;
        }
        // Released once the entry is stored, so jobs waiting for this one find it.
        drop(lead);
        match recorded? {
            Ok(job) => {
                tracing::info!(state = job.state.as_str(), code = ?job.error.as_ref().map(|e| e.code), run_s = job.timings.run_s, "attempt recorded");
                if job.state == JobState::Pending
                    && let Some(at) = &job.next_attempt_at
                {
                    jobs.log(&job.id, "host", format!("retry due at {at}"))
                        .await;
                }
            }
            Err(why) => {
                tracing::warn!(%why, "the attempt's outcome was refused: the job is no longer this worker's");
            }
        }
        Ok(())
    }
}

/// Moves retries whose backoff has passed back to their queues, every 200 ms.
async fn promote_retries(queue: Queue, mut conn: redis::aio::ConnectionManager) {
    loop {
        let now = crate::job::unix_ms(SystemTime::now());
        match queue.promote_due(&mut conn, now).await {
            Ok(0) => {}
            Ok(n) => tracing::debug!(jobs = n, "retries due; queued again"),
            Err(e) => tracing::warn!(error = %e, "cannot move due retries to the queue"),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Stores the attempt's progress as it changes, at most four times a second.
async fn persist_progress(
    lifecycle: Lifecycle,
    id: Uuid,
    consumer: String,
    mut rx: watch::Receiver<Progress>,
) {
    while rx.changed().await.is_ok() {
        let progress = rx.borrow_and_update().clone();
        if let Err(e) = lifecycle.progress(&id, &consumer, &progress).await {
            tracing::debug!(error = %e, "could not store progress");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Returns once a cancel of the job has been asked for (checked every 250 ms).
async fn wait_for_cancel(lifecycle: &Lifecycle, id: Uuid) {
    loop {
        tokio::time::sleep(Duration::from_millis(250)).await;
        if lifecycle.cancel_requested(&id).await.unwrap_or(false) {
            return;
        }
    }
}

async fn wait_or_shutdown(shutdown: &mut watch::Receiver<bool>, d: Duration) {
    let _ = tokio::time::timeout(d, shutdown.changed()).await;
}
