//! Executions (SPEC §7): list, get, retry, cancel, and FlowMate's usage report
//! `GET /icenter/executions`. Every route needs a bearer token.

use crate::envelope::{Data, List};
use crate::error::{ApiError, ErrorBody};
use crate::extract::{Authed, PathParams, QueryParams};
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use flow_domain::model::Execution;
use serde_json::Value;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The routes of this module.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_executions))
        .routes(routes!(get_execution))
        .routes(routes!(retry_execution))
        .routes(routes!(cancel_execution))
        .routes(routes!(usage_report))
}

/// Lists the executions the caller may see, newest first (`executions.read` or `flows.read`).
#[utoipa::path(get, path = "/executions", tag = "executions", security(("bearerAuth" = [])),
    params(
        ("page[size]" = Option<u32>, Query, description = "1..=100, default 10"),
        ("page[number]" = Option<u32>, Query, description = ">= 1, default 1"),
        ("filter[flowId]" = Option<String>, Query, description = "Flow id"),
        ("filter[status]" = Option<String>, Query, description = "queued, running, succeeded, failed or cancelled"),
        ("filter[from]" = Option<String>, Query, description = "Created at or after (RFC 3339)"),
        ("filter[to]" = Option<String>, Query, description = "Created before (RFC 3339)"),
    ),
    responses(
        (status = 200, description = "One page of executions", body = List<Object>),
        (status = 400, description = "Bad parameters", body = ErrorBody),
        (status = 403, description = "MISSING_PERMISSION", body = ErrorBody),
    ))]
pub async fn list_executions(
    State(state): State<AppState>,
    Authed(actor): Authed,
    QueryParams(params): QueryParams,
) -> Result<Json<List<Execution>>, ApiError> {
    let page = state.executions.list(&actor, &params).await?;
    Ok(Json(List::from_page(page, &params)))
}

/// One execution with its steps (`executions.read` or `flows.read`).
#[utoipa::path(get, path = "/executions/{id}", tag = "executions", security(("bearerAuth" = [])),
    params(("id" = String, Path, description = "Execution id")),
    responses(
        (status = 200, description = "The execution", body = Data<Object>),
        (status = 400, description = "Invalid id", body = ErrorBody),
        (status = 404, description = "No execution found", body = ErrorBody),
    ))]
pub async fn get_execution(
    State(state): State<AppState>,
    Authed(actor): Authed,
    PathParams(id): PathParams<String>,
) -> Result<Json<Data<Execution>>, ApiError> {
    Ok(Json(Data::new(state.executions.get(&actor, &id).await?)))
}

/// Runs a finished execution again (`flows.control`): a new queued execution of the same flow
/// with the same input, trigger `manual`.
#[utoipa::path(post, path = "/executions/{id}/retry", tag = "executions",
    security(("bearerAuth" = [])),
    params(("id" = String, Path, description = "Execution id")),
    responses(
        (status = 201, description = "The new execution", body = Data<Object>),
        (status = 404, description = "No execution found", body = ErrorBody),
        (status = 409, description = "Not finished yet, or its flow was deleted", body = ErrorBody),
    ))]
pub async fn retry_execution(
    State(state): State<AppState>,
    Authed(actor): Authed,
    PathParams(id): PathParams<String>,
) -> Result<(StatusCode, Json<Data<Execution>>), ApiError> {
    let execution = state.executions.retry(&actor, &id).await?;
    Ok((StatusCode::CREATED, Json(Data::new(execution))))
}

/// Cancels a queued or running execution (`flows.control`); the worker stops before its
/// next step.
#[utoipa::path(post, path = "/executions/{id}/cancel", tag = "executions",
    security(("bearerAuth" = [])),
    params(("id" = String, Path, description = "Execution id")),
    responses(
        (status = 200, description = "The cancelled execution", body = Data<Object>),
        (status = 404, description = "No execution found", body = ErrorBody),
        (status = 409, description = "Already finished", body = ErrorBody),
    ))]
pub async fn cancel_execution(
    State(state): State<AppState>,
    Authed(actor): Authed,
    PathParams(id): PathParams<String>,
) -> Result<Json<Data<Execution>>, ApiError> {
    Ok(Json(Data::new(state.executions.cancel(&actor, &id).await?)))
}

/// FlowMate's usage report: executed steps in the caller's tenant between `start` and `end`,
/// grouped by user, flow or component (`executions.read` or `flows.read`).
#[utoipa::path(get, path = "/icenter/executions", tag = "executions",
    security(("bearerAuth" = [])),
    params(
        ("start" = Option<String>, Query, description = "YYYY-MM-DD, default a month before end"),
        ("end" = Option<String>, Query, description = "YYYY-MM-DD (inclusive), default today"),
        ("groupby" = Option<String>, Query, description = "user (default), flow or component"),
    ),
    responses(
        (status = 200, description = "`[{id, user|flow|component, tenant, total, flows: [{id, count}]}]`", body = Data<Vec<Object>>),
        (status = 400, description = "Bad dates or groupby", body = ErrorBody),
        (status = 403, description = "MISSING_PERMISSION", body = ErrorBody),
    ))]
pub async fn usage_report(
    State(state): State<AppState>,
    Authed(actor): Authed,
    QueryParams(params): QueryParams,
) -> Result<Json<Data<Vec<Value>>>, ApiError> {
    Ok(Json(Data::new(state.executions.usage(&actor, &params).await?)))
}
