//! Job webhooks, delivered the Standard Webhooks way (<https://www.standardwebhooks.com/>).
//!
//! When a job with a `webhook` URL ends (`job.completed`, `job.failed`, `job.dead`,
//! `job.cancelled`), its worker writes the event into an outbox in Redis in the same transaction
//! that records the state, so an event is never lost between the two. Every worker process runs
//! a delivery loop over the outbox: at least once, each event under one stable `webhook-id`
//! (a duplicate carries the same id), signed with every configured secret (`webhook-signature:
//! v1,<sig> v1,<sig>` during a rotation), retried with exponential backoff until it is accepted
//! (2xx), the receiver answers `410 Gone` (the URL is then disabled for later events too), or
//! the attempts run out.
//!
//! Not here: what a job's outcome is (`worker`); the payload's job fields come from the record.

use std::time::{Duration, SystemTime};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, Mac};
use redis::AsyncCommands;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::Sha256;

use crate::job::{Job, JobState, unix_ms};
use crate::metrics::Metrics;

/// Deliveries of one event before it is given up.
const MAX_DELIVERIES: u32 = 12;
/// How long a process holds an event it is delivering before another may take it over.
const LEASE: Duration = Duration::from_secs(30);

/// A signing secret: `whsec_` and the base64 of its bytes.
#[derive(Clone)]
pub struct Secret(Vec<u8>);

impl Secret {
    pub fn parse(text: &str) -> Result<Self, String> {
        let encoded = text
            .trim()
            .strip_prefix("whsec_")
            .ok_or_else(|| "a webhook secret starts with whsec_ followed by base64".to_owned())?;
        let bytes = BASE64
            .decode(encoded)
            .map_err(|e| format!("the webhook secret is not valid base64: {e}"))?;
        if bytes.len() < 24 {
            return Err("a webhook secret needs at least 24 bytes".into());
        }
        Ok(Self(bytes))
    }

    pub fn generate() -> String {
        let mut bytes = [0u8; 32];
        rand::fill(&mut bytes[..]);
        format!("whsec_{}", BASE64.encode(bytes))
    }

    fn sign(&self, id: &str, timestamp: u64, body: &[u8]) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).expect("hmac takes any key");
        mac.update(format!("{id}.{timestamp}.").as_bytes());
        mac.update(body);
        format!("v1,{}", BASE64.encode(mac.finalize().into_bytes()))
    }
}

/// The `webhook-signature` header: one `v1,` signature per secret, space-separated.
pub fn signature_header(secrets: &[Secret], id: &str, timestamp: u64, body: &[u8]) -> String {
    secrets
        .iter()
        .map(|s| s.sign(id, timestamp, body))
        .collect::<Vec<_>>()
        .join(" ")
}

/// An event waiting in the outbox.
#[derive(Debug, Serialize, Deserialize)]
struct Pending {
    url: String,
    body: String,
    deliveries: u32,
}

/// The event type for a job's terminal state.
pub fn event_type(state: JobState) -> Option<&'static str> {
    match state {
        JobState::Completed => Some("job.completed"),
        JobState::Failed => Some("job.failed"),
        JobState::Dead => Some("job.dead"),
        JobState::Cancelled => Some("job.cancelled"),
        JobState::Pending | JobState::Processing => None,
    }
}

#[derive(Clone)]
pub struct Outbox {
    redis: redis::aio::ConnectionManager,
    prefix: String,
}

impl Outbox {
    pub fn new(redis: redis::aio::ConnectionManager, prefix: &str) -> Self {
        Self {
            redis,
            prefix: prefix.to_owned(),
        }
    }

    fn due_key(&self) -> String {
        crate::lifecycle::Keys::new(&self.prefix).webhooks_due()
    }

    fn event_key(&self, id: &str) -> String {
        crate::lifecycle::Keys::new(&self.prefix).webhook_event(id)
    }

    fn disabled_key(&self, url: &str) -> String {
        crate::lifecycle::Keys::new(&self.prefix).webhooks_disabled(url)
    }

    /// Adds a job's terminal event to a pipeline (the one recording the state), if it has a
    /// webhook. The event id is stable for the job and state, so even a repeated write is one
    /// event to the receiver.
    pub fn enqueue_into(&self, pipe: &mut redis::Pipeline, job: &Job, view: Value) {
        let (Some(url), Some(kind)) = (&job.webhook, event_type(job.state)) else {
            return;
        };
        let id = format!(
            "msg_{}_{}",
            job.id.simple(),
            job.state.as_str().to_lowercase()
        );
        let body = json!({
            "type": kind,
            "timestamp": crate::job::now_rfc3339(),
            "data": view,
        });
        let pending = Pending {
            url: url.clone(),
            body: body.to_string(),
            deliveries: 0,
        };
        pipe.set(
            self.event_key(&id),
            serde_json::to_string(&pending).expect("events serialize"),
        )
        .ignore()
        .zadd(self.due_key(), &id, unix_ms(SystemTime::now()))
        .ignore();
    }

    /// Takes one due event, leasing it so no other process delivers it at the same time.
    async fn take(&self) -> redis::RedisResult<Option<(String, Pending)>> {
        let now = unix_ms(SystemTime::now());
        let id: Option<String> = redis::Script::new(
            r"
            local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, 1)
            if #due == 0 then return false end
            redis.call('ZADD', KEYS[1], ARGV[2], due[1])
            return due[1]",
        )
        .key(self.due_key())
        .arg(now)
        .arg(now + LEASE.as_millis() as u64)
        .invoke_async(&mut self.redis.clone())
        .await?;
        let Some(id) = id else { return Ok(None) };
        let raw: Option<String> = self.redis.clone().get(self.event_key(&id)).await?;
        match raw.and_then(|r| serde_json::from_str(&r).ok()) {
            Some(p) => Ok(Some((id, p))),
            None => {
                self.forget(&id).await?;
                Ok(None)
            }
        }
    }

    async fn forget(&self, id: &str) -> redis::RedisResult<()> {
        redis::pipe()
            .atomic()
            .zrem(self.due_key(), id)
            .ignore()
            .del(self.event_key(id))
            .ignore()
            .query_async(&mut self.redis.clone())
            .await
    }

    async fn retry_later(&self, id: &str, mut pending: Pending) -> redis::RedisResult<()> {
        pending.deliveries += 1;
        let backoff = Duration::from_secs(1)
            .saturating_mul(2u32.saturating_pow(pending.deliveries.min(16)))
            .min(Duration::from_secs(300));
        let due = unix_ms(SystemTime::now() + backoff);
        redis::pipe()
            .atomic()
            .set(
                self.event_key(id),
                serde_json::to_string(&pending).expect("events serialize"),
            )
            .ignore()
            .zadd(self.due_key(), id, due)
            .ignore()
            .query_async(&mut self.redis.clone())
            .await
    }
}

/// Delivers due events until the process stops.
pub async fn deliver_forever(outbox: Outbox, secrets: Vec<Secret>, metrics: Metrics) {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("an HTTP client");
    loop {
        match outbox.take().await {
            Ok(Some((id, pending))) => {
                deliver(&outbox, &http, &secrets, &metrics, id, pending).await
            }
            Ok(None) => tokio::time::sleep(Duration::from_millis(200)).await,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the webhook outbox; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

async fn deliver(
    outbox: &Outbox,
    http: &reqwest::Client,
    secrets: &[Secret],
    metrics: &Metrics,
    id: String,
    pending: Pending,
) {
    let disabled: bool = outbox
        .redis
        .clone()
        .exists(outbox.disabled_key(&pending.url))
        .await
        .unwrap_or(false);
    if disabled {
        metrics
            .add(
                "mediahost_webhook_deliveries_total{result=\"disabled\"}",
                1.0,
            )
            .await;
        let _ = outbox.forget(&id).await;
        return;
    }
    let timestamp = unix_ms(SystemTime::now()) / 1000;
    let sent = http
        .post(&pending.url)
        .header("content-type", "application/json")
        .header("webhook-id", &id)
        .header("webhook-timestamp", timestamp.to_string())
        .header(
            "webhook-signature",
            signature_header(secrets, &id, timestamp, pending.body.as_bytes()),
        )
        .body(pending.body.clone())
        .send()
        .await;
    let (result, stored) = match &sent {
        Ok(r) if r.status().is_success() => ("delivered", outbox.forget(&id).await),
        Ok(r) if r.status() == reqwest::StatusCode::GONE => {
            tracing::info!(url = %pending.url, "webhook receiver answered 410 Gone; disabling the URL");
            let _: redis::RedisResult<()> = outbox
                .redis
                .clone()
                .set(outbox.disabled_key(&pending.url), 1)
                .await;
            ("gone", outbox.forget(&id).await)
        }
        _ if pending.deliveries + 1 >= MAX_DELIVERIES => {
            tracing::warn!(event = %id, url = %pending.url, "webhook given up after {MAX_DELIVERIES} deliveries");
            ("given_up", outbox.forget(&id).await)
        }
        failed => {
            let why = match failed {
                Ok(r) => format!("answered {}", r.status()),
                Err(e) => e.to_string(),
            };
            tracing::debug!(event = %id, url = %pending.url, %why, "webhook delivery failed; retrying");
            ("retry", outbox.retry_later(&id, pending).await)
        }
    };
    metrics
        .add(
            &format!("mediahost_webhook_deliveries_total{{result=\"{result}\"}}"),
            1.0,
        )
        .await;
    if let Err(e) = stored {
        tracing::warn!(event = %id, error = %e, "could not update the webhook outbox");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_must_be_whsec_base64_of_enough_bytes() {
        assert!(Secret::parse("nope").is_err());
        assert!(Secret::parse("whsec_!!!").is_err());
        assert!(Secret::parse("whsec_c2hvcnQ=").is_err());
        assert!(Secret::parse(&Secret::generate()).is_ok());
    }

    #[test]
    fn a_rotation_signs_with_every_secret() {
        let a = Secret::parse(&Secret::generate()).unwrap();
        let b = Secret::parse(&Secret::generate()).unwrap();
        let header = signature_header(&[a.clone(), b], "msg_1", 1_700_000_000, b"{}");
        let parts: Vec<&str> = header.split(' ').collect();
        assert_eq!(parts.len(), 2);
        assert!(parts.iter().all(|p| p.starts_with("v1,")));
        assert_eq!(parts[0], a.sign("msg_1", 1_700_000_000, b"{}"));
    }
}
