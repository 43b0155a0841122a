//! Workers: take jobs from the queue, run them, record the outcome, acknowledge.
//!
//! A job is acknowledged only after its terminal state is stored, so a worker that dies at any
//! point leaves the job in the queue for another worker (see [`crate::queue`]). A panic inside a
//! job is caught and recorded as that job's failure; it never takes the worker down.

pub mod dry_run;
pub mod pipeline;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::watch;
use tracing::Instrument;

use crate::error::{ErrorCode, JobError};
use crate::job::{Job, JobState, now_rfc3339};
use crate::metrics::{ChildCpu, Event, Metrics};
use crate::queue::{Delivery, Queue};
use crate::webhook::{Outbox, Secret};
use pipeline::Context;

pub struct Worker {
    pub ctx: Arc<Context>,
    pub queue: Queue,
    pub retry: RetryPolicy,
    pub metrics: Metrics,
    pub child_cpu: ChildCpu,
    pub outbox: Outbox,
    pub webhook_secrets: Vec<Secret>,
    /// Jobs running at once across every worker process (0: no limit beyond `concurrency`).
    pub max_running: usize,
    pub redis: redis::Client,
    pub concurrency: usize,
    pub name: String,
}

impl Worker {
    /// Runs `concurrency` job slots until `shutdown` turns true; a running job is finished first.
    pub async fn run(self: Arc<Self>, shutdown: watch::Receiver<bool>) {
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
                Ok(Some(delivery)) => {
                    self.handle(c, &consumer, delivery).await;
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
        conn: &mut redis::aio::MultiplexedConnection,
        consumer: &str,
        delivery: Delivery,
    ) {
        let jobs = &self.ctx.jobs;
        let id = delivery.job_id;
        let (mut job, raw) = match jobs.get_raw(&id).await {
            Ok(Some(found)) => found,
            Ok(None) => {
                tracing::warn!(job = %id, "queue entry without a job record; dropping the entry");
                let _ = self.queue.ack(conn, &delivery).await;
                return;
            }
            Err(e) => {
                tracing::warn!(job = %id, error = %e, "cannot read the job; it stays queued");
                return;
            }
        };
        if job.state.is_terminal() {
            let _ = self.queue.ack(conn, &delivery).await;
            return;
        }
        if delivery.reclaimed {
            self.metrics.add("mediahost_job_reclaims_total", 1.0).await;
            jobs.log(
                &id,
                "host",
                format!(
                    "reclaimed from a worker that stopped renewing its claim during attempt {}",
                    job.attempts
                ),
            )
            .await;
            if job.attempts >= job.max_attempts {
                // A job whose workers keep dying must not take every worker down in turn.
                let error = JobError::new(
                    ErrorCode::WorkerLost,
                    "worker",
                    format!(
                        "the worker running attempt {} of {} stopped; no attempts are left",
                        job.attempts, job.max_attempts
                    ),
                );
                job.transition(
                    JobState::Dead,
                    Some(error.code),
                    Some(error.message.clone()),
                );
                job.error = Some(error);
                job.timings.finished_at = Some(now_rfc3339());
                if self.finish(conn, &delivery, &job).await.is_ok() {
                    tracing::warn!(job = %id, "job is dead: its workers kept stopping");
                }
                return;
            }
        }

        let span = tracing::info_span!("job", id = %id, preset = %job.preset.name, version = %job.preset.version);
        if let Err(e) = self
            .execute(conn, consumer, &delivery, job, raw)
            .instrument(span)
            .await
        {
            tracing::error!(job = %id, error = %e, "could not record the job's outcome; it stays queued for another attempt");
        }
    }

    /// Stores a job's new state and acknowledges its entry; a retry is scheduled in the same
    /// transaction. Retried with backoff, since losing this write would lose the outcome.
    async fn finish(
        &self,
        conn: &mut redis::aio::MultiplexedConnection,
        delivery: &Delivery,
        job: &Job,
    ) -> redis::RedisResult<()> {
        let mut last = Ok(());
        for attempt in 0..5 {
            let mut pipe = redis::pipe();
            pipe.atomic();
            self.ctx.jobs.put_into(&mut pipe, job);
            self.metrics.job_event_into(
                &mut pipe,
                Event::Ended {
                    job,
                    run_s: job.timings.run_s.unwrap_or(0.0),
                },
            );
            if job.state.is_terminal() {
                let view = serde_json::to_value(job).unwrap_or_default();
                self.outbox.enqueue_into(&mut pipe, job, view);
            }
            if job.state == JobState::Pending {
                let due = job.next_attempt_unix_ms.unwrap_or_default();
                self.queue
                    .schedule_retry_into(&mut pipe, &job.id, job.priority, due);
            }
            self.queue.ack_into(&mut pipe, delivery);
            last = pipe.query_async::<()>(conn).await;
            if last.is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200 << attempt)).await;
        }
        last
    }

    /// Runs the job and stores its outcome. An `Err` means the outcome could not be stored.
    async fn execute(
        &self,
        conn: &mut redis::aio::MultiplexedConnection,
        consumer: &str,
        delivery: &Delivery,
        mut job: Job,
        raw: String,
    ) -> redis::RedisResult<()> {
        let jobs = self.ctx.jobs.clone();
        let started = Instant::now();
        job.attempts += 1;
        job.error = None;
        job.next_attempt_at = None;
        job.next_attempt_unix_ms = None;
        job.timings.started_at = Some(now_rfc3339());
        job.timings.queue_s = Some(job.age().as_secs_f64());
        job.transition(JobState::Processing, None, Some(format!("on {consumer}")));
        // Only if nobody changed the record since it was read: a job cancelled while pending
        // stays cancelled.
        if !jobs.replace(&job, &raw).await? {
            if let Some((now, _)) = jobs.get_raw(&job.id).await?
                && now.state.is_terminal()
            {
                self.queue.ack(conn, delivery).await?;
            }
            return Ok(());
        }
        jobs.log(
            &job.id,
            "host",
            format!(
                "attempt {} of {} started on {consumer}",
                job.attempts, job.max_attempts
            ),
        )
        .await;
        tracing::info!(attempt = job.attempts, "job started");
        self.metrics
            .record(Event::Started {
                wait_s: job.timings.queue_s.unwrap_or(0.0),
            })
            .await;

        let preset = self
            .ctx
            .catalog
            .get(&job.preset.name, &job.preset.version)
            .await
            .filter(|p| p.sha256 == job.preset.sha256);

        let shared = Arc::new(Mutex::new(job.clone()));
        let (progress_tx, progress_rx) = watch::channel(0.0);
        let progress = tokio::spawn(persist_progress(jobs.clone(), shared.clone(), progress_rx));
        let renew = {
            let queue = self.queue.clone();
            let mut conn = conn.clone();
            let consumer = consumer.to_owned();
            let delivery = delivery.clone();
            let every = self.queue.reclaim_after() / 3;
            let limited = self.max_running;
            tokio::spawn(async move {
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
            })
        };

        // `None`: cancelled while running.
        let result = match preset {
            None => Some(Err(JobError::new(
                ErrorCode::PresetNotFound,
                "plan",
                format!(
                    "the pinned preset {}@{} (sha256 {}) is not in the catalog this worker reads; \
                     check that the API and workers share one Redis prefix and one storage",
                    job.preset.name, job.preset.version, job.preset.sha256
                ),
            ))),
            Some(preset) => {
                let ctx = self.ctx.clone();
                let run_job = job.clone();
                let mut handle = tokio::spawn(async move {
                    pipeline::run(&ctx, &run_job, &preset, &progress_tx).await
                });
                tokio::select! {
                    joined = &mut handle => Some(joined.unwrap_or_else(|e| {
                        Err(JobError::new(
                            ErrorCode::Internal,
                            "worker",
                            format!("the job's task failed: {e}"),
                        ))
                    })),
                    () = jobs.wait_for_cancel(&job.id) => {
                        // Dropping the task kills ffmpeg (kill_on_drop) and removes scratch.
                        handle.abort();
                        let _ = handle.await;
                        None
                    }
                }
            }
        };
        progress.abort();
        renew.abort();

        job.timings.finished_at = Some(now_rfc3339());
        job.timings.run_s = Some(started.elapsed().as_secs_f64());
        match result {
            Some(Ok(done)) => {
                job.progress = 1.0;
                job.outputs = done.outputs;
                job.report = Some(done.report);
                job.timings.ffmpeg_s = Some(done.child_s);
                job.transition(JobState::Completed, None, None);
                tracing::info!(run_s = job.timings.run_s, "job completed");
                jobs.log(&job.id, "host", "completed").await;
            }
            None => {
                job.transition(
                    JobState::Cancelled,
                    None,
                    Some("cancelled while running".into()),
                );
                tracing::info!("job cancelled while running");
                jobs.log(
                    &job.id,
                    "host",
                    "cancelled: ffmpeg stopped, scratch removed",
                )
                .await;
            }
            Some(Err(error)) if error.code.retryable() && job.attempts < job.max_attempts => {
                let delay = self.retry.delay(job.attempts);
                let due = SystemTime::now() + delay;
                job.next_attempt_at = Some(humantime::format_rfc3339_millis(due).to_string());
                job.next_attempt_unix_ms = Some(crate::job::unix_ms(due));
                let note = format!("retry in {:.1}s: {}", delay.as_secs_f64(), error.message);
                job.transition(JobState::Pending, Some(error.code), Some(note.clone()));
                tracing::warn!(code = %error.code, step = %error.step, delay_s = delay.as_secs_f64(), "attempt failed; retrying");
                jobs.log(
                    &job.id,
                    "host",
                    format!("attempt {} failed ({error}); {note}", job.attempts),
                )
                .await;
                job.error = Some(error);
            }
            Some(Err(error)) => {
                let state = if error.code.retryable() {
                    JobState::Dead
                } else {
                    JobState::Failed
                };
                job.transition(state, Some(error.code), Some(error.message.clone()));
                tracing::warn!(code = %error.code, step = %error.step, message = %error.message, state = state.as_str(), "job failed");
                jobs.log(&job.id, "host", format!("{}: {error}", state.as_str()))
                    .await;
                job.error = Some(error);
            }
        }
        let stored = self.finish(conn, delivery, &job).await;
        self.metrics
            .add("mediahost_ffmpeg_cpu_seconds_total", self.child_cpu.take())
            .await;
        stored
    }
}

/// Exponential backoff with jitter: attempt n waits a random time in [d/2, d] where
/// d = base × 2^(n-1), at most `max`.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    pub base: Duration,
    pub max: Duration,
}

impl RetryPolicy {
    pub fn delay(&self, attempt: u32) -> Duration {
        let factor = 2u32.saturating_pow(attempt.saturating_sub(1).min(20));
        let full = self.base.saturating_mul(factor).min(self.max);
        let half = full / 2;
        half + half.mul_f64(rand::random::<f64>())
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

async fn persist_progress(
    jobs: crate::job::JobStore,
    job: Arc<Mutex<Job>>,
    mut rx: watch::Receiver<f64>,
) {
    while rx.changed().await.is_ok() {
        let snapshot = {
            let mut j = job.lock().expect("job lock");
            j.progress = (*rx.borrow_and_update() * 100.0).round() / 100.0;
            j.clone()
        };
        if let Err(e) = jobs.put(&snapshot).await {
            tracing::debug!(error = %e, "could not store progress");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

async fn wait_or_shutdown(shutdown: &mut watch::Receiver<bool>, d: Duration) {
    let _ = tokio::time::timeout(d, shutdown.changed()).await;
}
