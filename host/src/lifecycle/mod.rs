//! The job lifecycle: every change of a job's state, each one atomic in Redis.
//!
//! `accept → PENDING → start → PROCESSING → complete | fail | dead | retry (PENDING, later) |
//! cancel | hand back (PENDING, now)`, and `cancel` of a PENDING job. Each transition is one
//! Lua script (files under `scripts/`, loaded once) that checks it is legal (the from-state, the
//! attempt, and for a worker that it still holds the job's queue entry) and writes the record,
//! the queue entry or its acknowledgement, the retry schedule, the webhook event and the metric
//! counters together, or nothing. Progress goes to a small hash beside the record
//! ([`Keys::live`]), merged into the record when it is read.
//!
//! Not here: reading the queue (`queue`), running a job (`worker`), delivering webhooks
//! (`webhook`), what the API answers (`api::jobs`).

pub mod endings;
pub mod keys;

use std::sync::LazyLock;
use std::time::{Duration, Instant, SystemTime};

use redis::aio::ConnectionManager;
use serde::Serialize;
use uuid::Uuid;

use crate::error::{ErrorCode, JobError};
use crate::job::{
    Cached, Job, JobState, Outcome, OutputProgress, OutputRecord, OutputState, Progress,
    RECORD_TTL_S, now_rfc3339, unix_ms,
};
use crate::metrics::{Event, Metrics};
use crate::queue::Delivery;
use crate::webhook::Outbox;
pub use endings::Endings;
pub use keys::Keys;

macro_rules! script {
    ($file:literal) => {
        LazyLock::new(|| {
            redis::Script::new(concat!(
                include_str!("scripts/common.lua"),
                include_str!(concat!("scripts/", $file))
            ))
        })
    };
}

static ACCEPT: LazyLock<redis::Script> = script!("accept.lua");
static START: LazyLock<redis::Script> = script!("start.lua");
static FINISH: LazyLock<redis::Script> = script!("finish.lua");
static CANCEL: LazyLock<redis::Script> = script!("cancel.lua");
static PROGRESS: LazyLock<redis::Script> =
    LazyLock::new(|| redis::Script::new(include_str!("scripts/progress.lua")));
pub(crate) static LOG: LazyLock<redis::Script> =
    LazyLock::new(|| redis::Script::new(include_str!("scripts/log.lua")));
pub(crate) static PROMOTE: LazyLock<redis::Script> =
    LazyLock::new(|| redis::Script::new(include_str!("scripts/promote.lua")));
pub(crate) static PERMIT: LazyLock<redis::Script> =
    LazyLock::new(|| redis::Script::new(include_str!("scripts/permit.lua")));

/// How long an `Idempotency-Key` is remembered.
const IDEMPOTENCY_TTL_S: u64 = 24 * 3600;

/// Exponential backoff with jitter: attempt n waits a random time in [d/2, d] where
/// d = base × 2^(n-1), at most `max`.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    pub base: Duration,
    pub max: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            base: Duration::from_secs(1),
            max: Duration::from_secs(300),
        }
    }
}

impl RetryPolicy {
    pub fn delay(&self, attempt: u32) -> Duration {
        let factor = 2u32.saturating_pow(attempt.saturating_sub(1).min(20));
        let full = self.base.saturating_mul(factor).min(self.max);
        let half = full / 2;
        half + half.mul_f64(rand::random::<f64>())
    }
}

/// What `accept` did.
pub enum Accepted {
    New,
    /// The Idempotency-Key was used before: the job it created, and the SHA-256 of that body.
    Duplicate {
        id: String,
        body_sha256: String,
    },
}

/// What `start` did with a delivery.
pub enum Start {
    /// The attempt runs on this worker.
    Running(Box<Held>),
    /// The job was reclaimed with no attempts left and is now DEAD.
    Dead,
    /// Nothing to run: the job ended meanwhile or has no record (the entry is acknowledged), or
    /// the transition was refused (the reason says why).
    Skipped(String),
}

/// How an attempt ended, as its worker saw it.
pub enum Ending {
    Completed {
        outputs: Vec<OutputRecord>,
        report: serde_json::Map<String, serde_json::Value>,
        child_s: f64,
        /// The inputs' hashes as the attempt learned them.
        input_sha256: std::collections::BTreeMap<String, String>,
        /// Set when the outputs came from the result cache.
        cached: Option<Cached>,
    },
    Failed(JobError),
    /// A cancel was asked for; ffmpeg is stopped and scratch removed.
    Cancelled,
    /// The worker is stopping: the job goes back to the queue at once, the attempt not counted.
    HandedBack,
}

/// What `cancel` did.
pub enum Cancel {
    /// A PENDING job, now CANCELLED.
    Cancelled(Box<Job>),
    /// A PROCESSING job: its worker was asked to stop it.
    Requested(Box<Job>),
    /// Already in this (terminal) state.
    Refused(JobState),
    Missing,
}

/// A job a worker holds: it started the attempt and holds the queue entry.
pub struct Held {
    pub job: Job,
    pub delivery: Delivery,
    pub consumer: String,
    started: Instant,
}

/// The effects a transition carries besides the record (webhook event, counters): the commands
/// the outbox and the metrics would send, run inside the transition's script.
#[derive(Serialize, Default)]
struct Effects {
    commands: Vec<Vec<String>>,
}

impl Effects {
    fn from_pipeline(pipe: &redis::Pipeline) -> Self {
        let commands = pipe
            .cmd_iter()
            .map(|cmd| {
                cmd.args_iter()
                    .map(|arg| match arg {
                        redis::Arg::Simple(bytes) => String::from_utf8_lossy(bytes).into_owned(),
                        _ => String::new(),
                    })
                    .collect()
            })
            .collect();
        Self { commands }
    }

    fn json(&self) -> String {
        serde_json::to_string(self).expect("effects serialize")
    }
}

/// The job lifecycle over one deployment's Redis.
#[derive(Clone)]
pub struct Lifecycle {
    redis: ConnectionManager,
    keys: Keys,
    metrics: Metrics,
    outbox: Outbox,
    retry: RetryPolicy,
}

impl Lifecycle {
    pub fn new(redis: ConnectionManager, prefix: &str, retry: RetryPolicy) -> Self {
        Self {
            metrics: Metrics::new(redis.clone(), prefix),
            outbox: Outbox::new(redis.clone(), prefix),
            redis,
            keys: Keys::new(prefix),
            retry,
        }
    }

    pub fn keys(&self) -> &Keys {
        &self.keys
    }

    async fn read(&self, id: &Uuid) -> redis::RedisResult<Option<(Job, String)>> {
        let raw: Option<String> = redis::cmd("GET")
            .arg(self.keys.job(id))
            .query_async(&mut self.redis.clone())
            .await?;
        Ok(raw.and_then(|r| serde_json::from_str(&r).ok().map(|j| (j, r))))
    }

    /// What an ended job announces: its webhook event (if it has a webhook) and its id on the
    /// endings channel ([`Endings`]).
    fn ended_into(&self, pipe: &mut redis::Pipeline, job: &Job) {
        self.outbox.enqueue_into(pipe, job);
        pipe.cmd("PUBLISH")
            .arg(self.keys.ended())
            .arg(job.id.to_string())
            .ignore();
    }

    /// The announcements of an ended job and the counters of `events`.
    fn effects(&self, job: &Job, events: Vec<Event<'_>>) -> Effects {
        let mut pipe = redis::pipe();
        if job.state.is_terminal() {
            self.ended_into(&mut pipe, job);
        }
        for event in events {
            self.metrics.job_event_into(&mut pipe, event);
        }
        Effects::from_pipeline(&pipe)
    }

    /// Stores a new job and queues it; with an idempotency key (its SHA-256, and the body's), a
    /// repeat answers the job the first request created. A job that is already COMPLETED (from
    /// the result cache) is stored finished and not queued.
    pub async fn accept(
        &self,
        job: &Job,
        idempotency: Option<(String, String)>,
    ) -> redis::RedisResult<Accepted> {
        let body = serde_json::to_string(job).expect("job records serialize");
        let (idem_key, body_hash) = idempotency
            .clone()
            .map(|(k, h)| (self.keys.idempotency(&k), h))
            .unwrap_or_else(|| (self.keys.idempotency("-"), String::new()));
        let mut events = vec![Event::Accepted];
        if job.state.is_terminal() {
            events.push(Event::Ended { job, run_s: 0.0 });
        }
        let effects = self.effects(job, events);
        let ttl = if job.state.is_terminal() {
            RECORD_TTL_S
        } else {
            0
        };
        let (verdict, detail): (String, String) = ACCEPT
            .key(idem_key)
            .key(self.keys.job(&job.id))
            .key(self.keys.stream(job.priority))
            .key(self.keys.index())
            .arg(format!("{} {body_hash}", job.id))
            .arg(body)
            .arg(job.id.to_string())
            .arg(IDEMPOTENCY_TTL_S)
            .arg(if idempotency.is_some() { "1" } else { "0" })
            .arg(job.created_unix_ms)
            .arg(
                job.created_unix_ms
                    .saturating_sub(RECORD_TTL_S as u64 * 1000),
            )
            .arg(effects.json())
            .arg(ttl)
            .key(self.keys.log(&job.id))
            .key(self.keys.log_usage(&job.id))
            .invoke_async(&mut self.redis.clone())
            .await?;
        Ok(match verdict.as_str() {
            "duplicate" => {
                let (id, hash) = detail.split_once(' ').unwrap_or((detail.as_str(), ""));
                Accepted::Duplicate {
                    id: id.to_owned(),
                    body_sha256: hash.to_owned(),
                }
            }
            "ok" => Accepted::New,
            _ => {
                return Err(redis::RedisError::from((
                    redis::ErrorKind::Client,
                    "a job with this id exists",
                )));
            }
        })
    }

    /// Begins an attempt of a delivered job on `consumer`, which holds the delivery's entry. A
    /// reclaimed job with no attempts left becomes DEAD instead.
    pub async fn start(&self, delivery: &Delivery, consumer: &str) -> redis::RedisResult<Start> {
        let Some((mut job, _)) = self.read(&delivery.job_id).await? else {
            // No record (or one that does not parse): the script drops the entry.
            let effects = Effects::default();
            let _: (String, String) = START
                .key(self.keys.job(&delivery.job_id))
                .key(self.keys.live(&delivery.job_id))
                .key(self.keys.stream(delivery.priority))
                .arg(consumer)
                .arg(&delivery.entry)
                .arg(0)
                .arg("")
                .arg(effects.json())
                .invoke_async(&mut self.redis.clone())
                .await?;
            return Ok(Start::Skipped(
                "the queue entry has no readable job record; the entry is dropped".into(),
            ));
        };
        let read_attempts = job.attempts;
        if delivery.reclaimed && job.state == JobState::Processing {
            let note = format!(
                "reclaimed from a worker that stopped renewing its claim during attempt {}",
                job.attempts
            );
            self.log(&job.id, "host", note).await;
            if job.attempts >= job.max_attempts {
                // A job whose workers keep dying must not take every worker down in turn.
                let held = Held {
                    job,
                    delivery: delivery.clone(),
                    consumer: consumer.to_owned(),
                    started: Instant::now(),
                };
                let error = JobError::new(
                    ErrorCode::WorkerLost,
                    "worker",
                    format!(
                        "the worker running attempt {} of {} stopped; no attempts are left",
                        held.job.attempts, held.job.max_attempts
                    ),
                );
                return Ok(match self.finish(&held, Ending::Failed(error)).await? {
                    Ok(_) => Start::Dead,
                    Err(why) => Start::Skipped(why),
                });
            }
        }
        job.attempts += 1;
        job.progress = 0.0;
        job.error = None;
        job.next_attempt_at = None;
        job.next_attempt_unix_ms = None;
        job.timings.started_at = Some(now_rfc3339());
        job.timings.queue_s = Some(job.age().as_secs_f64());
        job.transition(JobState::Processing, None, Some(format!("on {consumer}")));
        let body = serde_json::to_string(&job).expect("job records serialize");
        let mut pipe = redis::pipe();
        self.metrics.job_event_into(
            &mut pipe,
            Event::Started {
                preset: &job.preset.name,
                wait_s: job.timings.queue_s.unwrap_or(0.0),
            },
        );
        if delivery.reclaimed {
            self.metrics
                .count_into(&mut pipe, "mediahost_job_reclaims_total", 1.0);
        }
        let (verdict, detail): (String, String) = START
            .key(self.keys.job(&job.id))
            .key(self.keys.live(&job.id))
            .key(self.keys.stream(delivery.priority))
            .arg(consumer)
            .arg(&delivery.entry)
            .arg(read_attempts)
            .arg(body)
            .arg(Effects::from_pipeline(&pipe).json())
            .invoke_async(&mut self.redis.clone())
            .await?;
        Ok(match verdict.as_str() {
            "ok" => Start::Running(Box::new(Held {
                job,
                delivery: delivery.clone(),
                consumer: consumer.to_owned(),
                started: Instant::now(),
            })),
            "terminal" => Start::Skipped(format!("the job is already {detail}")),
            "conflict" => Start::Skipped("the job changed while it was being started".into()),
            _ => Start::Skipped(detail),
        })
    }

    /// Records how a held attempt ended and acknowledges its entry: COMPLETED; a failure as a
    /// retry (PENDING, due after backoff), DEAD (retryable, no attempts left) or FAILED;
    /// CANCELLED; or handed back (PENDING, queued at once, the attempt not counted). Tried again
    /// with backoff when Redis fails, since losing this write would lose the outcome. `Ok(Err)`:
    /// the transition was refused (the job is no longer this worker's), with the reason.
    pub async fn finish(
        &self,
        held: &Held,
        ending: Ending,
    ) -> redis::RedisResult<Result<Job, String>> {
        let mut job = held.job.clone();
        let run_s = held.started.elapsed().as_secs_f64();
        job.timings.run_s = Some(run_s);
        job.timings.finished_at = Some(now_rfc3339());
        let mut requeue = ("", self.keys.delayed_member(&job.id, job.priority), 0);
        let mut handed_back = false;
        match ending {
            Ending::Completed {
                outputs,
                report,
                child_s,
                input_sha256,
                cached,
            } => {
                job.input_sha256 = input_sha256;
                job.cached = cached;
                job.progress = 1.0;
                let partial = outputs.iter().any(|o| o.state == OutputState::Failed);
                job.outcome = Some(if partial {
                    Outcome::Partial
                } else {
                    Outcome::Complete
                });
                job.outputs = outputs;
                job.report = Some(report);
                job.timings.ffmpeg_s = Some(child_s);
                job.transition(JobState::Completed, None, None);
            }
            Ending::Cancelled => {
                job.transition(
                    JobState::Cancelled,
                    None,
                    Some("cancelled while running".into()),
                );
            }
            Ending::HandedBack => {
                job.progress = 0.0;
                job.timings.finished_at = None;
                job.transition(
                    JobState::Pending,
                    None,
                    Some(format!(
                        "handed back: {} stopped; the attempt does not count",
                        held.consumer
                    )),
                );
                job.attempts = job.attempts.saturating_sub(1);
                requeue = ("now", job.id.to_string(), 0);
                handed_back = true;
            }
            Ending::Failed(error) if error.code.retryable() && job.attempts < job.max_attempts => {
                let delay = self.retry.delay(job.attempts);
                let due = SystemTime::now() + delay;
                job.next_attempt_at = Some(humantime::format_rfc3339_millis(due).to_string());
                job.next_attempt_unix_ms = Some(unix_ms(due));
                let note = format!("retry in {:.1}s: {}", delay.as_secs_f64(), error.message);
                job.transition(JobState::Pending, Some(error.code), Some(note));
                job.error = Some(error);
                requeue.0 = "later";
                requeue.2 = unix_ms(due);
            }
            Ending::Failed(error) => {
                let state = if error.code.retryable() {
                    JobState::Dead
                } else {
                    JobState::Failed
                };
                job.transition(state, Some(error.code), Some(error.message.clone()));
                job.error = Some(error);
            }
        }
        let mut pipe = redis::pipe();
        if handed_back {
            self.metrics
                .count_into(&mut pipe, "mediahost_job_handbacks_total", 1.0);
        } else {
            if job.state.is_terminal() {
                self.ended_into(&mut pipe, &job);
            }
            self.metrics
                .job_event_into(&mut pipe, Event::Ended { job: &job, run_s });
        }
        let effects = Effects::from_pipeline(&pipe).json();
        let body = serde_json::to_string(&job).expect("job records serialize");
        let ttl = if job.state.is_terminal() {
            RECORD_TTL_S
        } else {
            0
        };
        let id = job.id;
        let mut last = None;
        for attempt in 0..5 {
            let ran: redis::RedisResult<(String, String)> = FINISH
                .key(self.keys.job(&id))
                .key(self.keys.live(&id))
                .key(self.keys.stream(held.delivery.priority))
                .key(self.keys.delayed())
                .key(self.keys.log(&id))
                .key(self.keys.log_usage(&id))
                .key(self.keys.cancel(&id))
                .arg(&held.consumer)
                .arg(&held.delivery.entry)
                .arg(held.job.attempts)
                .arg(&body)
                .arg(ttl)
                .arg(requeue.0)
                .arg(&requeue.1)
                .arg(requeue.2)
                .arg(&effects)
                .invoke_async(&mut self.redis.clone())
                .await;
            match ran {
                Ok((verdict, _)) if verdict == "ok" => return Ok(Ok(job)),
                Ok((_, why)) => return Ok(Err(why)),
                Err(e) => last = Some(e),
            }
            tokio::time::sleep(Duration::from_millis(200 << attempt)).await;
        }
        Err(last.expect("five attempts ran"))
    }

    /// Stores the progress of `consumer`'s attempt (the job's and each output's, 0..1) without
    /// rewriting the record.
    pub async fn progress(
        &self,
        id: &Uuid,
        consumer: &str,
        progress: &Progress,
    ) -> redis::RedisResult<()> {
        let round = |f: f64| (f * 100.0).round() / 100.0;
        let outputs: std::collections::BTreeMap<&str, OutputProgress> = progress
            .outputs
            .iter()
            .map(|(name, o)| {
                let o = OutputProgress {
                    state: o.state,
                    progress: round(o.progress),
                };
                (name.as_str(), o)
            })
            .collect();
        let _: i64 = PROGRESS
            .key(self.keys.live(id))
            .arg(consumer)
            .arg(round(progress.fraction))
            .arg(serde_json::to_string(&outputs).unwrap_or_default())
            .invoke_async(&mut self.redis.clone())
            .await?;
        Ok(())
    }

    /// Whether a cancel of the running job was asked for.
    pub async fn cancel_requested(&self, id: &Uuid) -> redis::RedisResult<bool> {
        redis::cmd("EXISTS")
            .arg(self.keys.cancel(id))
            .query_async(&mut self.redis.clone())
            .await
    }

    /// Cancels a PENDING job at once, or asks the worker of a PROCESSING one to stop it.
    pub async fn cancel(&self, id: &Uuid) -> redis::RedisResult<Option<Cancel>> {
        for _ in 0..5 {
            let Some((mut job, raw)) = self.read(id).await? else {
                return Ok(Some(Cancel::Missing));
            };
            let read = job.clone();
            job.next_attempt_at = None;
            job.next_attempt_unix_ms = None;
            job.transition(
                JobState::Cancelled,
                None,
                Some("cancelled while pending".into()),
            );
            let effects = self.effects(&job, vec![Event::Withdrawn { job: &job }]);
            let (verdict, detail): (String, String) = CANCEL
                .key(self.keys.job(id))
                .key(self.keys.delayed())
                .key(self.keys.cancel(id))
                .key(self.keys.log(id))
                .key(self.keys.log_usage(id))
                .arg(&raw)
                .arg(serde_json::to_string(&job).expect("job records serialize"))
                .arg(RECORD_TTL_S)
                .arg(self.keys.delayed_member(id, job.priority))
                .arg(effects.json())
                .invoke_async(&mut self.redis.clone())
                .await?;
            match verdict.as_str() {
                "cancelled" => return Ok(Some(Cancel::Cancelled(Box::new(job)))),
                "requested" => return Ok(Some(Cancel::Requested(Box::new(read)))),
                "missing" => return Ok(Some(Cancel::Missing)),
                "illegal" => {
                    let state = serde_json::from_value(serde_json::Value::String(detail))
                        .unwrap_or(read.state);
                    return Ok(Some(Cancel::Refused(state)));
                }
                // The record changed (a worker took the job): read it again.
                _ => {}
            }
        }
        Ok(None)
    }

    /// Appends a line to the job's log (see [`crate::job::JobStore::log`]).
    async fn log(&self, id: &Uuid, source: &str, message: String) {
        crate::job::append_log(&self.redis, &self.keys, id, source, message).await;
    }
}

#[cfg(test)]
pub(crate) mod tests;
