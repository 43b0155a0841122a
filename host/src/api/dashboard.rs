//! The dashboard: a page the host serves at `/dashboard` showing the queue, running jobs with
//! live progress, recent and failed jobs, a job's detail with players for its outputs, the
//! presets, and a form generated from a preset's param schema to submit a job.
//!
//! It is plain HTML, CSS and one script, embedded in the binary (`dashboard/`), with no build
//! step. The script reads everything from the JSON API (`/v1/...`) and the job event streams, so
//! the dashboard shows nothing the API does not. Every page carries a strict
//! Content-Security-Policy: no inline script or style, everything from the host itself, plus
//! media, images and uploads from the storage's signed-URL origin.
//!
//! With `--api-tokens` set, the page is the login form until the browser has a session: the form
//! posts a token to `POST /dashboard/login`, which checks it like the API does and answers with
//! the session cookie (`api::auth`). The script and stylesheet hold no data and are served to
//! anyone.
//!
//! Not here: the session cookie and its CSRF rule (`api::auth`), the queue figures
//! (`api::queue`).

use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use serde::Deserialize;

use super::SharedState;
use super::auth::{SESSION_COOKIE, SESSION_TTL, now_s, same_origin};
use crate::storage::ObjectKey;

const INDEX_HTML: &str = include_str!("dashboard/index.html");
const LOGIN_HTML: &str = include_str!("dashboard/login.html");
const APP_JS: &str = include_str!("dashboard/app.js");
const STYLE_CSS: &str = include_str!("dashboard/style.css");

/// The dashboard's routes: `/` (to the dashboard), the page, login and logout, and its assets.
/// Pages, not API: they are not in the OpenAPI document.
pub fn routes() -> Router<SharedState> {
    Router::new()
        .route("/", get(root))
        .route("/dashboard", get(page))
        .route("/dashboard/", get(root))
        .route("/dashboard/login", post(login))
        .route("/dashboard/logout", post(logout))
        .route("/dashboard/app.js", get(script))
        .route("/dashboard/style.css", get(style))
}

/// `GET /`: the dashboard is the host's front page.
pub async fn root() -> Redirect {
    Redirect::to("/dashboard")
}

/// `GET /dashboard`: the dashboard, or the login form when the host needs a token and the
/// browser has no session.
pub async fn page(State(state): State<SharedState>, headers: HeaderMap) -> Response {
    match &state.api_tokens {
        Some(tokens) if !tokens.has_session(&headers) => {
            html(&state, StatusCode::OK, &login_page("")).await
        }
        Some(_) => html(&state, StatusCode::OK, INDEX_HTML).await,
        // An open host has no session to end.
        None => html(&state, StatusCode::OK, &without_logout(INDEX_HTML)).await,
    }
}

/// The page without its logout form (between `<!--logout-->` and `<!--/logout-->`).
fn without_logout(page: &str) -> String {
    match (page.find("<!--logout-->"), page.find("<!--/logout-->")) {
        (Some(start), Some(end)) if start < end => {
            format!(
                "{}{}",
                &page[..start],
                &page[end + "<!--/logout-->".len()..]
            )
        }
        _ => page.to_owned(),
    }
}

#[derive(Deserialize)]
pub struct Login {
    token: String,
}

/// `POST /dashboard/login` (a form with `token`): sets the session cookie and goes to the
/// dashboard, or shows the form again saying the token was refused (as a page, `200`: the
/// router turns error statuses into problem documents, which a browser would show as JSON).
pub async fn login(
    State(state): State<SharedState>,
    headers: HeaderMap,
    Form(form): Form<Login>,
) -> Response {
    let Some(tokens) = &state.api_tokens else {
        return Redirect::to("/dashboard").into_response();
    };
    // A form another site posts would log this browser into the attacker's session.
    if !same_origin(&headers) {
        let page = login_page("Log in from this host's own dashboard page.");
        return html(&state, StatusCode::OK, &page).await;
    }
    let Some(session) = tokens.session(&form.token, now_s()) else {
        let page = login_page(
            "That token is not one of this host's API tokens (--api-tokens) nor its admin token.",
        );
        return html(&state, StatusCode::OK, &page).await;
    };
    let secure = if behind_https(&headers) {
        "; Secure"
    } else {
        ""
    };
    let cookie = format!(
        "{SESSION_COOKIE}={session}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{secure}",
        SESSION_TTL.as_secs()
    );
    let mut response = Redirect::to("/dashboard").into_response();
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

/// `POST /dashboard/logout`: forgets the session cookie.
pub async fn logout(headers: HeaderMap) -> Response {
    let secure = if behind_https(&headers) {
        "; Secure"
    } else {
        ""
    };
    let cookie = format!("{SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0{secure}");
    let mut response = Redirect::to("/dashboard").into_response();
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

/// `GET /dashboard/app.js`
pub async fn script() -> Response {
    asset("text/javascript; charset=utf-8", APP_JS)
}

/// `GET /dashboard/style.css`
pub async fn style() -> Response {
    asset("text/css; charset=utf-8", STYLE_CSS)
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        body,
    )
        .into_response()
}

/// The login page with `message` (one of this module's own sentences) above the form.
fn login_page(message: &str) -> String {
    let message = if message.is_empty() {
        String::new()
    } else {
        format!("<p class=\"error\" id=\"login-error\">{message}</p>")
    };
    LOGIN_HTML.replace("<!--message-->", &message)
}

/// Whether a TLS-terminating proxy in front says the browser speaks HTTPS.
fn behind_https(headers: &HeaderMap) -> bool {
    headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("https"))
}

async fn html(state: &SharedState, status: StatusCode, body: &str) -> Response {
    let csp = content_security_policy(storage_origin(state).await.as_deref());
    let mut response = (status, body.to_owned()).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    if let Ok(value) = HeaderValue::from_str(&csp) {
        headers.insert(header::CONTENT_SECURITY_POLICY, value);
    }
    response
}

/// The page's policy: everything from the host itself; media, images and upload PUTs also from
/// the origin the storage signs URLs for (S3, or a public URL other than the page's).
fn content_security_policy(storage_origin: Option<&str>) -> String {
    let extra = storage_origin.map(|o| format!(" {o}")).unwrap_or_default();
    format!(
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'{extra}; \
         media-src 'self'{extra}; connect-src 'self'{extra}; object-src 'none'; \
         base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    )
}

/// The scheme, host and port of the URLs the storage signs, from a URL it signs now.
async fn storage_origin(state: &SharedState) -> Option<String> {
    let key = ObjectKey::parse("dashboard/origin")?;
    let url = tokio::time::timeout(
        Duration::from_secs(2),
        state.storage.presign_get(&key, Duration::from_secs(60)),
    )
    .await
    .ok()?
    .ok()?;
    origin_of(&url)
}

/// `scheme://host[:port]` of an absolute http(s) URL; `None` for anything else, so nothing odd
/// ever reaches the policy.
fn origin_of(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    if !matches!(scheme, "http" | "https") {
        return None;
    }
    let authority = rest.split(['/', '?', '#']).next()?;
    let authority = authority.rsplit('@').next()?;
    let ok = !authority.is_empty()
        && authority
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b));
    ok.then(|| format!("{scheme}://{authority}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_policy_allows_no_inline_script_and_only_the_storage_origin_beside_self() {
        let csp = content_security_policy(Some("https://bucket.s3.example:9000"));
        assert!(csp.contains("default-src 'self'"), "{csp}");
        assert!(csp.contains("script-src 'self';"), "{csp}");
        assert!(
            !csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"),
            "{csp}"
        );
        assert!(
            csp.contains("media-src 'self' https://bucket.s3.example:9000;"),
            "{csp}"
        );
        assert!(content_security_policy(None).contains("media-src 'self';"));
    }

    #[test]
    fn only_a_plain_origin_is_taken_from_a_signed_url() {
        assert_eq!(
            origin_of("http://127.0.0.1:8080/v1/objects/a?sig=1").as_deref(),
            Some("http://127.0.0.1:8080")
        );
        assert_eq!(
            origin_of("https://s3.example/bucket/key?X-Amz-Signature=abc").as_deref(),
            Some("https://s3.example")
        );
        assert_eq!(origin_of("local://uploads/a"), None);
        assert_eq!(origin_of("http://a b/"), None);
        assert_eq!(origin_of("http://x; script-src *"), None);
    }

    #[test]
    fn the_pages_load_no_inline_script_and_only_their_own_assets() {
        for page in [INDEX_HTML, LOGIN_HTML] {
            assert!(!page.contains("<script>"), "inline script");
            assert!(!page.contains(" style="), "inline style");
            for handler in ["onclick=", "onload=", "onsubmit=", "onchange=", "onerror="] {
                assert!(!page.contains(handler), "inline event handler {handler}");
            }
        }
        assert!(INDEX_HTML.contains("src=\"/dashboard/app.js\""));
        assert!(INDEX_HTML.contains("/dashboard/logout"));
        let open = without_logout(INDEX_HTML);
        assert!(!open.contains("/dashboard/logout") && open.contains("id=\"queue\""));
        assert!(login_page("").contains("name=\"token\""));
        assert!(!login_page("").contains("<!--message-->"));
    }
}
