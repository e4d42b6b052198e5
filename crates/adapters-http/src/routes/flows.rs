//! Flow CRUD: create (one or many), list, get, update (one or bulk), delete.
//! Start/stop and step logs are in [`super::flow_control`]. Every flow is answered as a
//! [`PublicFlow`] (without its webhook secret).

use crate::envelope::{Data, Item, List, Message};
use crate::error::{ApiError, ErrorBody};
use crate::extract::{Authed, JsonBody, PathParams, QueryParams};
use crate::public_flow::PublicFlow;
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use flow_domain::model::{Flow, FlowSpec};
use serde_json::Value;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The routes of this module.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_flows, create_flows))
        .routes(routes!(bulk_update_flows))
        .routes(routes!(get_flow, update_flow, delete_flow))
}

/// Creates a flow (`flows.write`), or with an array body several (`flows.bulk` too), each
/// answered in order by the flow or its `{errors}`.
#[utoipa::path(post, path = "/flows", tag = "flows", security(("bearerAuth" = [])),
    request_body(content = FlowSpec, description = "A flow, or an array of flows"),
    responses(
        (status = 201, description = "Created; for an array body `data` is an array of flows or `{errors}`", body = Data<Flow>),
        (status = 400, description = "Invalid flow, with every problem", body = ErrorBody),
        (status = 403, description = "MISSING_PERMISSION", body = ErrorBody),
    ))]
pub async fn create_flows(
    State(state): State<AppState>,
    Authed(actor): Authed,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    Ok(match body {
        Value::Array(items) => {
            let results = state.flows.create_many(&actor, &items).await?;
            let items: Vec<Item<PublicFlow>> =
                results.into_iter().map(|r| Item::from_result(r.map(PublicFlow::from))).collect();
            (StatusCode::CREATED, Json(Data::new(items))).into_response()
        }
        single => {
            let flow = PublicFlow::from(state.flows.create(&actor, &single).await?);
            (StatusCode::CREATED, Json(Data::new(flow))).into_response()
        }
    })
}

/// Lists the flows the caller may see (`flows.read`).
#[utoipa::path(get, path = "/flows", tag = "flows", security(("bearerAuth" = [])),
    params(
        ("page[size]" = Option<u32>, Query, description = "1..=100, default 10"),
        ("page[number]" = Option<u32>, Query, description = ">= 1, default 1"),
        ("filter[status]" = Option<String>, Query, description = "active, inactive, starting, stopping, 1, 0"),
        ("filter[type]" = Option<String>, Query, description = "ordinary or realtime"),
        ("filter[fromTemplate]" = Option<String>, Query, description = "Template id"),
        ("filter[user]" = Option<String>, Query, description = "Owner id (admins only)"),
        ("sort" = Option<String>, Query, description = "createdAt, updatedAt or name; `-` for descending"),
        ("search" = Option<String>, Query, description = "Substring of name or description"),
    ),
    responses(
        (status = 200, description = "One page of flows", body = List<Flow>),
        (status = 400, description = "Bad parameters", body = ErrorBody),
        (status = 403, description = "MISSING_PERMISSION", body = ErrorBody),
    ))]
pub async fn list_flows(
    State(state): State<AppState>,
    Authed(actor): Authed,
    QueryParams(params): QueryParams,
) -> Result<Json<List<PublicFlow>>, ApiError> {
    let page = PublicFlow::page(state.flows.list(&actor, &params).await?);
    Ok(Json(List::from_page(page, &params)))
}

/// One flow (`flows.read`).
#[utoipa::path(get, path = "/flows/{id}", tag = "flows", security(("bearerAuth" = [])),
    params(("id" = String, Path, description = "Flow id")),
    responses(
        (status = 200, description = "The flow", body = Data<Flow>),
        (status = 400, description = "Invalid id", body = ErrorBody),
        (status = 404, description = "No flow found", body = ErrorBody),
    ))]
pub async fn get_flow(
    State(state): State<AppState>,
    Authed(actor): Authed,
    PathParams(id): PathParams<String>,
) -> Result<Json<Data<PublicFlow>>, ApiError> {
    Ok(Json(Data::new(state.flows.get(&actor, &id).await?.into())))
}

/// Changes an inactive flow (`flows.write`): top-level merge, full re-validation.
#[utoipa::path(patch, path = "/flows/{id}", tag = "flows", security(("bearerAuth" = [])),
    params(("id" = String, Path, description = "Flow id")),
    request_body(content = Object, description = "Fields of the flow to replace"),
    responses(
        (status = 200, description = "The updated flow", body = Data<Flow>),
        (status = 400, description = "Invalid flow, with every problem", body = ErrorBody),
        (status = 404, description = "No flow found", body = ErrorBody),
        (status = 409, description = "Flow is not inactive", body = ErrorBody),
    ))]
pub async fn update_flow(
    State(state): State<AppState>,
    Authed(actor): Authed,
    PathParams(id): PathParams<String>,
    JsonBody(body): JsonBody,
) -> Result<Json<Data<PublicFlow>>, ApiError> {
    Ok(Json(Data::new(state.flows.update(&actor, &id, &body).await?.into())))
}

/// Deletes an inactive flow (`flows.write`).
#[utoipa::path(delete, path = "/flows/{id}", tag = "flows", security(("bearerAuth" = [])),
    params(("id" = String, Path, description = "Flow id")),
    responses(
        (status = 200, description = "Deleted", body = Message),
        (status = 404, description = "No flow found", body = ErrorBody),
        (status = 409, description = "Flow is not inactive", body = ErrorBody),
    ))]
pub async fn delete_flow(
    State(state): State<AppState>,
    Authed(actor): Authed,
    PathParams(id): PathParams<String>,
) -> Result<Json<Message>, ApiError> {
    state.flows.delete(&actor, &id).await?;
    Ok(Json(Message::new("Flow was successfully deleted")))
}

/// Updates several flows (`flows.bulk`): an array of partial flows with `id`, each answered in
/// order by the flow or its `{errors}`.
#[utoipa::path(patch, path = "/flows/bulk", tag = "flows", security(("bearerAuth" = [])),
    request_body(content = Vec<Object>, description = "Partial flows, each with its id"),
    responses(
        (status = 200, description = "One result per item", body = Data<Vec<Item<Flow>>>),
        (status = 400, description = "Not an array of 1..=100 objects", body = ErrorBody),
        (status = 403, description = "MISSING_PERMISSION", body = ErrorBody),
    ))]
pub async fn bulk_update_flows(
    State(state): State<AppState>,
    Authed(actor): Authed,
    JsonBody(body): JsonBody,
) -> Result<Json<Data<Vec<Item<PublicFlow>>>>, ApiError> {
    let results = state.flows.bulk_update(&actor, &body).await?;
    Ok(Json(Data::new(results.into_iter().map(|r| Item::from_result(r.map(PublicFlow::from))).collect())))
}
