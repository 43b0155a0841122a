//! `GET /v1/queue`: how many jobs wait per priority, how many workers hold, how many retries
//! wait for their backoff, read live from Redis (the dashboard's queue panel).
//!
//! A priority's stream holds an entry from enqueueing until a worker acknowledges it, and its
//! consumer group's pending list holds the entries workers have taken and not acknowledged: the
//! difference is what still waits for a worker.
//!
//! Not here: the queue itself (`queue`), the Prometheus gauges (`metrics`).

use axum::Json;
use axum::extract::State;
use mediahost_api::{PendingByPriority, QueueDepth};

use super::SharedState;
use crate::error::{ApiError, ErrorCode};
use crate::job::Priority;
use crate::lifecycle::keys::GROUP;

#[utoipa::path(
    get, path = "/v1/queue", tag = "jobs",
    responses(
        (status = 200, description = "Jobs waiting per priority, held by workers, waiting to retry", body = mediahost_api::QueueDepth),
        (status = "default", description = "A problem document (RFC 9457) with a stable `code`", body = mediahost_api::Problem, content_type = "application/problem+json"),
    ),
    security(("api_token" = []))
)]
pub async fn depth(State(state): State<SharedState>) -> Result<Json<QueueDepth>, ApiError> {
    let keys = state.lifecycle.keys();
    let mut conn = state.jobs.connection();
    let failed = |e: redis::RedisError| {
        ApiError::new(
            ErrorCode::QueueUnavailable,
            format!("the queue is kept in Redis, which failed: {e}"),
        )
    };
    let mut pending = PendingByPriority::default();
    let mut processing = 0u64;
    for priority in Priority::ALL {
        let stream = keys.stream(priority);
        let queued: u64 = redis::cmd("XLEN")
            .arg(&stream)
            .query_async(&mut conn)
            .await
            .map_err(failed)?;
        // [count, first id, last id, consumers]; no group yet (no worker started): none held.
        let held = match redis::cmd("XPENDING")
            .arg(&stream)
            .arg(GROUP)
            .query_async::<redis::Value>(&mut conn)
            .await
        {
            Ok(redis::Value::Array(summary)) => match summary.first() {
                Some(redis::Value::Int(n)) => u64::try_from(*n).unwrap_or(0),
                _ => 0,
            },
            Ok(_) => 0,
            Err(e) if e.code() == Some("NOGROUP") => 0,
            Err(e) => return Err(failed(e)),
        };
        processing += held;
        let waiting = queued.saturating_sub(held);
        match priority {
            Priority::High => pending.high = waiting,
            Priority::Normal => pending.normal = waiting,
            Priority::Low => pending.low = waiting,
        }
    }
    let delayed: u64 = redis::cmd("ZCARD")
        .arg(keys.delayed())
        .query_async(&mut conn)
        .await
        .map_err(failed)?;
    Ok(Json(QueueDepth {
        pending,
        processing,
        delayed,
    }))
}
