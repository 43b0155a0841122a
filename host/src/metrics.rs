//! Metrics in the Prometheus text format, shared by every process through Redis.
//!
//! Workers add to counters in the hash `<prefix>:metrics` (field: the series with its labels,
//! value: the count), mostly in the same transaction that records the job's transition, so the
//! API process can serve totals for the whole deployment at `GET /metrics`. Queue depths are read
//! live. Labels are preset names, versions, states and error codes: all from closed alphabets.
//!
//! Not here: when a job's counters are written (inside its `lifecycle` transition).

use std::collections::BTreeMap;
use std::sync::Mutex;

use redis::AsyncCommands;

use crate::job::{Job, JobState};
use crate::queue::Queue;

#[derive(Clone)]
pub struct Metrics {
    redis: redis::aio::ConnectionManager,
    key: String,
    cache_index: String,
}

/// What one call of [`Metrics::job_event_into`] records.
pub enum Event<'a> {
    /// A job was accepted.
    Accepted,
    /// The job started an attempt after waiting this long.
    Started { wait_s: f64 },
    /// The job reached `job.state` (terminal, or PENDING for a retry) after running this long.
    Ended { job: &'a Job, run_s: f64 },
    /// The job ended without running (cancelled while pending).
    Withdrawn { job: &'a Job },
}

impl Metrics {
    pub fn new(redis: redis::aio::ConnectionManager, prefix: &str) -> Self {
        let keys = crate::lifecycle::Keys::new(prefix);
        Self {
            redis,
            key: keys.metrics(),
            cache_index: keys.cache_index(),
        }
    }

    /// Adds to one counter in a pipeline (the one storing a transition).
    pub fn count_into(&self, pipe: &mut redis::Pipeline, series: &str, by: f64) {
        self.incr(pipe, series.to_owned(), by);
    }

    fn incr(&self, pipe: &mut redis::Pipeline, series: String, by: f64) {
        pipe.cmd("HINCRBYFLOAT")
            .arg(&self.key)
            .arg(series)
            .arg(by)
            .ignore();
    }

    /// Adds the counters of a job event to a pipeline (the one storing the transition).
    pub fn job_event_into(&self, pipe: &mut redis::Pipeline, event: Event<'_>) {
        match event {
            Event::Accepted => self.incr(pipe, "mediahost_jobs_accepted_total".into(), 1.0),
            Event::Withdrawn { job } => self.incr(
                pipe,
                format!(
                    "mediahost_jobs_finished_total{{state=\"{}\",preset=\"{}\",version=\"{}\"}}",
                    job.state.as_str(),
                    job.preset.name,
                    job.preset.version
                ),
                1.0,
            ),
            Event::Started { wait_s } => {
                self.incr(pipe, "mediahost_job_wait_seconds_sum".into(), wait_s);
                self.incr(pipe, "mediahost_job_wait_seconds_count".into(), 1.0);
            }
            Event::Ended { job, run_s } => {
                let preset = format!(
                    "preset=\"{}\",version=\"{}\"",
                    job.preset.name, job.preset.version
                );
                self.incr(
                    pipe,
                    format!("mediahost_job_run_seconds_sum{{{preset}}}"),
                    run_s,
                );
                self.incr(
                    pipe,
                    format!("mediahost_job_run_seconds_count{{{preset}}}"),
                    1.0,
                );
                if let Some(error) = &job.error {
                    self.incr(
                        pipe,
                        format!("mediahost_job_failures_total{{code=\"{}\"}}", error.code),
                        1.0,
                    );
                }
                if job.state == JobState::Pending {
                    self.incr(pipe, "mediahost_job_retries_total".into(), 1.0);
                } else {
                    self.incr(
                        pipe,
                        format!(
                            "mediahost_jobs_finished_total{{state=\"{}\",{preset}}}",
                            job.state.as_str()
                        ),
                        1.0,
                    );
                }
            }
        }
    }

    /// Adds to one counter on its own (reclaims, ffmpeg CPU time).
    pub async fn add(&self, series: &str, by: f64) {
        let mut pipe = redis::pipe();
        self.incr(&mut pipe, series.to_owned(), by);
        if let Err(e) = pipe.query_async::<()>(&mut self.redis.clone()).await {
            tracing::debug!(error = %e, series, "could not update a metric");
        }
    }

    /// Every series, in the Prometheus text exposition format.
    pub async fn render(&self, queue: &Queue) -> redis::RedisResult<String> {
        let mut conn = self.redis.clone();
        let counters: BTreeMap<String, String> = conn.hgetall(&self.key).await?;
        let (depths, delayed) = queue.depth(&mut conn).await?;
        let mut out = String::new();
        out.push_str("# HELP mediahost_queue_depth Jobs queued or running, per priority.\n");
        out.push_str("# TYPE mediahost_queue_depth gauge\n");
        for (priority, n) in depths {
            out.push_str(&format!(
                "mediahost_queue_depth{{priority=\"{}\"}} {n}\n",
                priority.as_str()
            ));
        }
        out.push_str("# HELP mediahost_retries_waiting Jobs waiting for their retry backoff.\n");
        out.push_str("# TYPE mediahost_retries_waiting gauge\n");
        out.push_str(&format!("mediahost_retries_waiting {delayed}\n"));
        let entries: u64 = conn.zcard(&self.cache_index).await?;
        out.push_str(
            "# HELP mediahost_result_cache_entries Completed jobs the result cache holds.\n",
        );
        out.push_str("# TYPE mediahost_result_cache_entries gauge\n");
        out.push_str(&format!("mediahost_result_cache_entries {entries}\n"));
        let lookups = |result: &str| -> f64 {
            counters
                .get(&format!(
                    "mediahost_result_cache_lookups_total{{result=\"{result}\"}}"
                ))
                .and_then(|v| v.parse().ok())
                .unwrap_or(0.0)
        };
        let (hits, misses) = (lookups("hit"), lookups("miss"));
        let ratio = if hits + misses > 0.0 {
            hits / (hits + misses)
        } else {
            0.0
        };
        out.push_str(
            "# HELP mediahost_result_cache_hit_ratio Share of cacheable jobs answered from the \
             result cache, since the counters began.\n",
        );
        out.push_str("# TYPE mediahost_result_cache_hit_ratio gauge\n");
        out.push_str(&format!("mediahost_result_cache_hit_ratio {ratio:.4}\n"));
        let mut last_family = String::new();
        for (series, value) in counters {
            let name = series.split('{').next().unwrap_or(&series);
            let family = name
                .strip_suffix("_sum")
                .or_else(|| name.strip_suffix("_count"))
                .unwrap_or(name);
            if family != last_family {
                let kind = if family == name { "counter" } else { "summary" };
                out.push_str(&format!("# TYPE {family} {kind}\n"));
                last_family = family.to_owned();
            }
            out.push_str(&format!("{series} {value}\n"));
        }
        Ok(out)
    }
}

/// CPU seconds (user + system) of this process's reaped children, for the ffmpeg CPU counter:
/// each worker adds what accrued since it last looked.
pub struct ChildCpu {
    last: Mutex<f64>,
}

impl Default for ChildCpu {
    fn default() -> Self {
        Self {
            last: Mutex::new(children_cpu_s()),
        }
    }
}

impl ChildCpu {
    /// Seconds of child CPU since the previous call.
    pub fn take(&self) -> f64 {
        let now = children_cpu_s();
        let mut last = self.last.lock().expect("child cpu lock");
        let delta = (now - *last).max(0.0);
        *last = now;
        delta
    }
}

fn children_cpu_s() -> f64 {
    // SAFETY: getrusage fills the struct we pass; RUSAGE_CHILDREN is always valid.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage);
        usage
    };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    secs(usage.ru_utime) + secs(usage.ru_stime)
}
