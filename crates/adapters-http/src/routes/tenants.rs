//! Tenant administration under `/api/tenants`.

use crate::envelope::{Data, List};
use crate::error::{ApiError, ErrorBody};
use crate::extract::{Authed, JsonBody, PathParams, QueryParams};
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use flow_domain::model::Tenant;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The routes of this module.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_tenants, create_tenant)).routes(routes!(get_tenant))
}

/// Creates a tenant (admins).
#[utoipa::path(post, path = "/api/tenants", tag = "tenants", security(("bearerAuth" = [])),
    request_body(content = Object, description = "{name}"),
    responses(
        (status = 201, description = "Created", body = Data<Tenant>),
        (status = 400, description = "Invalid tenant", body = ErrorBody),
        (status = 403, description = "MISSING_PERMISSION", body = ErrorBody),
        (status = 409, description = "Duplicate name", body = ErrorBody),
    ))]
pub async fn create_tenant(
    State(state): State<AppState>,
    Authed(actor): Authed,
    JsonBody(body): JsonBody,
) -> Result<(StatusCode, Json<Data<Tenant>>), ApiError> {
    let tenant = state.tenants.create(&actor, &body).await?;
    Ok((StatusCode::CREATED, Json(Data::new(tenant))))
}

/// Lists tenants (admins).
#[utoipa::path(get, path = "/api/tenants", tag = "tenants", security(("bearerAuth" = [])),
    params(
        ("page[size]" = Option<u32>, Query, description = "1..=100, default 10"),
        ("page[number]" = Option<u32>, Query, description = ">= 1, default 1"),
    ),
    responses(
        (status = 200, description = "One page of tenants", body = List<Tenant>),
        (status = 400, description = "Bad paging", body = ErrorBody),
        (status = 403, description = "MISSING_PERMISSION", body = ErrorBody),
    ))]
pub async fn list_tenants(
    State(state): State<AppState>,
    Authed(actor): Authed,
    QueryParams(params): QueryParams,
) -> Result<Json<List<Tenant>>, ApiError> {
    let page = state.tenants.list(&actor, &params).await?;
    Ok(Json(List::from_page(page, &params)))
}

/// One tenant: admins, or a tenant administrator for its own.
#[utoipa::path(get, path = "/api/tenants/{id}", tag = "tenants", security(("bearerAuth" = [])),
    params(("id" = String, Path, description = "Tenant id")),
    responses(
        (status = 200, description = "The tenant", body = Data<Tenant>),
        (status = 400, description = "Invalid id", body = ErrorBody),
        (status = 404, description = "Tenant not found", body = ErrorBody),
    ))]
pub async fn get_tenant(
    State(state): State<AppState>,
    Authed(actor): Authed,
    PathParams(id): PathParams<String>,
) -> Result<Json<Data<Tenant>>, ApiError> {
    Ok(Json(Data::new(state.tenants.get(&actor, &id).await?)))
}
