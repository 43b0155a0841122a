//! Optional bearer tokens for the job API (`--api-tokens`), so a host shared by several teams
//! can require them.
//!
//! When tokens are configured, every `/v1` route the router puts behind [`require_api_token`]
//! answers `401 UNAUTHORIZED` without `Authorization: Bearer <one of them>`, before its body is
//! read. The admin token is accepted too, so the operator's CLI keeps working. Tokens are
//! compared as SHA-256 digests in constant time.
//!
//! [`check_bearer`] is the one bearer-token check: these tokens use it, and so does the admin
//! token of publishing and yanking.
//!
//! Browsers cannot put a bearer header on a page load or an `EventSource`, so the dashboard's
//! login (`api::dashboard`) trades a token for a session cookie ([`SESSION_COOKIE`]: HttpOnly,
//! SameSite=Strict, 12 hours), which the job API accepts as well. The cookie holds no token: it is
//! an expiry time and an HMAC of it keyed by the token's digest, so it lapses by itself and stops
//! working when its token is removed from `--api-tokens`. A request authenticated by the cookie
//! that changes something (anything but GET, HEAD, OPTIONS) must come from the host's own pages:
//! `Sec-Fetch-Site: same-origin`, or an `Origin` naming the host it was sent to (CSRF).
//!
//! Not here: where the admin token is required (`api::presets`), the signatures of object URLs
//! (`api::objects`), which routes are open (`api::router`).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, header};
use axum::middleware::Next;
use axum::response::Response;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use super::SharedState;
use crate::error::{ApiError, ErrorCode};

/// The accepted tokens, kept as digests.
pub struct ApiTokens(Vec<[u8; 32]>);

impl ApiTokens {
    /// Parses `--api-tokens` (comma-separated); `None` when it names no token (the API is open).
    /// The admin token is accepted as well.
    pub fn parse(list: Option<&str>, admin_token: &str) -> Option<Self> {
        let mut tokens: Vec<[u8; 32]> = list
            .unwrap_or("")
            .split(',')
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(digest)
            .collect();
        if tokens.is_empty() {
            return None;
        }
        tokens.push(digest(admin_token));
        Some(Self(tokens))
    }

    /// Whether `token` is one of the accepted tokens (every one compared, in constant time).
    pub(super) fn accepts(&self, token: &str) -> bool {
        let given = digest(token.trim());
        self.0
            .iter()
            .fold(0u8, |found, t| found | u8::from(equal(t, &given)))
            != 0
    }

    /// A session cookie's value for `token`, valid for [`SESSION_TTL`] from `now_s` (Unix
    /// seconds); `None` when the token is not accepted.
    pub(super) fn session(&self, token: &str, now_s: u64) -> Option<String> {
        if !self.accepts(token) {
            return None;
        }
        let expires = now_s + SESSION_TTL.as_secs();
        Some(format!(
            "{expires}.{}",
            hex::encode(session_mac(&digest(token.trim()), expires))
        ))
    }

    /// Whether a session cookie's value was made by [`ApiTokens::session`] for an accepted token
    /// and has not expired at `now_s`.
    pub(super) fn session_valid(&self, value: &str, now_s: u64) -> bool {
        let Some((expires, mac)) = value.split_once('.') else {
            return false;
        };
        let (Ok(expires), Ok(mac)) = (expires.parse::<u64>(), hex::decode(mac)) else {
            return false;
        };
        let Ok(mac) = <[u8; 32]>::try_from(mac) else {
            return false;
        };
        if expires <= now_s || expires > now_s + SESSION_TTL.as_secs() {
            return false;
        }
        self.0.iter().fold(0u8, |found, t| {
            found | u8::from(equal(&session_mac(t, expires), &mac))
        }) != 0
    }

    /// Whether the request carries a valid session cookie.
    pub(super) fn has_session(&self, headers: &HeaderMap) -> bool {
        session_cookie(headers).is_some_and(|v| self.session_valid(v, now_s()))
    }

    /// The job API's check: a bearer token when the request has an `Authorization` header, else
    /// a session cookie (same-origin only for a request that changes something), else `401`.
    fn authorize(&self, method: &Method, headers: &HeaderMap) -> Result<(), ApiError> {
        if headers.contains_key(header::AUTHORIZATION) || session_cookie(headers).is_none() {
            return self.check(headers);
        }
        if !self.has_session(headers) {
            return Err(ApiError::new(
                ErrorCode::Unauthorized,
                "the dashboard session has expired or its token was withdrawn; log in again at \
                 /dashboard, or send 'Authorization: Bearer <token>'",
            ));
        }
        let safe = matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS);
        if !safe && !same_origin(headers) {
            return Err(ApiError::new(
                ErrorCode::Unauthorized,
                "a request authenticated by the dashboard's cookie must come from the dashboard \
                 itself (same origin); other clients send 'Authorization: Bearer <token>'",
            ));
        }
        Ok(())
    }

    fn check(&self, headers: &HeaderMap) -> Result<(), ApiError> {
        check_bearer(
            headers,
            &self.0,
            "this host's job API needs an API token: send 'Authorization: Bearer <token>' with \
             one of the host's --api-tokens (MEDIAHOST_API_TOKENS) or its admin token",
            "the API token is not one of this host's --api-tokens (MEDIAHOST_API_TOKENS) nor its \
             admin token; ask its operator for one",
        )
    }
}

/// Checks that `headers` carry `Authorization: Bearer <token>` with a token whose digest is one of
/// `accepted`, answering `401 UNAUTHORIZED` with the detail `missing` or `wrong` otherwise.
pub(super) fn check_bearer(
    headers: &HeaderMap,
    accepted: &[[u8; 32]],
    missing: &str,
    wrong: &str,
) -> Result<(), ApiError> {
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or_else(|| ApiError::new(ErrorCode::Unauthorized, missing))?;
    let given = digest(given.trim());
    // Every token is compared, whichever matches, so the time says nothing about which.
    let matched = accepted
        .iter()
        .fold(0u8, |found, token| found | u8::from(equal(token, &given)));
    if matched == 0 {
        return Err(ApiError::new(ErrorCode::Unauthorized, wrong));
    }
    Ok(())
}

/// The SHA-256 digest a token is kept and compared as.
pub(super) fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// Constant-time equality of two digests.
fn equal(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The dashboard's session cookie.
pub(super) const SESSION_COOKIE: &str = "mediahost_session";

/// How long a dashboard session lasts.
pub(super) const SESSION_TTL: Duration = Duration::from_secs(12 * 3600);

/// The MAC of a session expiring at `expires`, keyed by the digest of the token it was made for.
fn session_mac(token_digest: &[u8; 32], expires: u64) -> [u8; 32] {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(token_digest).expect("HMAC takes a key of any length");
    mac.update(b"mediahost dashboard session\0");
    mac.update(expires.to_string().as_bytes());
    mac.finalize().into_bytes().into()
}

pub(super) fn now_s() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The value of the session cookie in the request's `Cookie` headers, if any.
pub(super) fn session_cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, value)| value.trim())
}

/// Whether the browser says the request comes from a page of the host it is sent to: the Fetch
/// Metadata header when the browser sends it, else `Origin` against `Host`. Neither: not.
pub(super) fn same_origin(headers: &HeaderMap) -> bool {
    let text = |name| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(site) = text(header::HeaderName::from_static("sec-fetch-site")) {
        return site == "same-origin";
    }
    match (text(header::ORIGIN), text(header::HOST)) {
        (Some(origin), Some(host)) => origin.split_once("://").is_some_and(|(scheme, rest)| {
            matches!(scheme, "http" | "https") && rest.eq_ignore_ascii_case(host)
        }),
        _ => false,
    }
}

/// Middleware: the request carries an API token (or the dashboard's session cookie), when the
/// host has any.
pub async fn require_api_token(
    State(state): State<SharedState>,
    request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    if let Some(tokens) = &state.api_tokens {
        tokens.authorize(request.method(), request.headers())?;
    }
    Ok(next.run(request).await)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bearer(token: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::AUTHORIZATION,
            format!("Bearer {token}").parse().unwrap(),
        );
        headers
    }

    #[test]
    fn no_tokens_means_an_open_api() {
        assert!(ApiTokens::parse(None, "admin").is_none());
        assert!(ApiTokens::parse(Some(" , "), "admin").is_none());
    }

    #[test]
    fn any_configured_token_or_the_admin_token_is_accepted_and_nothing_else() {
        let tokens = ApiTokens::parse(Some("team-a-token, team-b-token"), "admin").unwrap();
        assert!(tokens.check(&bearer("team-a-token")).is_ok());
        assert!(tokens.check(&bearer("team-b-token")).is_ok());
        assert!(tokens.check(&bearer("admin")).is_ok());
        for refused in [bearer("team-c-token"), bearer(""), HeaderMap::new()] {
            let e = tokens.check(&refused).unwrap_err();
            assert_eq!(e.code, ErrorCode::Unauthorized);
            assert!(e.detail.contains("--api-tokens"), "{}", e.detail);
        }
    }

    fn with(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.append(
                header::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                value.parse().unwrap(),
            );
        }
        headers
    }

    #[test]
    fn a_session_is_made_only_for_an_accepted_token_and_lapses() {
        let tokens = ApiTokens::parse(Some("team-a-token"), "admin").unwrap();
        let now = 1_800_000_000;
        assert!(tokens.session("team-c-token", now).is_none());
        let session = tokens.session("team-a-token", now).unwrap();
        assert!(
            !session.contains("team-a-token"),
            "the cookie holds no token"
        );
        assert!(tokens.session_valid(&session, now));
        assert!(tokens.session_valid(&session, now + SESSION_TTL.as_secs() - 1));
        assert!(!tokens.session_valid(&session, now + SESSION_TTL.as_secs()));
        // Another host's tokens (or a withdrawn token) do not accept it.
        let others = ApiTokens::parse(Some("team-b-token"), "admin2").unwrap();
        assert!(!others.session_valid(&session, now));
        // A longer expiry cannot be written in without the MAC breaking.
        let (_, mac) = session.split_once('.').unwrap();
        assert!(!tokens.session_valid(&format!("{}.{mac}", now + 3600), now));
        for junk in ["", ".", "x.y", "1.00", &format!("{}.zz", now + 60)] {
            assert!(!tokens.session_valid(junk, now), "{junk:?}");
        }
    }

    #[test]
    fn the_job_api_accepts_a_session_cookie_for_reads_from_anywhere() {
        let tokens = ApiTokens::parse(Some("team-a-token"), "admin").unwrap();
        let session = tokens.session("team-a-token", now_s()).unwrap();
        let cookie = format!("theme=dark; {SESSION_COOKIE}={session}");
        let headers = with(&[("cookie", &cookie)]);
        assert!(tokens.authorize(&Method::GET, &headers).is_ok());
        let forged = with(&[("cookie", &format!("{SESSION_COOKIE}=1.{}", "00".repeat(32)))]);
        let e = tokens.authorize(&Method::GET, &forged).unwrap_err();
        assert_eq!(e.code, ErrorCode::Unauthorized);
        // A wrong bearer token is not rescued by a good cookie.
        let both = with(&[
            ("cookie", &cookie),
            ("authorization", "Bearer team-c-token"),
        ]);
        assert!(tokens.authorize(&Method::GET, &both).is_err());
    }

    #[test]
    fn a_cookie_authenticated_change_must_come_from_the_same_origin() {
        let tokens = ApiTokens::parse(Some("team-a-token"), "admin").unwrap();
        let session = tokens.session("team-a-token", now_s()).unwrap();
        let cookie = format!("{SESSION_COOKIE}={session}");
        let host = ("host", "media.example:8080");
        for allowed in [
            with(&[("cookie", &cookie), host, ("sec-fetch-site", "same-origin")]),
            with(&[
                ("cookie", &cookie),
                host,
                ("origin", "http://media.example:8080"),
            ]),
            with(&[
                ("cookie", &cookie),
                host,
                ("origin", "https://media.example:8080"),
            ]),
        ] {
            assert!(
                tokens.authorize(&Method::POST, &allowed).is_ok(),
                "{allowed:?}"
            );
        }
        for refused in [
            with(&[("cookie", &cookie), host]),
            with(&[("cookie", &cookie), host, ("sec-fetch-site", "cross-site")]),
            with(&[("cookie", &cookie), host, ("sec-fetch-site", "same-site")]),
            with(&[("cookie", &cookie), host, ("origin", "http://evil.example")]),
            with(&[
                ("cookie", &cookie),
                host,
                ("origin", "http://media.example:8080.evil"),
            ]),
            with(&[("cookie", &cookie), host, ("origin", "null")]),
            // Fetch metadata wins over a matching Origin.
            with(&[
                ("cookie", &cookie),
                host,
                ("origin", "http://media.example:8080"),
                ("sec-fetch-site", "cross-site"),
            ]),
        ] {
            let e = tokens.authorize(&Method::POST, &refused).unwrap_err();
            assert_eq!(e.code, ErrorCode::Unauthorized, "{refused:?}");
            assert!(e.detail.contains("same origin"), "{}", e.detail);
        }
        // A bearer token needs no origin check: it is never sent by a browser on its own.
        let bearer = with(&[("authorization", "Bearer team-a-token"), host]);
        assert!(tokens.authorize(&Method::POST, &bearer).is_ok());
    }
}
