//! `GET /components` (the components and functions nodes may use) and `POST /components`
//! (registration of an external component of the caller's tenant).

use crate::envelope::Data;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{Authed, JsonBody};
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use flow_domain::ports::ComponentSpec;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The routes of this module.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_components, register_component))
}

/// Lists every component the caller may use with its functions and their configuration
/// schema: the built-ins, then the external components of the caller's tenant (any
/// authenticated user).
#[utoipa::path(get, path = "/components", tag = "components", security(("bearerAuth" = [])),
    responses(
        (status = 200, description = "Every component, built-ins first", body = Data<Vec<ComponentSpec>>),
        (status = 401, description = "Not authenticated", body = ErrorBody),
    ))]
pub async fn list_components(
    State(state): State<AppState>,
    Authed(actor): Authed,
) -> Result<Json<Data<Vec<ComponentSpec>>>, ApiError> {
    Ok(Json(Data::new(state.components.list(&actor).await?)))
}

/// Registers an external component (`flows.write`): `{name, url, functions: [{name,
/// description}]}`; the engine calls `url` with `{function, fields, msg}`.
#[utoipa::path(post, path = "/components", tag = "components", security(("bearerAuth" = [])),
    request_body(content = Object, description = "{name, url, functions: [{name, description}], description?}"),
    responses(
        (status = 201, description = "Registered", body = Data<ComponentSpec>),
        (status = 400, description = "Invalid registration, with every problem", body = ErrorBody),
        (status = 403, description = "MISSING_PERMISSION", body = ErrorBody),
        (status = 409, description = "The name is taken", body = ErrorBody),
    ))]
pub async fn register_component(
    State(state): State<AppState>,
    Authed(actor): Authed,
    JsonBody(body): JsonBody,
) -> Result<(StatusCode, Json<Data<ComponentSpec>>), ApiError> {
    let component = state.components.register(&actor, &body).await?;
    Ok((StatusCode::CREATED, Json(Data::new(component))))
}
