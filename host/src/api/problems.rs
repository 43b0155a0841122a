//! Every error the API answers is a problem document with a code, including the ones axum's
//! extractors answer on their own (a query string that does not parse, a path segment of the
//! wrong type, a body over the limit, a method the route does not take).

use axum::body::to_bytes;
use axum::extract::Request;
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::ErrorCode;

/// The most of a plain error body kept as the problem's detail.
const DETAIL_BYTES: usize = 4096;

/// Middleware: an error answer that is not already a problem document becomes one, keeping its
/// status and its text as the detail.
pub async fn every_error_a_problem(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    let status = response.status();
    let is_problem = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/problem+json"));
    if !(status.is_client_error() || status.is_server_error()) || is_problem {
        return response;
    }
    let code = code_for(status);
    let (parts, body) = response.into_parts();
    let text = to_bytes(body, DETAIL_BYTES)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_owned())
        .unwrap_or_default();
    let detail = if text.is_empty() {
        status
            .canonical_reason()
            .unwrap_or("the request failed")
            .to_owned()
    } else {
        text
    };
    let mut problem = mediahost_api::Problem::new(code, detail);
    // The status the extractor chose stays, even where the code's usual status differs.
    problem.status = status.as_u16();
    let body = serde_json::to_string(&problem).expect("a problem document serializes");
    let mut answer = (
        status,
        [(header::CONTENT_TYPE, "application/problem+json")],
        body,
    )
        .into_response();
    for name in [header::ALLOW, header::RETRY_AFTER, header::WWW_AUTHENTICATE] {
        if let Some(value) = parts.headers.get(&name) {
            answer.headers_mut().insert(name, value.clone());
        }
    }
    answer
}

/// The code an error status gets when the answer did not name one.
fn code_for(status: StatusCode) -> ErrorCode {
    match status {
        StatusCode::NOT_FOUND => ErrorCode::NotFound,
        StatusCode::METHOD_NOT_ALLOWED => ErrorCode::MethodNotAllowed,
        StatusCode::PAYLOAD_TOO_LARGE => ErrorCode::BodyTooLarge,
        StatusCode::UNAUTHORIZED => ErrorCode::Unauthorized,
        StatusCode::REQUEST_TIMEOUT => ErrorCode::RequestTimeout,
        StatusCode::SERVICE_UNAVAILABLE => ErrorCode::HostOverloaded,
        s if s.is_client_error() => ErrorCode::RequestMalformed,
        _ => ErrorCode::Internal,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::Router;
    use axum::body::Body;
    use axum::extract::Query;
    use axum::middleware::from_fn;
    use axum::routing::get;
    use tower::ServiceExt;

    #[derive(serde::Deserialize)]
    struct Limit {
        #[allow(dead_code)]
        limit: u32,
    }

    async fn answer(uri: &str, method: &str) -> (StatusCode, String, serde_json::Value) {
        let app = Router::new()
            .route("/q", get(|_: Query<Limit>| async { "ok" }))
            .layer(from_fn(every_error_a_problem));
        let response = app
            .oneshot(
                Request::builder()
                    .uri(uri)
                    .method(method)
                    .body(Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        let status = response.status();
        let kind = response
            .headers()
            .get(header::CONTENT_TYPE)
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        let body = to_bytes(response.into_body(), usize::MAX).await.unwrap();
        (
            status,
            kind,
            serde_json::from_slice(&body).unwrap_or_default(),
        )
    }

    #[tokio::test]
    async fn an_extractor_rejection_becomes_a_problem_with_a_code() {
        let (status, kind, body) = answer("/q?limit=many", "GET").await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(kind, "application/problem+json");
        assert_eq!(body["code"], "REQUEST_MALFORMED");
        assert_eq!(body["status"], 400);
        assert!(body["detail"].as_str().unwrap().contains("limit"), "{body}");
    }

    #[tokio::test]
    async fn a_wrong_method_keeps_its_status_and_allow_header() {
        let (status, _, body) = answer("/q?limit=1", "DELETE").await;
        assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(body["code"], "METHOD_NOT_ALLOWED");
    }

    #[tokio::test]
    async fn a_success_is_untouched() {
        let (status, kind, _) = answer("/q?limit=1", "GET").await;
        assert_eq!(status, StatusCode::OK);
        assert!(kind.starts_with("text/plain"), "{kind}");
    }
}
