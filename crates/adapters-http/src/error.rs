//! The error contract of the API, in one place: the table mapping every [`ServiceError`] to a
//! status and the `{"errors": [...]}` envelope, and the same envelope for axum's own rejections
//! (bad JSON, wrong content type, body too large, bad query or path).
//!
//! 5xx bodies carry the request id and a generic message only; the cause is logged once, here,
//! with its full chain and the request id.

use crate::request_id;
use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use flow_domain::error::ServiceError;
use serde::Serialize;
use utoipa::ToSchema;

/// The message of every 500.
pub const INTERNAL_ERROR: &str = "Internal server error";
/// The message of every 503.
pub const UNAVAILABLE: &str = "Service temporarily unavailable; retry later.";
/// The 503 answer while too many executions wait to run.
pub const OVERLOADED: &str = "Too many executions are waiting to run; retry later.";
/// The message of a 429 on login.
pub const RATE_LIMITED: &str = "Too many failed login attempts. Retry later.";
/// The message of a 400 for a path or filter id that is not a well-formed id.
pub const INVALID_ID: &str = "Invalid id";

/// One problem, as listed in the error envelope.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ErrorEntry {
    /// Human-readable message.
    pub message: String,
    /// The HTTP status this problem stands for.
    pub code: u16,
    /// Path of the offending field (`graph.nodes[1].function`), where one applies.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// The request id, on server errors (5xx).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// The flow an entry of a multiple start/stop is about.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flow_id: Option<String>,
}

/// The error envelope: `{"errors": [...]}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// Every problem found.
    pub errors: Vec<ErrorEntry>,
}

/// An error answer: a status, the entries of its envelope, and headers it needs.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    entries: Vec<ErrorEntry>,
    retry_after_secs: Option<u64>,
}

impl ApiError {
    /// One entry with `message`; 5xx entries carry the current request id.
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self { status, entries: vec![entry(status, message.into(), None)], retry_after_secs: None }
    }

    /// `401` with `message`.
    pub fn unauthenticated(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, message)
    }

    /// The status of the answer.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The entries of the envelope.
    pub fn entries(&self) -> &[ErrorEntry] {
        &self.entries
    }

    /// The entries, for embedding in a per-item result of a bulk answer.
    pub fn into_entries(self) -> Vec<ErrorEntry> {
        self.entries
    }
}

fn entry(status: StatusCode, message: String, field: Option<String>) -> ErrorEntry {
    let request_id = status.is_server_error().then(|| request_id::current().unwrap_or_default());
    ErrorEntry { message, code: status.as_u16(), field, request_id, flow_id: None }
}

/// THE table: business outcome -> status and envelope.
impl From<ServiceError> for ApiError {
    fn from(err: ServiceError) -> Self {
        let single = |status: StatusCode, message: String| ApiError::new(status, message);
        match err {
            ServiceError::Validation(problems) => {
                let status = StatusCode::BAD_REQUEST;
                let mut entries: Vec<ErrorEntry> =
                    problems.into_iter().map(|p| entry(status, p.message, p.field)).collect();
                if entries.is_empty() {
                    entries.push(entry(status, "Invalid request".into(), None));
                }
                ApiError { status, entries, retry_after_secs: None }
            }
            ServiceError::InvalidId => single(StatusCode::BAD_REQUEST, INVALID_ID.into()),
            ServiceError::NotFound(message) => single(StatusCode::NOT_FOUND, message),
            ServiceError::Conflict(message) => single(StatusCode::CONFLICT, message),
            ServiceError::Forbidden(message) => single(StatusCode::FORBIDDEN, message),
            ServiceError::Unauthenticated(message) => single(StatusCode::UNAUTHORIZED, message),
            ServiceError::RateLimited { retry_after_secs } => ApiError {
                retry_after_secs: Some(retry_after_secs.max(1)),
                ..single(StatusCode::TOO_MANY_REQUESTS, RATE_LIMITED.into())
            },
            ServiceError::Overloaded { retry_after_secs } => ApiError {
                retry_after_secs: Some(retry_after_secs.max(1)),
                ..single(StatusCode::SERVICE_UNAVAILABLE, OVERLOADED.into())
            },
            ServiceError::Unavailable(reason) => {
                tracing::warn!(request_id = %request_id::current().unwrap_or_default(), %reason,
                    "backing service unavailable");
                single(StatusCode::SERVICE_UNAVAILABLE, UNAVAILABLE.into())
            }
            ServiceError::Unexpected(cause) => {
                tracing::error!(request_id = %request_id::current().unwrap_or_default(),
                    error = %format!("{cause:#}"), "unexpected error");
                single(StatusCode::INTERNAL_SERVER_ERROR, INTERNAL_ERROR.into())
            }
        }
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        match &rejection {
            JsonRejection::JsonSyntaxError(_) | JsonRejection::JsonDataError(_) => ApiError::new(
                StatusCode::BAD_REQUEST,
                format!("Malformed JSON in request body. {}", rejection.body_text()),
            ),
            JsonRejection::MissingJsonContentType(_) => ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "Expected a JSON body with `Content-Type: application/json`.",
            ),
            _ => body_rejection(rejection.status(), rejection.body_text()),
        }
    }
}

/// Rejections while reading a body: 413 over the limit, else as axum classified them.
pub(crate) fn body_rejection(status: StatusCode, text: String) -> ApiError {
    match status {
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::new(status, "Request body is too large."),
        s if s.is_server_error() => {
            tracing::error!(request_id = %request_id::current().unwrap_or_default(), error = %text,
                "failed to read request body");
            ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, INTERNAL_ERROR)
        }
        s => ApiError::new(s, text),
    }
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, format!("Invalid query string. {}", rejection.body_text()))
    }
}

impl From<PathRejection> for ApiError {
    fn from(rejection: PathRejection) -> Self {
        let status = rejection.status();
        if status.is_server_error() {
            tracing::error!(request_id = %request_id::current().unwrap_or_default(),
                error = %rejection.body_text(), "path extraction failed");
            ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, INTERNAL_ERROR)
        } else {
            ApiError::new(StatusCode::BAD_REQUEST, INVALID_ID)
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, Json(ErrorBody { errors: self.entries })).into_response();
        let headers = response.headers_mut();
        if let Some(secs) = self.retry_after_secs {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

/// `404` for a path no route matches.
pub async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "Not found")
}

/// `405` for a route that exists without the requested method.
pub async fn method_not_allowed() -> ApiError {
    ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "Method not allowed")
}

#[cfg(test)]
mod tests {
    use super::*;
    use flow_domain::FieldError;

    fn status_of(err: ServiceError) -> u16 {
        ApiError::from(err).status().as_u16()
    }

    #[test]
    fn table() {
        assert_eq!(status_of(ServiceError::InvalidId), 400);
        assert_eq!(status_of(ServiceError::NotFound("No flow found".into())), 404);
        assert_eq!(status_of(ServiceError::Conflict("busy".into())), 409);
        assert_eq!(status_of(ServiceError::missing_permission()), 403);
        assert_eq!(status_of(ServiceError::Unauthenticated("no".into())), 401);
        assert_eq!(status_of(ServiceError::RateLimited { retry_after_secs: 3 }), 429);
        assert_eq!(status_of(ServiceError::Unavailable("db down".into())), 503);
        assert_eq!(status_of(ServiceError::Overloaded { retry_after_secs: 1 }), 503);
        assert_eq!(status_of(ServiceError::Unexpected(anyhow::anyhow!("boom"))), 500);
    }

    #[test]
    fn validation_lists_every_problem_with_its_field() {
        let err = ApiError::from(ServiceError::Validation(vec![
            FieldError::at("graph.nodes[1].function", "required"),
            FieldError::general("Flows require a graph."),
        ]));
        let body = serde_json::to_value(ErrorBody { errors: err.into_entries() }).expect("json");
        assert_eq!(
            body,
            serde_json::json!({"errors": [
                {"message": "required", "code": 400, "field": "graph.nodes[1].function"},
                {"message": "Flows require a graph.", "code": 400},
            ]})
        );
    }

    #[test]
    fn server_errors_hide_the_cause_and_carry_a_request_id() {
        let err = ApiError::from(ServiceError::Unexpected(anyhow::anyhow!("SELECT * FROM secrets")));
        let entry = &err.entries()[0];
        assert_eq!(entry.message, INTERNAL_ERROR);
        assert!(entry.request_id.is_some());
        let text = serde_json::to_string(&ErrorBody { errors: err.into_entries() }).expect("json");
        assert!(!text.contains("SELECT"));
    }

    #[test]
    fn rate_limit_sets_retry_after() {
        let response = ApiError::from(ServiceError::RateLimited { retry_after_secs: 42 }).into_response();
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(response.headers().get(header::RETRY_AFTER).and_then(|v| v.to_str().ok()), Some("42"));
    }
}
