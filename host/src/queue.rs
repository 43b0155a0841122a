//! The job queue: a Redis stream with one consumer group shared by every worker process.
//!
//! At-least-once: an entry stays in the group's pending list until the worker that holds it
//! acknowledges it after recording a terminal state. A worker renews its claim while it works;
//! an entry whose holder stopped renewing (a crashed or killed worker) is claimed by another
//! worker after `reclaim_after`.

use std::time::Duration;

use redis::Value;
use redis::aio::MultiplexedConnection;
use uuid::Uuid;

const GROUP: &str = "workers";

/// A job handed to this worker, with the stream entry that must be acknowledged.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub entry: String,
    pub job_id: Uuid,
    /// True when the entry was taken over from a worker that stopped renewing it.
    pub reclaimed: bool,
}

#[derive(Clone)]
pub struct Queue {
    stream: String,
    reclaim_after: Duration,
}

impl Queue {
    pub fn new(prefix: &str, reclaim_after: Duration) -> Self {
        Self {
            stream: format!("{prefix}:queue"),
            reclaim_after,
        }
    }

    pub fn stream(&self) -> &str {
        &self.stream
    }

    pub fn reclaim_after(&self) -> Duration {
        self.reclaim_after
    }

    /// Creates the stream and the consumer group if they do not exist yet.
    pub async fn ensure_group(
        &self,
        conn: &mut impl redis::aio::ConnectionLike,
    ) -> redis::RedisResult<()> {
        let created: redis::RedisResult<()> = redis::cmd("XGROUP")
            .arg("CREATE")
            .arg(&self.stream)
            .arg(GROUP)
            .arg("0")
            .arg("MKSTREAM")
            .query_async(conn)
            .await;
        match created {
            Err(e) if e.code() == Some("BUSYGROUP") => Ok(()),
            other => other,
        }
    }

    /// Adds the enqueue command to a pipeline (so a job record and its entry land together).
    pub fn enqueue_into(&self, pipe: &mut redis::Pipeline, job_id: &Uuid) {
        pipe.cmd("XADD")
            .arg(&self.stream)
            .arg("*")
            .arg("job")
            .arg(job_id.to_string())
            .ignore();
    }

    /// Takes the next job: first one abandoned by a dead worker, else a new one, waiting up to
    /// `block` for it.
    pub async fn next(
        &self,
        conn: &mut MultiplexedConnection,
        consumer: &str,
        block: Duration,
    ) -> redis::RedisResult<Option<Delivery>> {
        let claimed: Value = redis::cmd("XAUTOCLAIM")
            .arg(&self.stream)
            .arg(GROUP)
            .arg(consumer)
            .arg(self.reclaim_after.as_millis() as u64)
            .arg("0-0")
            .arg("COUNT")
            .arg(1)
            .query_async(conn)
            .await?;
        if let Some(d) = autoclaim_entry(&claimed) {
            return Ok(Some(Delivery {
                reclaimed: true,
                ..d
            }));
        }
        let read: Value = redis::cmd("XREADGROUP")
            .arg("GROUP")
            .arg(GROUP)
            .arg(consumer)
            .arg("COUNT")
            .arg(1)
            .arg("BLOCK")
            .arg(block.as_millis() as u64)
            .arg("STREAMS")
            .arg(&self.stream)
            .arg(">")
            .query_async(conn)
            .await?;
        Ok(readgroup_entry(&read))
    }

    /// Renews this worker's claim so nobody reclaims a job that is still running.
    pub async fn renew(
        &self,
        conn: &mut impl redis::aio::ConnectionLike,
        consumer: &str,
        entry: &str,
    ) -> redis::RedisResult<()> {
        redis::cmd("XCLAIM")
            .arg(&self.stream)
            .arg(GROUP)
            .arg(consumer)
            .arg(0)
            .arg(entry)
            .arg("JUSTID")
            .query_async::<Value>(conn)
            .await
            .map(|_| ())
    }

    /// Acknowledges and removes a finished entry.
    pub async fn ack(
        &self,
        conn: &mut impl redis::aio::ConnectionLike,
        entry: &str,
    ) -> redis::RedisResult<()> {
        redis::pipe()
            .cmd("XACK")
            .arg(&self.stream)
            .arg(GROUP)
            .arg(entry)
            .ignore()
            .cmd("XDEL")
            .arg(&self.stream)
            .arg(entry)
            .ignore()
            .query_async(conn)
            .await
    }

    /// Entries waiting to be read plus entries held by workers.
    pub async fn depth(
        &self,
        conn: &mut impl redis::aio::ConnectionLike,
    ) -> redis::RedisResult<u64> {
        redis::cmd("XLEN").arg(&self.stream).query_async(conn).await
    }
}

fn text(v: &Value) -> Option<String> {
    match v {
        Value::BulkString(b) => String::from_utf8(b.clone()).ok(),
        Value::SimpleString(s) => Some(s.clone()),
        _ => None,
    }
}

/// One `[id, [field, value, ...]]` stream entry.
fn entry(v: &Value) -> Option<Delivery> {
    let Value::Array(parts) = v else { return None };
    let id = text(parts.first()?)?;
    let Value::Array(fields) = parts.get(1)? else {
        return None;
    };
    let job = fields
        .chunks(2)
        .find(|kv| kv.first().and_then(text).as_deref() == Some("job"))
        .and_then(|kv| kv.get(1).and_then(text))?;
    Some(Delivery {
        entry: id,
        job_id: job.parse().ok()?,
        reclaimed: false,
    })
}

/// XAUTOCLAIM answers `[next-cursor, [entries...], [deleted ids...]]`.
fn autoclaim_entry(v: &Value) -> Option<Delivery> {
    let Value::Array(parts) = v else { return None };
    let Value::Array(entries) = parts.get(1)? else {
        return None;
    };
    entries.iter().find_map(entry)
}

/// XREADGROUP answers `[[stream, [entries...]]]` (RESP2) or a map (RESP3).
fn readgroup_entry(v: &Value) -> Option<Delivery> {
    let streams: Vec<&Value> = match v {
        Value::Array(streams) => streams
            .iter()
            .filter_map(|s| match s {
                Value::Array(pair) => pair.get(1),
                _ => None,
            })
            .collect(),
        Value::Map(pairs) => pairs.iter().map(|(_, entries)| entries).collect(),
        _ => return None,
    };
    streams.into_iter().find_map(|entries| match entries {
        Value::Array(list) => list.iter().find_map(entry),
        _ => None,
    })
}
