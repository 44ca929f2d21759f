//! Request bodies: the size limit of each route, and an oversized body read and thrown away
//! before its 413 is sent. Most HTTP clients write their whole body before reading the
//! answer; a server that answers and closes while they still write makes them see a reset
//! connection instead of the problem+json.

use super::problem::Problem;
use axum::body::Body;
use axum::extract::Request;
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::IntoResponse;
use axum::routing::MethodRouter;
use std::time::Duration;

/// A route's body limit unless it sets its own (axum's default).
pub const DEFAULT_LIMIT: usize = 2 * 1024 * 1024;

/// What of an oversized body is drained before the 413; past either bound the connection
/// is closed. 16 MiB at loopback speed is well under the time bound.
const DRAIN_BYTES: usize = 16 * 1024 * 1024;
const DRAIN_TIME: Duration = Duration::from_secs(5);

/// `handler` with bodies limited to `max` bytes: one that declares more is drained and
/// refused with 413 before the handler runs; one that turns out longer is cut off by the
/// extractor.
pub fn limit<S: Clone + Send + Sync + 'static>(handler: MethodRouter<S>, max: usize) -> MethodRouter<S> {
    handler
        .layer(axum::extract::DefaultBodyLimit::max(max))
        .layer(axum::middleware::from_fn(
            move |request: Request, next: Next| async move {
                let declared = request
                    .headers()
                    .get(axum::http::header::CONTENT_LENGTH)
                    .and_then(|v| v.to_str().ok()?.parse::<usize>().ok());
                if declared.is_some_and(|n| n > max) {
                    drain(request.into_body()).await;
                    return too_large(max).into_response();
                }
                next.run(request).await
            },
        ))
}

pub fn too_large(max: usize) -> Problem {
    Problem::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!("request bodies here are limited to {max} bytes"),
    )
}

/// Reads and drops `body`, up to [`DRAIN_BYTES`] and [`DRAIN_TIME`].
pub async fn drain(body: Body) {
    use futures::StreamExt;
    let mut chunks = body.into_data_stream();
    let mut seen = 0;
    let read = async {
        while let Some(Ok(chunk)) = chunks.next().await {
            seen += chunk.len();
            if seen > DRAIN_BYTES {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(DRAIN_TIME, read).await;
}
