//! The request id: taken from `x-request-id` when the client sent one, else a new UUID; echoed
//! on every response, carried by the request's tracing span, and made available to the error
//! renderer (5xx bodies quote it) through a task-local scoped around each request (by
//! `detach`, which runs the request in a task of its own).

use axum::extract::Request;
use axum::http::HeaderName;
use axum::middleware::Next;
use axum::response::Response;
use tower_http::request_id::RequestId;

/// The header carrying the request id, in and out.
pub const REQUEST_ID_HEADER: HeaderName = HeaderName::from_static("x-request-id");

tokio::task_local! {
    static CURRENT: String;
}

/// The id of the request being handled, if called while handling one.
pub fn current() -> Option<String> {
    CURRENT.try_with(Clone::clone).ok()
}

/// The request id of `req` as text (set by `SetRequestIdLayer` before this runs).
pub fn of_request<B>(req: &axum::http::Request<B>) -> String {
    req.extensions()
        .get::<RequestId>()
        .and_then(|id| id.header_value().to_str().ok())
        .or_else(|| req.headers().get(REQUEST_ID_HEADER).and_then(|v| v.to_str().ok()))
        .unwrap_or("")
        .to_string()
}

/// Whether the client sent its own `x-request-id` (a generated one is no idempotency key).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientSentRequestId(pub bool);

/// Middleware, outside the one that generates missing ids: records [`ClientSentRequestId`].
pub async fn mark_client_sent(mut req: Request, next: Next) -> Response {
    let sent = req.headers().contains_key(REQUEST_ID_HEADER);
    req.extensions_mut().insert(ClientSentRequestId(sent));
    next.run(req).await
}

/// Runs `work` with `id` as the request id in scope for [`current`].
pub async fn scoped<F: std::future::Future>(id: String, work: F) -> F::Output {
    CURRENT.scope(id, work).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn current_is_scoped() {
        assert_eq!(current(), None);
        let seen = CURRENT.scope("abc".to_string(), async { current() }).await;
        assert_eq!(seen.as_deref(), Some("abc"));
    }
}
