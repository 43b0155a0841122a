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
//! Receivers are checked twice ([`UrlPolicy`]): at submit, and when a delivery connects, so a
//! name that resolved to a public address at submit but to loopback or cloud metadata later
//! (DNS rebinding) is refused; the connection goes only to the addresses that were checked. A
//! refused delivery is given up, not retried (`mediahost_webhook_deliveries_total{result=
//! "refused"}`).
//! Deliveries run concurrently, at most [`PER_RECEIVER`] to one `host:port` and [`IN_FLIGHT`] in
//! all, so a receiver that never answers holds up only its own events.
//!
//! Not here: what a job's outcome is (`worker`); the payload's job fields come from the record.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, Mac};
use ipnet::IpNet;
use mediahost_api::{WebhookEvent, WebhookEventType};
use redis::AsyncCommands;
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use tokio::sync::Semaphore;

use crate::job::{Job, unix_ms};
use crate::metrics::Metrics;

/// Deliveries of one event before it is given up.
const MAX_DELIVERIES: u32 = 12;
/// How long a process holds an event it is delivering before another may take it over.
const LEASE: Duration = Duration::from_secs(30);
/// Deliveries one process runs at once to one receiver (`host:port`).
pub const PER_RECEIVER: usize = 2;
/// Deliveries one process runs at once in all.
pub const IN_FLIGHT: usize = 32;
/// How long a receiver may take to answer one delivery.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(10);
/// How much later an event is tried again when its receiver already has [`PER_RECEIVER`]
/// deliveries in flight (not counted as a delivery).
const RECEIVER_BUSY: Duration = Duration::from_millis(500);

/// Which webhook receivers the host may connect to: any address except loopback, link-local
/// (cloud metadata lives at 169.254.169.254), unspecified, broadcast and multicast ones, unless
/// `--webhook-allow` names the host or a network holding the address.
#[derive(Debug, Default)]
pub struct UrlPolicy {
    hosts: Vec<String>,
    nets: Vec<IpNet>,
}

/// Why a webhook URL is not allowed; the message says what to do.
#[derive(Debug, thiserror::Error)]
pub enum UrlRefused {
    /// It is, or resolves to, an address webhooks may not reach.
    #[error("{0}")]
    Forbidden(String),
    /// Its name does not resolve; at delivery that is retried like a failed connection.
    #[error("{0}")]
    Unresolved(String),
}

impl UrlPolicy {
    /// Parses `--webhook-allow`: comma-separated host names, IP addresses and CIDRs.
    pub fn parse(list: Option<&str>) -> Result<Self, String> {
        let mut policy = Self::default();
        for item in list.unwrap_or("").split(',').map(str::trim) {
            if item.is_empty() {
                continue;
            }
            if let Ok(net) = item.parse::<IpNet>() {
                policy.nets.push(net);
            } else if let Ok(ip) = item.trim_matches(['[', ']']).parse::<IpAddr>() {
                policy.nets.push(IpNet::from(canonical(ip)));
            } else if item.contains('/') || item.contains(':') {
                return Err(format!(
                    "--webhook-allow: '{item}' is neither a host name, an IP address nor a CIDR"
                ));
            } else {
                policy
                    .hosts
                    .push(item.trim_end_matches('.').to_ascii_lowercase());
            }
        }
        Ok(policy)
    }

    fn allows_host(&self, host: &str) -> bool {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        self.hosts.contains(&host)
    }

    fn check_ip(&self, host: &str, ip: IpAddr) -> Result<(), UrlRefused> {
        let ip = canonical(ip);
        match forbidden(ip) {
            Some(kind) if !self.nets.iter().any(|n| n.contains(&ip)) => {
                Err(UrlRefused::Forbidden(format!(
                    "webhook host '{host}' is {ip}, a {kind} address, which webhooks may not reach; \
                     use a receiver's public address, or allow it with --webhook-allow \
                     (MEDIAHOST_WEBHOOK_ALLOW)"
                )))
            }
            _ => Ok(()),
        }
    }

    /// Checks what `host` resolved to: every address must be allowed (one forbidden address
    /// among public ones is how a rebinding name gets through), unless the name itself is.
    pub fn vet(&self, host: &str, addrs: Vec<SocketAddr>) -> Result<Vec<SocketAddr>, UrlRefused> {
        if addrs.is_empty() {
            return Err(UrlRefused::Unresolved(format!(
                "webhook host '{host}' does not resolve to any address"
            )));
        }
        if !self.allows_host(host) {
            for a in &addrs {
                self.check_ip(host, a.ip())?;
            }
        }
        Ok(addrs)
    }

    /// Checks a webhook URL, resolving its host name now.
    pub async fn check(&self, url: &reqwest::Url) -> Result<(), UrlRefused> {
        let port = url.port_or_known_default().unwrap_or(80);
        let host = url
            .host_str()
            .ok_or_else(|| UrlRefused::Forbidden("the webhook URL has no host".into()))?;
        // URLs write IPv6 hosts in brackets.
        if let Ok(ip) = host.trim_matches(['[', ']']).parse::<IpAddr>() {
            return self.check_ip(host, ip);
        }
        if self.allows_host(host) {
            return Ok(());
        }
        self.vet(host, resolve(host, port).await?).map(drop)
    }
}

/// An IPv4-mapped IPv6 address (`::ffff:127.0.0.1`) is the IPv4 address it carries.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

/// What kind of address webhooks may not reach by default, if `ip` is one.
fn forbidden(ip: IpAddr) -> Option<&'static str> {
    match canonical(ip) {
        IpAddr::V4(v4) if v4.is_loopback() => Some("loopback"),
        IpAddr::V4(v4) if v4.is_link_local() => Some("link-local"),
        // 0.0.0.0/8 "this network": connecting to it reaches this machine.
        IpAddr::V4(v4) if v4.octets()[0] == 0 => Some("unspecified"),
        IpAddr::V4(v4) if v4.is_broadcast() => Some("broadcast"),
        IpAddr::V4(v4) if v4.is_multicast() => Some("multicast"),
        IpAddr::V6(v6) if v6.is_loopback() => Some("loopback"),
        IpAddr::V6(v6) if v6.is_unspecified() => Some("unspecified"),
        IpAddr::V6(v6) if v6.is_unicast_link_local() => Some("link-local"),
        IpAddr::V6(v6) if v6.is_multicast() => Some("multicast"),
        _ => None,
    }
}

/// How long a webhook host's name may take to resolve.
const RESOLVE_TIMEOUT: Duration = Duration::from_secs(5);

async fn resolve(name: &str, port: u16) -> Result<Vec<SocketAddr>, UrlRefused> {
    match tokio::time::timeout(RESOLVE_TIMEOUT, tokio::net::lookup_host((name, port))).await {
        Ok(Ok(addrs)) => Ok(addrs.collect()),
        Ok(Err(e)) => Err(UrlRefused::Unresolved(format!(
            "webhook host '{name}' does not resolve: {e}"
        ))),
        Err(_) => Err(UrlRefused::Unresolved(format!(
            "webhook host '{name}' did not resolve within {} s",
            RESOLVE_TIMEOUT.as_secs()
        ))),
    }
}

/// The HTTP client's resolver: every name a delivery connects to is resolved and checked here,
/// and the connection goes only to the addresses checked.
struct CheckedResolver(Arc<UrlPolicy>);

impl reqwest::dns::Resolve for CheckedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let policy = self.0.clone();
        Box::pin(async move {
            let host = name.as_str();
            let addrs = policy.vet(host, resolve(host, 0).await?)?;
            Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

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

#[derive(Clone)]
pub struct Outbox {
    redis: redis::aio::ConnectionManager,
    prefix: String,
    /// Which receivers deliveries from this outbox may reach; the default allows no loopback,
    /// link-local, unspecified or multicast address.
    policy: Arc<UrlPolicy>,
}

impl Outbox {
    pub fn new(redis: redis::aio::ConnectionManager, prefix: &str) -> Self {
        Self {
            redis,
            prefix: prefix.to_owned(),
            policy: Arc::default(),
        }
    }

    /// Deliveries check receivers against `policy` (`--webhook-allow`).
    pub fn with_policy(mut self, policy: Arc<UrlPolicy>) -> Self {
        self.policy = policy;
        self
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
    /// event to the receiver; its data is the job as the API shows it ([`mediahost_api::Job`]).
    pub fn enqueue_into(&self, pipe: &mut redis::Pipeline, job: &Job) {
        let (Some(url), Some(kind)) = (&job.webhook, WebhookEventType::of(job.state)) else {
            return;
        };
        let id = format!(
            "msg_{}_{}",
            job.id.simple(),
            job.state.as_str().to_lowercase()
        );
        let body = WebhookEvent {
            kind,
            timestamp: crate::job::now_rfc3339(),
            data: job.wire(),
        };
        let pending = Pending {
            url: url.clone(),
            body: serde_json::to_string(&body).expect("a webhook event serializes"),
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

    /// Puts a taken event back, due after `delay`, without counting a delivery.
    async fn postpone(&self, id: &str, delay: Duration) -> redis::RedisResult<()> {
        self.redis
            .clone()
            .zadd(self.due_key(), id, unix_ms(SystemTime::now() + delay))
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

/// Delivers due events until the process stops: each in a task of its own, at most
/// [`IN_FLIGHT`] at once and [`PER_RECEIVER`] to one receiver; an event whose receiver is busy
/// waits a little in the outbox while the others go ahead.
pub async fn deliver_forever(outbox: Outbox, secrets: Vec<Secret>, metrics: Metrics) {
    let policy = outbox.policy.clone();
    let http = reqwest::Client::builder()
        .timeout(DELIVERY_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        // A proxy would resolve the name itself, past the check.
        .no_proxy()
        .dns_resolver(Arc::new(CheckedResolver(policy.clone())))
        .build()
        .expect("an HTTP client");
    let sender = Arc::new(Sender {
        outbox,
        http,
        secrets,
        policy,
        metrics,
    });
    let all = Arc::new(Semaphore::new(IN_FLIGHT));
    let mut receivers: HashMap<String, Arc<Semaphore>> = HashMap::new();
    loop {
        let slot = all.clone().acquire_owned().await.expect("never closed");
        match sender.outbox.take().await {
            Ok(Some((id, pending))) => {
                receivers.retain(|_, lane| lane.available_permits() < PER_RECEIVER);
                let lane = receivers
                    .entry(receiver(&pending.url))
                    .or_insert_with(|| Arc::new(Semaphore::new(PER_RECEIVER)))
                    .clone();
                let Ok(turn) = lane.try_acquire_owned() else {
                    if let Err(e) = sender.outbox.postpone(&id, RECEIVER_BUSY).await {
                        tracing::warn!(event = %id, error = %e, "could not update the webhook outbox");
                    }
                    continue;
                };
                let sender = sender.clone();
                tokio::spawn(async move {
                    sender.deliver(id, pending).await;
                    drop((turn, slot));
                });
            }
            Ok(None) => tokio::time::sleep(Duration::from_millis(200)).await,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the webhook outbox; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

/// The receiver a URL names, as the per-receiver limit counts them: `host:port`.
fn receiver(url: &str) -> String {
    reqwest::Url::parse(url)
        .ok()
        .and_then(|u| Some(format!("{}:{}", u.host_str()?, u.port_or_known_default()?)))
        .unwrap_or_else(|| url.to_owned())
}

/// What every delivery task shares.
struct Sender {
    outbox: Outbox,
    http: reqwest::Client,
    secrets: Vec<Secret>,
    policy: Arc<UrlPolicy>,
    metrics: Metrics,
}

impl Sender {
    async fn deliver(&self, id: String, pending: Pending) {
        let Self {
            outbox,
            http,
            secrets,
            policy,
            metrics,
        } = self;
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
        // Checked again now (the name may resolve elsewhere than at submit, or the allowlist may
        // have changed); the resolver checks once more when it connects. A forbidden URL stays
        // forbidden, so the event is given up rather than retried; a name that does not resolve
        // fails the send below and is retried.
        let checked = match reqwest::Url::parse(&pending.url) {
            Ok(url) => policy.check(&url).await,
            Err(e) => Err(UrlRefused::Forbidden(format!(
                "the webhook URL is invalid: {e}"
            ))),
        };
        if let Err(UrlRefused::Forbidden(why)) = checked {
            tracing::warn!(event = %id, url = %pending.url, %why, "webhook refused at delivery; not delivered");
            metrics
                .add(
                    "mediahost_webhook_deliveries_total{result=\"refused\"}",
                    1.0,
                )
                .await;
            if let Err(e) = outbox.forget(&id).await {
                tracing::warn!(event = %id, error = %e, "could not update the webhook outbox");
            }
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

    fn addr(text: &str) -> SocketAddr {
        text.parse().unwrap()
    }

    fn url(text: &str) -> reqwest::Url {
        reqwest::Url::parse(text).unwrap()
    }

    #[tokio::test]
    async fn loopback_link_local_unspecified_and_multicast_receivers_are_refused() {
        let policy = UrlPolicy::default();
        for refused in [
            "http://127.0.0.1/hook",
            "http://127.9.9.9:8080/hook",
            "http://localhost/hook",
            "http://169.254.169.254/latest/meta-data/",
            "http://0.0.0.0/hook",
            "http://0/hook",
            "http://224.0.0.1/hook",
            "http://255.255.255.255/hook",
            "http://[::1]/hook",
            "http://[::]/hook",
            "http://[fe80::1]/hook",
            "http://[ff02::1]/hook",
            "http://[::ffff:127.0.0.1]/hook",
            "http://[::ffff:169.254.169.254]/hook",
        ] {
            let e = policy.check(&url(refused)).await.unwrap_err();
            assert!(matches!(e, UrlRefused::Forbidden(_)), "{refused}: {e}");
            assert!(e.to_string().contains("--webhook-allow"), "{refused}: {e}");
        }
        for allowed in [
            "http://93.184.215.14/hook",
            "https://[2606:4700::1111]/hook",
        ] {
            assert!(policy.check(&url(allowed)).await.is_ok(), "{allowed}");
        }
    }

    #[tokio::test]
    async fn the_allowlist_names_networks_and_hosts() {
        let policy =
            UrlPolicy::parse(Some("127.0.0.1/32, ::1, hooks.internal, 169.254.0.0/16")).unwrap();
        for allowed in [
            "http://127.0.0.1:9000/hook",
            "http://[::ffff:127.0.0.1]/hook",
            "http://[::1]/hook",
            "http://169.254.169.254/hook",
            "http://HOOKS.internal./hook",
        ] {
            assert!(policy.check(&url(allowed)).await.is_ok(), "{allowed}");
        }
        assert!(policy.check(&url("http://127.0.0.2/hook")).await.is_err());
        assert!(UrlPolicy::parse(Some("10.0.0.0/33")).is_err());
        assert!(UrlPolicy::parse(Some("")).is_ok());
    }

    /// DNS rebinding: the name resolved to an allowed address at submit; at delivery it resolves
    /// to loopback, alone or among allowed addresses. The delivery is refused either way.
    #[test]
    fn a_name_that_rebinds_to_loopback_is_refused_when_it_connects() {
        let policy = UrlPolicy::parse(Some("127.0.0.2/32")).unwrap();
        let submit = policy.vet("hooks.example", vec![addr("127.0.0.2:80")]);
        assert_eq!(submit.unwrap(), vec![addr("127.0.0.2:80")]);
        for rebound in [
            vec![addr("127.0.0.1:80")],
            vec![addr("127.0.0.2:80"), addr("127.0.0.1:80")],
            vec![addr("[::ffff:169.254.169.254]:80")],
        ] {
            let e = policy.vet("hooks.example", rebound).unwrap_err();
            assert!(matches!(e, UrlRefused::Forbidden(_)), "{e}");
        }
        assert!(matches!(
            policy.vet("hooks.example", vec![]),
            Err(UrlRefused::Unresolved(_))
        ));
    }

    /// The client deliveries use resolves through the policy, so it never connects to a
    /// forbidden address even if the name changed after the last check.
    #[tokio::test]
    async fn the_delivery_client_does_not_connect_to_a_forbidden_address() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let client = |policy: UrlPolicy| {
            reqwest::Client::builder()
                .no_proxy()
                .dns_resolver(Arc::new(CheckedResolver(Arc::new(policy))))
                .build()
                .unwrap()
        };
        let target = format!("http://localhost:{port}/hook");
        let refused = client(UrlPolicy::default()).post(&target).send().await;
        assert!(refused.is_err());
        let mut source: Option<&dyn std::error::Error> = refused.as_ref().err().map(|e| e as _);
        let mut seen = Vec::new();
        while let Some(e) = source {
            seen.push(e.to_string());
            source = e.source();
        }
        assert!(
            seen.iter().any(|s| s.contains("loopback address")),
            "{seen:?}"
        );
        let allowed = client(UrlPolicy::parse(Some("localhost")).unwrap());
        let accepted = tokio::spawn(async move { listener.accept().await.is_ok() });
        let _ = tokio::time::timeout(Duration::from_secs(2), allowed.post(&target).send()).await;
        assert!(accepted.await.unwrap());
    }

    #[test]
    fn deliveries_are_limited_per_host_and_port() {
        assert_eq!(receiver("https://hooks.example/a"), "hooks.example:443");
        assert_eq!(
            receiver("http://hooks.example:8080/b"),
            "hooks.example:8080"
        );
        assert_eq!(receiver("http://[::1]/c"), "[::1]:80");
    }
}
