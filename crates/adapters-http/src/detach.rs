//! Every request runs to its end in a task of its own, whatever the client does.
//!
//! When a client disconnects, the server drops the future of its request. A use case dropped
//! half-way through a database operation is worse than one that finishes unheard: sqlx 0.9.0's
//! PostgreSQL pool is not cancel-safe (a `BEGIN` or a connection return cut short can leave a
//! pooled connection inside a transaction, or lose it from the pool for good; see
//! transact-rs/sqlx#4393), and a webhook call that was stored should also get its answer
//! logged and counted. So the request is handed to a spawned task and only the wait for its
//! answer is dropped. A panic in a handler becomes a 500 in the error envelope, quoting the
//! request id like every 5xx.
//!
//! It runs inside the layers that set the request id and open the request's span, and carries
//! both into the spawned task (task-locals and spans do not follow a spawn by themselves).

use crate::error::{ApiError, INTERNAL_ERROR};
use crate::request_id;
use axum::extract::Request;
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tracing::Instrument;

/// Runs the rest of the stack for `request` in a spawned task, within its request id and span,
/// and answers what it answers.
pub(crate) async fn run_to_completion(request: Request, next: Next) -> Response {
    let id = request_id::of_request(&request);
    let handled = request_id::scoped(id.clone(), next.run(request)).instrument(tracing::Span::current());
    match tokio::spawn(handled).await {
        Ok(response) => response,
        Err(err) => {
            request_id::scoped(id, async move {
                tracing::error!(error = %err, "request handler panicked");
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, INTERNAL_ERROR).into_response()
            })
            .await
        }
    }
}
