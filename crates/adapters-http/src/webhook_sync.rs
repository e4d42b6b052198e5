//! `?sync=true` webhook calls: wait (bounded) for the accepted execution to end and answer
//! with its reply, as n8n's "Respond to Webhook" does.
//!
//! The wait polls the execution's status with a short backoff (5 ms doubling up to 100 ms)
//! until it is terminal or the configured timeout runs out; the execution itself is never
//! affected by the wait ending.

use crate::error::ApiError;
use axum::Json;
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use flow_domain::error::ServiceResult;
use flow_domain::ids::ExecutionId;
use flow_domain::model::{Execution, ExecutionStatus};
use flow_domain::services::ExecutionService;
use std::time::Duration;
use tokio::time::Instant;

/// The header naming the execution of a synchronous answer.
pub const EXECUTION_ID_HEADER: HeaderName = HeaderName::from_static("x-execution-id");
/// The 500 message for an execution cancelled while the caller waited.
pub const CANCELLED: &str = "Execution was cancelled";

const FIRST_DELAY: Duration = Duration::from_millis(5);
const LONGEST_DELAY: Duration = Duration::from_millis(100);

/// The execution once it ended, or `None` when `timeout` ran out first.
///
/// # Errors
/// When the execution cannot be read.
pub async fn wait_for_end(
    executions: &ExecutionService,
    id: ExecutionId,
    timeout: Duration,
) -> ServiceResult<Option<Execution>> {
    let deadline = Instant::now() + timeout;
    let mut delay = FIRST_DELAY;
    loop {
        let execution = executions.status_of(id).await?;
        if execution.status.is_terminal() {
            return Ok(Some(execution));
        }
        let now = Instant::now();
        if now >= deadline {
            return Ok(None);
        }
        tokio::time::sleep(delay.min(deadline - now)).await;
        delay = (delay * 2).min(LONGEST_DELAY);
    }
}

/// The answer for the outcome of the wait: 200 with the reply, 500 with the error of a failed
/// or cancelled execution, 504 when the wait ran out; always with `x-execution-id`.
pub fn render(id: ExecutionId, outcome: Option<Execution>, timeout: Duration) -> Response {
    let mut response = match outcome {
        None => ApiError::new(
            StatusCode::GATEWAY_TIMEOUT,
            format!(
                "The execution did not end within {} ms; it goes on (see GET /executions/{id}).",
                timeout.as_millis()
            ),
        )
        .into_response(),
        Some(execution) if execution.status == ExecutionStatus::Cancelled => {
            ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, CANCELLED).into_response()
        }
        Some(execution) => match execution.into_reply() {
            Ok(body) => (StatusCode::OK, Json(body)).into_response(),
            Err(message) => ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, message).into_response(),
        },
    };
    if let Ok(value) = HeaderValue::from_str(&id.to_string()) {
        response.headers_mut().insert(EXECUTION_ID_HEADER, value);
    }
    response
}
