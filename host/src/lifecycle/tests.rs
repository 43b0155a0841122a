//! The transition scripts against a real `redis-server` started on a free port.

use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use redis::AsyncCommands;

use super::*;
use crate::job::{JobStore, LogEntry, PresetPin};
use crate::queue::{Delivery, Queue};

pub(crate) struct Server {
    child: Child,
    pub(crate) url: String,
    _dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A private `redis-server` on a free port, stopped when dropped.
pub(crate) async fn redis_server() -> Server {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no"])
        .arg("--dir")
        .arg(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("redis-server is installed");
    let url = format!("redis://127.0.0.1:{port}/");
    let started = Instant::now();
    loop {
        if let Ok(client) = redis::Client::open(url.as_str())
            && let Ok(mut conn) = client.get_multiplexed_async_connection().await
            && redis::cmd("PING")
                .query_async::<String>(&mut conn)
                .await
                .is_ok()
        {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "redis-server did not start"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Server {
        child,
        url,
        _dir: dir,
    }
}

struct Fixture {
    _server: Server,
    conn: redis::aio::MultiplexedConnection,
    manager: ConnectionManager,
    lifecycle: Lifecycle,
    queue: Queue,
    jobs: JobStore,
}

async fn fixture() -> Fixture {
    let server = redis_server().await;
    let client = redis::Client::open(server.url.as_str()).unwrap();
    let manager = ConnectionManager::new(client.clone()).await.unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let queue = Queue::new("t", Duration::from_secs(30));
    queue.ensure_group(&mut conn).await.unwrap();
    Fixture {
        _server: server,
        conn,
        lifecycle: Lifecycle::new(manager.clone(), "t", RetryPolicy::default()),
        jobs: JobStore::new(manager.clone(), "t"),
        manager,
        queue,
    }
}

fn job() -> Job {
    let mut job = Job::new(
        PresetPin {
            name: "audio-convert".into(),
            version: semver::Version::new(1, 0, 0),
            sha256: "00".repeat(32),
        },
        BTreeMap::from([("audio".into(), "mediahost://uploads/a.wav".into())]),
        serde_json::Map::new(),
    );
    job.webhook = Some("http://127.0.0.1:9/hook".into());
    job
}

impl Fixture {
    async fn accepted(&self) -> Job {
        let job = job();
        assert!(matches!(
            self.lifecycle.accept(&job, None).await.unwrap(),
            Accepted::New
        ));
        job
    }

    /// Takes the next entry as `consumer`.
    async fn next(&mut self, consumer: &str) -> Delivery {
        self.queue
            .next(&mut self.conn, consumer, Duration::from_millis(100))
            .await
            .unwrap()
            .expect("a queued entry")
    }

    /// Takes the next entry as `consumer` and starts it.
    async fn started(&mut self, consumer: &str) -> Held {
        let delivery = self.next(consumer).await;
        match self.lifecycle.start(&delivery, consumer).await.unwrap() {
            Start::Running(held) => *held,
            _ => panic!("the job did not start"),
        }
    }

    /// Records `ending` for `held`: the job as stored, or why the script refused it.
    async fn finish(&self, held: &Held, ending: Ending) -> Result<Job, String> {
        self.lifecycle.finish(held, ending).await.unwrap()
    }

    async fn state(&self, job: &Job) -> Job {
        self.jobs.get(&job.id).await.unwrap().expect("a record")
    }

    async fn raw(&self, job: &Job) -> String {
        self.manager
            .clone()
            .get(self.lifecycle.keys().job(&job.id))
            .await
            .unwrap()
    }

    async fn events(&self) -> usize {
        self.manager
            .clone()
            .zcard(self.lifecycle.keys().webhooks_due())
            .await
            .unwrap()
    }
}

/// A fixture with one job accepted and started by `worker-a`.
async fn running() -> (Fixture, Job, Held) {
    let mut f = fixture().await;
    let job = f.accepted().await;
    let held = f.started("worker-a").await;
    (f, job, held)
}

fn completed() -> Ending {
    Ending::Completed {
        outputs: Vec::new(),
        report: serde_json::Map::new(),
        child_s: 0.0,
        input_sha256: BTreeMap::from([("audio".into(), "ab".repeat(32))]),
        cached: None,
    }
}

#[tokio::test]
async fn a_job_accepted_finished_is_stored_to_expire_not_queued_and_its_end_announced() {
    let mut f = fixture().await;
    let client = redis::Client::open(f._server.url.as_str()).unwrap();
    let endings = Endings::listen(client, f.lifecycle.keys());
    let mut ended = endings.subscribe();
    // The listener subscribes in the background: wait until Redis counts it.
    let channel = f.lifecycle.keys().ended();
    for _ in 0..100 {
        let (_, n): (String, i64) = redis::cmd("PUBSUB")
            .arg("NUMSUB")
            .arg(&channel)
            .query_async(&mut f.conn)
            .await
            .unwrap();
        if n > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut job = job();
    job.cached = Some(Cached {
        job: uuid::Uuid::new_v4(),
    });
    job.transition(JobState::Completed, None, Some("from the cache".into()));
    assert!(matches!(
        f.lifecycle.accept(&job, None).await.unwrap(),
        Accepted::New
    ));
    let stored = f.state(&job).await;
    assert_eq!(stored.state, JobState::Completed);
    assert_eq!(stored.cached, job.cached);
    let ttl: i64 = f
        .manager
        .clone()
        .ttl(f.lifecycle.keys().job(&job.id))
        .await
        .unwrap();
    assert!(ttl > 0, "a finished record expires (ttl {ttl})");
    let queued = f
        .queue
        .next(&mut f.conn, "worker-a", Duration::from_millis(100))
        .await
        .unwrap();
    assert!(queued.is_none(), "a finished job is not queued");
    assert_eq!(f.events().await, 1, "its webhook event is queued");
    let announced = tokio::time::timeout(Duration::from_secs(5), ended.recv())
        .await
        .expect("the end is announced")
        .unwrap();
    assert_eq!(announced, job.id);
}

#[tokio::test]
async fn a_completion_records_the_inputs_hashes() {
    let (f, job, held) = running().await;
    let done = f.finish(&held, completed()).await.unwrap();
    assert_eq!(done.state, JobState::Completed);
    assert_eq!(
        f.state(&job).await.input_sha256.get("audio"),
        Some(&"ab".repeat(32))
    );
}

#[tokio::test]
async fn a_cancelled_job_cannot_be_completed() {
    let (f, job, held) = running().await;
    assert!(matches!(
        f.lifecycle.cancel(&job.id).await.unwrap(),
        Some(Cancel::Requested(_))
    ));
    assert!(f.finish(&held, Ending::Cancelled).await.is_ok());
    let refused = f.finish(&held, completed()).await;
    assert_eq!(refused.unwrap_err(), "CANCELLED");
    let stored = f.state(&job).await;
    assert_eq!(stored.state, JobState::Cancelled);
    assert!(stored.outputs.is_empty());
    assert_eq!(
        f.events().await,
        1,
        "one job.cancelled event, written with the state"
    );
}

#[tokio::test]
async fn a_job_held_by_another_worker_cannot_be_started_or_finished_by_this_one() {
    let (f, job, held) = running().await;
    let before = f.raw(&job).await;

    let other = f.lifecycle.start(&held.delivery, "worker-b").await.unwrap();
    assert!(
        matches!(&other, Start::Skipped(why) if why.contains("another worker")),
        "a start by a worker that does not hold the entry is refused"
    );
    let mut stolen = Held {
        job: held.job.clone(),
        delivery: held.delivery.clone(),
        consumer: "worker-b".into(),
        started: Instant::now(),
    };
    let refused = f.finish(&stolen, completed()).await;
    assert!(refused.unwrap_err().contains("another worker"));
    assert_eq!(f.raw(&job).await, before, "nothing was written");

    // The holder's own outcome for an attempt that is not the current one is refused too.
    stolen.consumer = "worker-a".into();
    stolen.job.attempts += 1;
    assert!(f.finish(&stolen, completed()).await.is_err());
    assert!(f.finish(&held, completed()).await.is_ok());
    assert_eq!(f.state(&job).await.state, JobState::Completed);
}

#[tokio::test]
async fn a_completed_job_cannot_be_cancelled() {
    let (f, job, held) = running().await;
    assert!(f.finish(&held, completed()).await.is_ok());
    assert!(matches!(
        f.lifecycle.cancel(&job.id).await.unwrap(),
        Some(Cancel::Refused(JobState::Completed))
    ));
    assert_eq!(f.state(&job).await.state, JobState::Completed);
    assert_eq!(f.events().await, 1, "only the job.completed event");
}

#[tokio::test]
async fn a_pending_cancel_writes_its_event_with_the_state_and_the_entry_is_dropped_unrun() {
    let mut f = fixture().await;
    let job = f.accepted().await;
    assert!(matches!(
        f.lifecycle.cancel(&job.id).await.unwrap(),
        Some(Cancel::Cancelled(_))
    ));
    assert_eq!(f.events().await, 1);
    let delivery = f.next("worker-a").await;
    assert!(matches!(
        f.lifecycle.start(&delivery, "worker-a").await.unwrap(),
        Start::Skipped(_)
    ));
    let stored = f.state(&job).await;
    assert_eq!((stored.state, stored.attempts), (JobState::Cancelled, 0));
    let (depths, _) = f.queue.depth(&mut f.conn).await.unwrap();
    assert!(
        depths.iter().all(|(_, n)| *n == 0),
        "the entry is acknowledged: {depths:?}"
    );
}

#[tokio::test]
async fn a_handed_back_job_is_queued_again_at_once_and_the_attempt_does_not_count() {
    let (mut f, job, held) = running().await;
    assert_eq!(held.job.attempts, 1);
    let back = f.finish(&held, Ending::HandedBack).await;
    assert_eq!(back.unwrap().state, JobState::Pending);
    let stored = f.state(&job).await;
    assert_eq!((stored.state, stored.attempts), (JobState::Pending, 0));
    assert!(stored.error.is_none() && stored.next_attempt_at.is_none());
    assert_eq!(f.events().await, 0, "a hand-back is not an event");
    // No backoff and no reclaim timeout: the next read takes it.
    let again = f.started("worker-b").await;
    assert_eq!((again.job.id, again.job.attempts), (job.id, 1));
}

#[tokio::test]
async fn a_retryable_failure_is_scheduled_and_the_last_one_is_dead() {
    let mut f = fixture().await;
    let job = f.accepted().await;
    for attempt in 1..=job.max_attempts {
        let held = f.started("worker-a").await;
        assert_eq!(held.job.attempts, attempt);
        let error = JobError::new(ErrorCode::StorageFailed, "download", "storage down");
        let after = f.finish(&held, Ending::Failed(error)).await.unwrap();
        if attempt < job.max_attempts {
            assert_eq!(after.state, JobState::Pending);
            let promoted = f.queue.promote_due(&mut f.conn, u64::MAX).await.unwrap();
            assert_eq!(promoted, 1, "the retry was scheduled with the state");
        } else {
            assert_eq!(after.state, JobState::Dead);
        }
    }
    let metrics: BTreeMap<String, String> = f
        .manager
        .clone()
        .hgetall(f.lifecycle.keys().metrics())
        .await
        .unwrap();
    assert_eq!(metrics["mediahost_job_retries_total"], "2", "{metrics:?}");
    assert_eq!(
        metrics["mediahost_job_failures_total{code=\"STORAGE_FAILED\"}"],
        "3"
    );
}

#[tokio::test]
async fn progress_is_merged_on_read_without_rewriting_the_record() {
    use crate::job::{OutputPhase, OutputProgress, Progress};
    let (f, job, held) = running().await;
    let before = f.raw(&job).await;
    let output = |state, progress| OutputProgress { state, progress };
    let mine = Progress {
        fraction: 0.4321,
        outputs: [
            ("720p".to_owned(), output(OutputPhase::Completed, 1.0)),
            ("1080p".to_owned(), output(OutputPhase::Running, 0.4012)),
        ]
        .into(),
    };
    f.lifecycle
        .progress(&job.id, "worker-a", &mine)
        .await
        .unwrap();
    let other = Progress {
        fraction: 0.9,
        outputs: [("720p".to_owned(), output(OutputPhase::Failed, 0.0))].into(),
    };
    f.lifecycle
        .progress(&job.id, "worker-b", &other)
        .await
        .unwrap();
    assert_eq!(f.raw(&job).await, before);
    let seen = f.state(&job).await;
    assert_eq!(seen.progress, 0.43, "only the holder's progress counts");
    assert_eq!(
        seen.output_progress["1080p"],
        output(OutputPhase::Running, 0.4),
        "each output's progress is merged in"
    );
    assert_eq!(seen.output_progress["720p"].state, OutputPhase::Completed);
    f.finish(&held, completed()).await.unwrap();
    let done = f.state(&job).await;
    assert_eq!(done.progress, 1.0);
    assert!(
        done.output_progress.is_empty(),
        "a finished job's outputs carry their own state"
    );
}

/// Whether a job's log ends with the line that says it reached its limit.
fn ends_at_the_limit(logs: &[LogEntry]) -> bool {
    logs.last()
        .is_some_and(|l| l.message.starts_with("log limit reached"))
}

#[tokio::test]
async fn the_job_log_is_capped_per_line_and_per_job() {
    let f = fixture().await;
    let id = Uuid::new_v4();
    f.jobs.log(&id, "ffmpeg", "x".repeat(100_000)).await;
    let first = &f.jobs.logs(&id).await.unwrap()[0];
    assert!(
        first.message.len() < 16 * 1024 + 64,
        "{}",
        first.message.len()
    );
    for _ in 0..3000 {
        f.jobs.log(&id, "preset", "").await;
    }
    let logs = f.jobs.logs(&id).await.unwrap();
    assert_eq!(logs.len(), crate::job::LOG_LINES, "empty lines count");
    assert!(ends_at_the_limit(&logs));

    let big = Uuid::new_v4();
    for _ in 0..200 {
        f.jobs.log(&big, "ffmpeg", "y".repeat(16 * 1024)).await;
    }
    let logs = f.jobs.logs(&big).await.unwrap();
    let bytes: usize = logs.iter().map(|l| l.message.len()).sum();
    assert!(bytes <= crate::job::LOG_BYTES, "{bytes}");
    assert!(logs.len() < 100);
    assert!(ends_at_the_limit(&logs));
}
