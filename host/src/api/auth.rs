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
//! Not here: where the admin token is required (`api::presets`), the signatures of object URLs
//! (`api::objects`), which routes are open (`api::router`).

use axum::extract::{Request, State};
use axum::http::{HeaderMap, header};
use axum::middleware::Next;
use axum::response::Response;
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

/// Middleware: the request carries an API token, when the host has any.
pub async fn require_api_token(
    State(state): State<SharedState>,
    request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    if let Some(tokens) = &state.api_tokens {
        tokens.check(request.headers())?;
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
}
