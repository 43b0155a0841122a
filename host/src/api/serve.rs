//! Serving the router over HTTP/1 with read timeouts, so a slow or stalled client holds a
//! connection for a bounded time only.
//!
//! A client has `--request-timeout-s` to send a request's headers (hyper's header read timeout;
//! after it the connection is closed) and then its body: a JSON body must arrive whole within
//! that time, an upload may take as long as it needs but may not pause longer than that between
//! two chunks. A stalled body is answered `408 REQUEST_TIMEOUT`.
//!
//! Not here: the routes (`api::router`), what a handler does with the body.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http_body::{Frame, SizeHint};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::time::{Instant, Sleep};

use super::SharedState;
use crate::error::{ApiError, ErrorCode};

/// How long a stopping API waits for requests in flight (an event stream may never end).
const DRAIN: Duration = Duration::from_secs(10);

/// Serves `router` on `listener` until `stop` turns true, then lets requests in flight finish
/// for at most [`DRAIN`].
pub async fn serve(
    listener: TcpListener,
    router: Router,
    header_timeout: Duration,
    mut stop: watch::Receiver<bool>,
) {
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(header_timeout);
    let graceful = GracefulShutdown::new();
    let stopped = async move {
        let _ = stop.wait_for(|stop| *stop).await;
    };
    tokio::pin!(stopped);
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of file descriptors, most likely: accept again once some are freed.
                    tracing::warn!(error = %e, "cannot accept a connection; retrying in a second");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            },
            () = &mut stopped => break,
        };
        let connection = http.serve_connection(
            TokioIo::new(stream),
            TowerToHyperService::new(router.clone()),
        );
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    if tokio::time::timeout(DRAIN, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::info!(
            "requests still in flight after {} s (event streams, most likely); stopping anyway",
            DRAIN.as_secs()
        );
    }
}

/// Middleware for requests whose body must arrive whole within `--request-timeout-s`.
pub async fn whole_body(
    State(state): State<SharedState>,
    request: Request,
    next: Next,
) -> Response {
    with_deadline(request, next, state.request_timeout, false).await
}

/// Middleware for uploads: at most `--request-timeout-s` between two chunks of the body.
pub async fn between_chunks(
    State(state): State<SharedState>,
    request: Request,
    next: Next,
) -> Response {
    with_deadline(request, next, state.request_timeout, true).await
}

async fn with_deadline(request: Request, next: Next, limit: Duration, per_chunk: bool) -> Response {
    let expired = Arc::new(AtomicBool::new(false));
    let request = request.map(|inner| {
        Body::new(Deadline {
            inner,
            sleep: Box::pin(tokio::time::sleep(limit)),
            per_chunk: per_chunk.then_some(limit),
            expired: expired.clone(),
        })
    });
    let response = next.run(request).await;
    if !expired.load(Ordering::Acquire) {
        return response;
    }
    let detail = if per_chunk {
        format!(
            "the body stalled for {} s between two chunks; send it again without pausing",
            limit.as_secs()
        )
    } else {
        format!(
            "the body did not arrive within {} s of the headers; send it again",
            limit.as_secs()
        )
    };
    let mut response = ApiError::new(ErrorCode::RequestTimeout, detail).into_response();
    // The rest of the body is not read, so the connection cannot carry another request.
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

/// A request body that fails, and records that it did, when its deadline passes before the
/// next frame (with `per_chunk`, each frame moves the deadline on).
struct Deadline {
    inner: Body,
    sleep: Pin<Box<Sleep>>,
    per_chunk: Option<Duration>,
    expired: Arc<AtomicBool>,
}

impl http_body::Body for Deadline {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let this = &mut *self;
        if let Poll::Ready(frame) = Pin::new(&mut this.inner).poll_frame(cx) {
            if let Some(limit) = this.per_chunk {
                this.sleep.as_mut().reset(Instant::now() + limit);
            }
            return Poll::Ready(frame);
        }
        match this.sleep.as_mut().poll(cx) {
            Poll::Ready(()) => {
                this.expired.store(true, Ordering::Release);
                Poll::Ready(Some(Err(axum::Error::new(RequestTimedOut))))
            }
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[derive(Debug, thiserror::Error)]
#[error("the request body was not received in time")]
struct RequestTimedOut;
