//! Workers: take jobs from the queue, run them, record the outcome, acknowledge.
//!
//! A job is acknowledged only after its terminal state is stored, so a worker that dies at any
//! point leaves the job in the queue for another worker (see [`crate::queue`]). A panic inside a
//! job is caught and recorded as that job's failure; it never takes the worker down.

pub mod dry_run;
pub mod pipeline;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tracing::Instrument;

use crate::error::{ErrorCode, JobError};
use crate::job::{Job, JobState, now_rfc3339};
use crate::queue::{Delivery, Queue};
use pipeline::Context;

pub struct Worker {
    pub ctx: Arc<Context>,
    pub queue: Queue,
    pub redis: redis::Client,
    pub concurrency: usize,
    pub name: String,
}

impl Worker {
    /// Runs `concurrency` job slots until `shutdown` turns true; a running job is finished first.
    pub async fn run(self: Arc<Self>, shutdown: watch::Receiver<bool>) {
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
            match self.queue.next(c, &consumer, Duration::from_secs(2)).await {
                Ok(Some(delivery)) => self.handle(c, &consumer, delivery).await,
                Ok(None) => {}
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
        let job = match jobs.get(&id).await {
            Ok(Some(job)) => job,
            Ok(None) => {
                tracing::warn!(job = %id, "queue entry without a job record; dropping the entry");
                let _ = self.queue.ack(conn, &delivery.entry).await;
                return;
            }
            Err(e) => {
                tracing::warn!(job = %id, error = %e, "cannot read the job; it stays queued");
                return;
            }
        };
        if job.state.is_terminal() {
            let _ = self.queue.ack(conn, &delivery.entry).await;
            return;
        }
        if delivery.reclaimed {
            jobs.log(
                &id,
                "host",
                "reclaimed from a worker that stopped renewing its claim",
            )
            .await;
        }

        let span = tracing::info_span!("job", id = %id, preset = %job.preset.name, version = %job.preset.version);
        let outcome = self
            .execute(conn, consumer, &delivery, job)
            .instrument(span)
            .await;
        match outcome {
            Ok(()) => {
                if let Err(e) = self.queue.ack(conn, &delivery.entry).await {
                    tracing::warn!(job = %id, error = %e, "could not acknowledge; the job may be re-delivered and will be skipped as finished");
                }
            }
            Err(e) => {
                tracing::error!(job = %id, error = %e, "could not record the job's outcome; it stays queued for another attempt");
            }
        }
    }

    /// Runs the job and stores its terminal state. An `Err` means the state could not be stored.
    async fn execute(
        &self,
        conn: &mut redis::aio::MultiplexedConnection,
        consumer: &str,
        delivery: &Delivery,
        mut job: Job,
    ) -> redis::RedisResult<()> {
        let jobs = self.ctx.jobs.clone();
        let started = Instant::now();
        job.state = JobState::Processing;
        job.attempts += 1;
        job.error = None;
        job.timings.started_at = Some(now_rfc3339());
        job.timings.queue_s = Some(job.age().as_secs_f64());
        jobs.put(&job).await?;
        jobs.log(
            &job.id,
            "host",
            format!("attempt {} started on {consumer}", job.attempts),
        )
        .await;
        tracing::info!("job started");

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
            let entry = delivery.entry.clone();
            let every = self.queue.reclaim_after() / 3;
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(every).await;
                    if let Err(e) = queue.renew(&mut conn, &consumer, &entry).await {
                        tracing::warn!(error = %e, "could not renew the job's claim");
                    }
                }
            })
        };

        let result = match preset {
            None => Err(JobError::new(
                ErrorCode::PresetNotFound,
                "plan",
                format!(
                    "the pinned preset {}@{} (sha256 {}) is not in the catalog this worker reads; \
                     check that the API and workers share one Redis prefix and one storage",
                    job.preset.name, job.preset.version, job.preset.sha256
                ),
            )),
            Some(preset) => {
                let ctx = self.ctx.clone();
                let job = job.clone();
                let handle =
                    tokio::spawn(
                        async move { pipeline::run(&ctx, &job, &preset, &progress_tx).await },
                    );
                handle.await.unwrap_or_else(|e| {
                    Err(JobError::new(
                        ErrorCode::Internal,
                        "worker",
                        format!("the job's task failed: {e}"),
                    ))
                })
            }
        };
        progress.abort();
        renew.abort();

        job.timings.finished_at = Some(now_rfc3339());
        job.timings.run_s = Some(started.elapsed().as_secs_f64());
        match result {
            Ok(done) => {
                job.state = JobState::Completed;
                job.progress = 1.0;
                job.outputs = done.outputs;
                job.report = Some(done.report);
                job.timings.ffmpeg_s = Some(done.child_s);
                tracing::info!(run_s = job.timings.run_s, "job completed");
                jobs.log(&job.id, "host", "completed").await;
            }
            Err(error) => {
                job.state = JobState::Failed;
                tracing::warn!(code = %error.code, step = %error.step, message = %error.message, "job failed");
                jobs.log(&job.id, "host", format!("failed: {error}")).await;
                job.error = Some(error);
            }
        }
        let mut last = Ok(());
        for attempt in 0..5 {
            last = jobs.put(&job).await;
            if last.is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200 << attempt)).await;
        }
        last
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
