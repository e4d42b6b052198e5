//! Every request runs to its end in a task of its own, whatever the client does.
//!
//! When a client disconnects, the server drops the future of its request. A use case dropped
//! half-way through a database operation is worse than one that finishes unheard: sqlx 0.9.0's
//! PostgreSQL pool is not cancel-safe (a `BEGIN` or a connection return cut short can leave a
//! pooled connection inside a transaction, or lose it from the pool for good; see
//! transact-rs/sqlx#4393), and a webhook call that was stored should also get its answer
//! logged and counted. So the request is handed to a spawned task and only the wait for its
//! answer is dropped. A panic in a handler becomes a 500 in the error envelope.

use crate::error::{ApiError, INTERNAL_ERROR};
use axum::extract::Request;
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// Runs the rest of the stack for `request` in a spawned task and answers what it answers.
pub(crate) async fn run_to_completion(request: Request, next: Next) -> Response {
    match tokio::spawn(next.run(request)).await {
        Ok(response) => response,
        Err(err) => {
            tracing::error!(error = %err, "request handler panicked");
            ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, INTERNAL_ERROR).into_response()
        }
    }
}
