//! Incoming webhooks (SPEC §6): `POST`, `GET` and `HEAD` on `/webhooks/{flowId}` and the OIH
//! alias `/hook/{flowId}`, each also with one extra path segment (the message's
//! `pathSuffix`). No bearer token is required here: the flow's own settings decide, in the
//! use case. Handlers read the call (headers, query, the body's bytes and content type), have
//! [`flow_domain::services::WebhookService::admit`] find the flow and check the caller, only
//! then parse the body ([`crate::webhook_body`]) and hand the call to
//! [`flow_domain::services::WebhookService::accept_admitted`], and answer the receipt, or with
//! `?sync=true` the execution's reply ([`crate::webhook_sync`]).

use crate::envelope::Data;
use crate::error::{ApiError, ErrorBody, body_rejection};
use crate::extract::{ClientAddress, PathParams};
use crate::request_id::{self, ClientSentRequestId, REQUEST_ID_HEADER};
use crate::state::AppState;
use crate::webhook_body::{BodyKind, query_object, read_body};
use crate::webhook_sync;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{FromRequest, Request, State};
use axum::http::{Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use flow_domain::limits::value_exceeds;
use flow_domain::services::{AdmittedCall, WebhookCall, WebhookMethod};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The `message` of an accepted call.
pub const THANK_YOU: &str = "thank you";

/// The routes of this module.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(webhook))
        .routes(routes!(webhook_with_suffix))
        .routes(routes!(hook))
        .routes(routes!(hook_with_suffix))
}

/// The answer to an accepted (asynchronous) call.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WebhookReceipt {
    /// The request id of the call (of the first call, for a repeated idempotency key).
    pub request_id: String,
    /// The execution the call created.
    pub execution_id: String,
    /// Always `thank you`.
    pub message: String,
}

/// Calls the flow `flowId`: `POST` with a body (JSON, `text/plain`, form, XML), `GET` with
/// the query string as data, `HEAD` to ask whether the flow would accept. `?sync=true` waits
/// for the execution to end and answers its reply.
#[utoipa::path(method(post, get, head), path = "/webhooks/{flowId}", tag = "webhooks",
    params(
        ("flowId" = String, Path, description = "Flow id"),
        ("sync" = Option<bool>, Query, description = "Wait for the execution and answer its reply"),
    ),
    request_body(content = Object, description = "JSON, text/plain, application/x-www-form-urlencoded or XML"),
    responses(
        (status = 200, description = "Accepted (or, with `sync=true`, the reply of the flow, with header `x-execution-id`)", body = Data<WebhookReceipt>),
        (status = 400, description = "Malformed JSON, form or XML, or a body nested deeper than `FLOWMATE_MAX_BODY_DEPTH`", body = ErrorBody),
        (status = 403, description = "The flow requires authentication the call lacks", body = ErrorBody),
        (status = 404, description = "No such active flow", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 415, description = "Content-Type missing or not supported", body = ErrorBody),
        (status = 500, description = "`sync=true`: the execution failed or was cancelled", body = ErrorBody),
        (status = 504, description = "`sync=true`: the execution did not end in time; it goes on", body = ErrorBody),
    ))]
pub async fn webhook(
    State(state): State<AppState>,
    ClientAddress(address): ClientAddress,
    PathParams(flow_id): PathParams<String>,
    request: Request,
) -> Response {
    receive(state, address, flow_id, None, request).await
}

/// [`webhook`] with one extra path segment, passed on as the message's `pathSuffix`.
#[utoipa::path(method(post, get, head), path = "/webhooks/{flowId}/{suffix}", tag = "webhooks",
    params(
        ("flowId" = String, Path, description = "Flow id"),
        ("suffix" = String, Path, description = "Kept as `pathSuffix`"),
        ("sync" = Option<bool>, Query, description = "Wait for the execution and answer its reply"),
    ),
    request_body(content = Object, description = "JSON, text/plain, application/x-www-form-urlencoded or XML"),
    responses(
        (status = 200, description = "Accepted", body = Data<WebhookReceipt>),
        (status = 404, description = "No such active flow", body = ErrorBody),
        (status = 415, description = "Content-Type missing or not supported", body = ErrorBody),
    ))]
pub async fn webhook_with_suffix(
    State(state): State<AppState>,
    ClientAddress(address): ClientAddress,
    PathParams((flow_id, suffix)): PathParams<(String, String)>,
    request: Request,
) -> Response {
    receive(state, address, flow_id, Some(suffix), request).await
}

/// The OIH alias of [`webhook`].
#[utoipa::path(method(post, get, head), path = "/hook/{flowId}", tag = "webhooks",
    params(
        ("flowId" = String, Path, description = "Flow id"),
        ("sync" = Option<bool>, Query, description = "Wait for the execution and answer its reply"),
    ),
    request_body(content = Object, description = "JSON, text/plain, application/x-www-form-urlencoded or XML"),
    responses(
        (status = 200, description = "Accepted", body = Data<WebhookReceipt>),
        (status = 404, description = "No such active flow", body = ErrorBody),
        (status = 415, description = "Content-Type missing or not supported", body = ErrorBody),
    ))]
pub async fn hook(
    State(state): State<AppState>,
    ClientAddress(address): ClientAddress,
    PathParams(flow_id): PathParams<String>,
    request: Request,
) -> Response {
    receive(state, address, flow_id, None, request).await
}

/// The OIH alias of [`webhook_with_suffix`].
#[utoipa::path(method(post, get, head), path = "/hook/{flowId}/{suffix}", tag = "webhooks",
    params(
        ("flowId" = String, Path, description = "Flow id"),
        ("suffix" = String, Path, description = "Kept as `pathSuffix`"),
        ("sync" = Option<bool>, Query, description = "Wait for the execution and answer its reply"),
    ),
    request_body(content = Object, description = "JSON, text/plain, application/x-www-form-urlencoded or XML"),
    responses(
        (status = 200, description = "Accepted", body = Data<WebhookReceipt>),
        (status = 404, description = "No such active flow", body = ErrorBody),
        (status = 415, description = "Content-Type missing or not supported", body = ErrorBody),
    ))]
pub async fn hook_with_suffix(
    State(state): State<AppState>,
    ClientAddress(address): ClientAddress,
    PathParams((flow_id, suffix)): PathParams<(String, String)>,
    request: Request,
) -> Response {
    receive(state, address, flow_id, Some(suffix), request).await
}

async fn receive(
    state: AppState,
    address: Option<String>,
    flow_id: String,
    path_suffix: Option<String>,
    request: Request,
) -> Response {
    let (mut call, sync, body_kind) = match read_call(&state, address, flow_id, path_suffix, request).await {
        Ok(read) => read,
        Err(err) => return err.into_response(),
    };
    let admitted = match state.webhooks.admit(&call).await {
        Ok(admitted) => admitted,
        Err(err) => return ApiError::from(err).into_response(),
    };
    if let Err(err) = read_data(&state, &mut call, body_kind) {
        return err.into_response();
    }
    answer(&state, admitted, &call, sync).await
}

/// Reads the request into a [`WebhookCall`] whose POST body is not parsed yet (its data is
/// `null`), whether the caller asked to wait, and the kind of its body (POST only).
async fn read_call(
    state: &AppState,
    address: Option<String>,
    flow_id: String,
    path_suffix: Option<String>,
    request: Request,
) -> Result<(WebhookCall, bool, Option<BodyKind>), ApiError> {
    let request_id = request_id::of_request(&request);
    let (parts, body) = request.into_parts();
    let method = match parts.method {
        Method::POST => WebhookMethod::Post,
        Method::HEAD => WebhookMethod::Head,
        _ => WebhookMethod::Get,
    };
    // A generated request id is no idempotency key: only pass on the one the client sent.
    let client_sent_id = parts.extensions.get::<ClientSentRequestId>().is_none_or(|sent| sent.0);
    let headers: Vec<(String, String)> = parts
        .headers
        .iter()
        .filter(|(name, _)| client_sent_id || *name != REQUEST_ID_HEADER)
        .map(|(name, value)| {
            (name.as_str().to_string(), String::from_utf8_lossy(value.as_bytes()).into_owned())
        })
        .collect();
    let query = query_object(parts.uri.query());
    let sync =
        matches!(query.get("sync"), Some(Value::String(s)) if s.eq_ignore_ascii_case("true") || s == "1");
    let url = parts.uri.path_and_query().map_or_else(|| parts.uri.path().to_string(), |pq| pq.to_string());
    let (raw_body, data, body_kind) = if method == WebhookMethod::Post {
        let content_type = parts
            .headers
            .get(header::CONTENT_TYPE)
            .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned());
        // The header alone answers 415; the body is parsed once the call is admitted.
        let kind = BodyKind::of(content_type.as_deref())?;
        let bytes = Bytes::from_request(Request::from_parts(parts, body), state)
            .await
            .map_err(|rejection| body_rejection(rejection.status(), rejection.body_text()))?;
        (bytes.to_vec(), Value::Null, Some(kind))
    } else {
        (Vec::new(), Value::Object(query.clone()), None)
    };
    let call = WebhookCall {
        flow_id,
        method,
        path_suffix,
        url,
        headers,
        query,
        raw_body,
        data,
        request_id,
        address,
    };
    Ok((call, sync, body_kind))
}

/// Sets the data of an admitted call: its POST body of `kind` parsed, else (GET, HEAD) its
/// query, each held to the nesting limit.
fn read_data(state: &AppState, call: &mut WebhookCall, kind: Option<BodyKind>) -> Result<(), ApiError> {
    let limits = &state.config.limits;
    match kind {
        Some(kind) => call.data = read_body(kind, &call.raw_body, limits)?,
        None if value_exceeds(&call.data, limits.max_depth) => {
            return Err(ApiError::new(StatusCode::BAD_REQUEST, limits.body_too_deep()));
        }
        None => {}
    }
    Ok(())
}

async fn answer(state: &AppState, admitted: AdmittedCall, call: &WebhookCall, sync: bool) -> Response {
    let accepted = state.webhooks.accept_admitted(admitted, call, sync).await;
    let accepted = match accepted {
        Ok(accepted) => accepted,
        Err(err) => return ApiError::from(err).into_response(),
    };
    let Some(execution_id) = accepted.execution_id else {
        // HEAD: the flow would accept; nothing was executed.
        return StatusCode::OK.into_response();
    };
    if sync {
        let timeout = state.config.webhook_sync_timeout;
        if let Some(ended) = accepted.ended {
            // Ran inline (or a repeat of a call whose execution ended): no waiting.
            return webhook_sync::render(execution_id, Some(ended), timeout);
        }
        return match webhook_sync::wait_for_end(&state.executions, execution_id, timeout).await {
            Ok(outcome) => webhook_sync::render(execution_id, outcome, timeout),
            Err(err) => ApiError::from(err).into_response(),
        };
    }
    let receipt = WebhookReceipt {
        request_id: accepted.request_id,
        execution_id: execution_id.to_string(),
        message: THANK_YOU.into(),
    };
    Json(Data::new(receipt)).into_response()
}
