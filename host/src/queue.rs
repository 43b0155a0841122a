//! The job queue: one Redis stream per priority, each with one consumer group shared by every
//! worker process, and a sorted set of retries waiting for their backoff to pass.
//!
//! At-least-once: an entry stays in its group's pending list until the worker that holds it
//! acknowledges it, after recording a terminal state or scheduling a retry (in the same
//! transaction). A worker renews its claim while it works; an entry whose holder stopped renewing
//! (a crashed or killed worker) is claimed by another worker after `reclaim_after`.
//!
//! Workers take high before normal before low, FIFO within one. A retry waits in a sorted set
//! (scored by when it is due) until a worker moves it back to its stream.
//!
//! Not here: putting a job in the queue, acknowledging it or scheduling its retry: each is part
//! of a lifecycle transition (`lifecycle`).

use std::time::Duration;

use redis::Value;
use redis::aio::MultiplexedConnection;
use uuid::Uuid;

use crate::job::Priority;
use crate::lifecycle::Keys;
use crate::lifecycle::keys::GROUP;

/// A job handed to this worker, with the stream entry that must be acknowledged.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub entry: String,
    pub job_id: Uuid,
    pub priority: Priority,
    /// True when the entry was taken over from a worker that stopped renewing it.
    pub reclaimed: bool,
}

#[derive(Clone)]
pub struct Queue {
    keys: Keys,
    reclaim_after: Duration,
}

impl Queue {
    pub fn new(prefix: &str, reclaim_after: Duration) -> Self {
        Self {
            keys: Keys::new(prefix),
            reclaim_after,
        }
    }

    fn stream(&self, priority: Priority) -> String {
        self.keys.stream(priority)
    }

    fn priority_of(&self, stream: &str) -> Option<Priority> {
        Priority::ALL
            .into_iter()
            .find(|p| self.stream(*p) == stream)
    }

    pub fn reclaim_after(&self) -> Duration {
        self.reclaim_after
    }

    /// Creates the streams and their consumer groups if they do not exist yet.
    pub async fn ensure_group(
        &self,
        conn: &mut impl redis::aio::ConnectionLike,
    ) -> redis::RedisResult<()> {
        for priority in Priority::ALL {
            let created: redis::RedisResult<()> = redis::cmd("XGROUP")
                .arg("CREATE")
                .arg(self.stream(priority))
                .arg(GROUP)
                .arg("0")
                .arg("MKSTREAM")
                .query_async(conn)
                .await;
            match created {
                Err(e) if e.code() == Some("BUSYGROUP") => {}
                other => other?,
            }
        }
        Ok(())
    }

    /// Adds queueing a job again to a pipeline (an entry read together with a higher one).
    fn enqueue_into(&self, pipe: &mut redis::Pipeline, job_id: &Uuid, priority: Priority) {
        pipe.cmd("XADD")
            .arg(self.stream(priority))
            .arg("*")
            .arg("job")
            .arg(job_id.to_string())
            .ignore();
    }

    /// Takes the next job: first one abandoned by a dead worker, else a new one by priority,
    /// waiting up to `block` for one.
    pub async fn next(
        &self,
        conn: &mut MultiplexedConnection,
        consumer: &str,
        block: Duration,
    ) -> redis::RedisResult<Option<Delivery>> {
        for priority in Priority::ALL {
            let claimed: Value = redis::cmd("XAUTOCLAIM")
                .arg(self.stream(priority))
                .arg(GROUP)
                .arg(consumer)
                .arg(self.reclaim_after.as_millis() as u64)
                .arg("0-0")
                .arg("COUNT")
                .arg(1)
                .query_async(conn)
                .await?;
            if let Some((entry, job_id)) = autoclaim_entry(&claimed) {
                return Ok(Some(Delivery {
                    entry,
                    job_id,
                    priority,
                    reclaimed: true,
                }));
            }
        }
        for priority in Priority::ALL {
            if let Some(d) = self.read(conn, consumer, &[priority], None).await?.pop() {
                return Ok(Some(d));
            }
        }
        // Nothing waiting: block on all three. Entries of two priorities can arrive in the same
        // wake-up; the highest runs and the others go back to the end of their stream.
        let mut got = self
            .read(conn, consumer, &Priority::ALL, Some(block))
            .await?;
        got.sort_by_key(|d| d.priority as u8);
        let mut got = got.into_iter();
        let first = got.next();
        for extra in got {
            let mut pipe = redis::pipe();
            pipe.atomic();
            self.enqueue_into(&mut pipe, &extra.job_id, extra.priority);
            self.ack_into(&mut pipe, &extra);
            pipe.query_async::<()>(conn).await?;
        }
        Ok(first)
    }

    async fn read(
        &self,
        conn: &mut MultiplexedConnection,
        consumer: &str,
        priorities: &[Priority],
        block: Option<Duration>,
    ) -> redis::RedisResult<Vec<Delivery>> {
        let mut cmd = redis::cmd("XREADGROUP");
        cmd.arg("GROUP")
            .arg(GROUP)
            .arg(consumer)
            .arg("COUNT")
            .arg(1);
        if let Some(block) = block {
            cmd.arg("BLOCK").arg(block.as_millis() as u64);
        }
        cmd.arg("STREAMS");
        for p in priorities {
            cmd.arg(self.stream(*p));
        }
        for _ in priorities {
            cmd.arg(">");
        }
        let read: Value = cmd.query_async(conn).await?;
        Ok(readgroup_entries(&read)
            .into_iter()
            .filter_map(|(stream, entry, job_id)| {
                Some(Delivery {
                    entry,
                    job_id,
                    priority: self.priority_of(&stream)?,
                    reclaimed: false,
                })
            })
            .collect())
    }

    /// Renews this worker's claim so nobody reclaims a job that is still running.
    pub async fn renew(
        &self,
        conn: &mut impl redis::aio::ConnectionLike,
        consumer: &str,
        delivery: &Delivery,
    ) -> redis::RedisResult<()> {
        redis::cmd("XCLAIM")
            .arg(self.stream(delivery.priority))
            .arg(GROUP)
            .arg(consumer)
            .arg(0)
            .arg(&delivery.entry)
            .arg("JUSTID")
            .query_async::<Value>(conn)
            .await
            .map(|_| ())
    }

    /// Gives back an entry this worker read but will not start (it is stopping): the job goes to
    /// the end of its stream at once, for another worker.
    pub async fn give_back(
        &self,
        conn: &mut impl redis::aio::ConnectionLike,
        delivery: &Delivery,
    ) -> redis::RedisResult<()> {
        let mut pipe = redis::pipe();
        pipe.atomic();
        self.enqueue_into(&mut pipe, &delivery.job_id, delivery.priority);
        self.ack_into(&mut pipe, delivery);
        pipe.query_async(conn).await
    }

    /// Adds acknowledging and removing a delivery's entry to a pipeline.
    fn ack_into(&self, pipe: &mut redis::Pipeline, delivery: &Delivery) {
        let stream = self.stream(delivery.priority);
        pipe.cmd("XACK")
            .arg(&stream)
            .arg(GROUP)
            .arg(&delivery.entry)
            .ignore()
            .cmd("XDEL")
            .arg(&stream)
            .arg(&delivery.entry)
            .ignore();
    }

    /// Moves retries that are due back to their streams, atomically (several workers run this).
    pub async fn promote_due(
        &self,
        conn: &mut impl redis::aio::ConnectionLike,
        now_unix_ms: u64,
    ) -> redis::RedisResult<u64> {
        crate::lifecycle::PROMOTE
            .key(self.keys.delayed())
            .key(self.stream(Priority::High))
            .key(self.stream(Priority::Normal))
            .key(self.stream(Priority::Low))
            .arg(now_unix_ms)
            .invoke_async(conn)
            .await
    }

    /// Takes (or renews) one of `limit` permits to run a job, shared by every worker process. A
    /// permit lapses after `reclaim_after` unless renewed, so a dead worker's permit comes back.
    pub async fn acquire_run_permit(
        &self,
        conn: &mut impl redis::aio::ConnectionLike,
        consumer: &str,
        limit: usize,
        now_unix_ms: u64,
    ) -> redis::RedisResult<bool> {
        let granted: i64 = crate::lifecycle::PERMIT
            .key(self.keys.running())
            .arg(now_unix_ms)
            .arg(now_unix_ms + self.reclaim_after.as_millis() as u64)
            .arg(consumer)
            .arg(limit)
            .invoke_async(conn)
            .await?;
        Ok(granted == 1)
    }

    pub async fn release_run_permit(
        &self,
        conn: &mut impl redis::aio::ConnectionLike,
        consumer: &str,
    ) -> redis::RedisResult<()> {
        redis::cmd("ZREM")
            .arg(self.keys.running())
            .arg(consumer)
            .query_async::<i64>(conn)
            .await
            .map(|_| ())
    }

    /// Entries per priority (waiting plus held by workers), and retries waiting for backoff.
    pub async fn depth(
        &self,
        conn: &mut impl redis::aio::ConnectionLike,
    ) -> redis::RedisResult<(Vec<(Priority, u64)>, u64)> {
        let mut pipe = redis::pipe();
        for p in Priority::ALL {
            pipe.cmd("XLEN").arg(self.stream(p));
        }
        pipe.cmd("ZCARD").arg(self.keys.delayed());
        let counts: Vec<u64> = pipe.query_async(conn).await?;
        let delayed = counts.last().copied().unwrap_or(0);
        Ok((Priority::ALL.into_iter().zip(counts).collect(), delayed))
    }
}

fn text(v: &Value) -> Option<String> {
    match v {
        Value::BulkString(b) => String::from_utf8(b.clone()).ok(),
        Value::SimpleString(s) => Some(s.clone()),
        _ => None,
    }
}

/// One `[id, [field, value, ...]]` stream entry: its id and job.
fn entry(v: &Value) -> Option<(String, Uuid)> {
    let Value::Array(parts) = v else { return None };
    let id = text(parts.first()?)?;
    let Value::Array(fields) = parts.get(1)? else {
        return None;
    };
    let job = fields
        .chunks(2)
        .find(|kv| kv.first().and_then(text).as_deref() == Some("job"))
        .and_then(|kv| kv.get(1).and_then(text))?;
    Some((id, job.parse().ok()?))
}

/// XAUTOCLAIM answers `[next-cursor, [entries...], [deleted ids...]]`.
fn autoclaim_entry(v: &Value) -> Option<(String, Uuid)> {
    let Value::Array(parts) = v else { return None };
    let Value::Array(entries) = parts.get(1)? else {
        return None;
    };
    entries.iter().find_map(entry)
}

/// XREADGROUP answers `[[stream, [entries...]], ...]` (RESP2) or a map (RESP3).
fn readgroup_entries(v: &Value) -> Vec<(String, String, Uuid)> {
    let streams: Vec<(&Value, &Value)> = match v {
        Value::Array(streams) => streams
            .iter()
            .filter_map(|s| match s {
                Value::Array(pair) => Some((pair.first()?, pair.get(1)?)),
                _ => None,
            })
            .collect(),
        Value::Map(pairs) => pairs.iter().map(|(k, v)| (k, v)).collect(),
        _ => return Vec::new(),
    };
    streams
        .into_iter()
        .filter_map(|(name, entries)| {
            let name = text(name)?;
            let Value::Array(list) = entries else {
                return None;
            };
            let (id, job) = list.iter().find_map(entry)?;
            Some((name, id, job))
        })
        .collect()
}
