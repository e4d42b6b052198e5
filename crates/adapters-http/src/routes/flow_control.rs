//! Flow lifecycle routes: start and stop (one or many), and a step's logs.

use crate::envelope::{ControlItem, Data, FlowState, List};
use crate::error::{ApiError, ErrorBody};
use crate::extract::{Authed, JsonBody, PathParams, QueryParams};
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use flow_domain::model::Flow;
use serde_json::Value;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The routes of this module.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(start_flow))
        .routes(routes!(stop_flow))
        .routes(routes!(start_flows))
        .routes(routes!(stop_flows))
        .routes(routes!(step_logs))
}

fn state_of(flow: Flow) -> Data<FlowState> {
    Data::new(FlowState { id: flow.id.to_string(), status: flow.status })
}

/// Starts an inactive flow (`flows.control`): it becomes `starting` until the engine confirms.
#[utoipa::path(post, path = "/flows/{id}/start", tag = "flows", security(("bearerAuth" = [])),
    params(("id" = String, Path, description = "Flow id")),
    responses(
        (status = 200, description = "Starting", body = Data<FlowState>),
        (status = 404, description = "No flow found", body = ErrorBody),
        (status = 409, description = "Flow is not inactive", body = ErrorBody),
    ))]
pub async fn start_flow(
    State(state): State<AppState>,
    Authed(actor): Authed,
    PathParams(id): PathParams<String>,
) -> Result<Json<Data<FlowState>>, ApiError> {
    Ok(Json(state_of(state.flows.start(&actor, &id).await?)))
}

/// Stops an active or starting flow (`flows.control`): it becomes `stopping`.
#[utoipa::path(post, path = "/flows/{id}/stop", tag = "flows", security(("bearerAuth" = [])),
    params(("id" = String, Path, description = "Flow id")),
    responses(
        (status = 200, description = "Stopping", body = Data<FlowState>),
        (status = 404, description = "No flow found", body = ErrorBody),
        (status = 409, description = "Flow is inactive or already stopping", body = ErrorBody),
    ))]
pub async fn stop_flow(
    State(state): State<AppState>,
    Authed(actor): Authed,
    PathParams(id): PathParams<String>,
) -> Result<Json<Data<FlowState>>, ApiError> {
    Ok(Json(state_of(state.flows.stop(&actor, &id).await?)))
}

/// Starts several flows (`flows.control`): one result per id, in order.
#[utoipa::path(post, path = "/flows/multiple/start", tag = "flows", security(("bearerAuth" = [])),
    request_body(content = Vec<String>, description = "1..=100 flow ids"),
    responses(
        (status = 200, description = "One result per id", body = Data<Vec<ControlItem>>),
        (status = 400, description = "Not an array of 1..=100 ids", body = ErrorBody),
        (status = 403, description = "MISSING_PERMISSION", body = ErrorBody),
    ))]
pub async fn start_flows(
    State(state): State<AppState>,
    Authed(actor): Authed,
    JsonBody(body): JsonBody,
) -> Result<Json<Data<Vec<ControlItem>>>, ApiError> {
    let outcomes = state.flows.start_many(&actor, &body).await?;
    Ok(Json(Data::new(outcomes.into_iter().map(|(id, r)| ControlItem::from_outcome(id, r)).collect())))
}

/// Stops several flows (`flows.control`): one result per id, in order.
#[utoipa::path(post, path = "/flows/multiple/stop", tag = "flows", security(("bearerAuth" = [])),
    request_body(content = Vec<String>, description = "1..=100 flow ids"),
    responses(
        (status = 200, description = "One result per id", body = Data<Vec<ControlItem>>),
        (status = 400, description = "Not an array of 1..=100 ids", body = ErrorBody),
        (status = 403, description = "MISSING_PERMISSION", body = ErrorBody),
    ))]
pub async fn stop_flows(
    State(state): State<AppState>,
    Authed(actor): Authed,
    JsonBody(body): JsonBody,
) -> Result<Json<Data<Vec<ControlItem>>>, ApiError> {
    let outcomes = state.flows.stop_many(&actor, &body).await?;
    Ok(Json(Data::new(outcomes.into_iter().map(|(id, r)| ControlItem::from_outcome(id, r)).collect())))
}

/// The step's record in each execution of the flow that ran it, newest first (`flows.read`):
/// `{executionId, executionStatus, stepId, step}`.
#[utoipa::path(get, path = "/flows/{id}/steps/{stepId}/logs", tag = "flows",
    security(("bearerAuth" = [])),
    params(
        ("id" = String, Path, description = "Flow id"),
        ("stepId" = String, Path, description = "Node id"),
        ("page[size]" = Option<u32>, Query, description = "1..=100, default 10"),
        ("page[number]" = Option<u32>, Query, description = ">= 1, default 1"),
    ),
    responses(
        (status = 200, description = "One page of step records", body = List<Object>),
        (status = 404, description = "No flow found / No step found", body = ErrorBody),
    ))]
pub async fn step_logs(
    State(state): State<AppState>,
    Authed(actor): Authed,
    PathParams((id, step_id)): PathParams<(String, String)>,
    QueryParams(params): QueryParams,
) -> Result<Json<List<Value>>, ApiError> {
    let page = state.executions.step_logs(&actor, &id, &step_id, &params).await?;
    Ok(Json(List::from_page(page, &params)))
}
