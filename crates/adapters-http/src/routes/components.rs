//! `GET /components`: the components and functions nodes may use.

use crate::envelope::Data;
use crate::error::{ApiError, ErrorBody};
use crate::extract::Authed;
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use flow_domain::error::ServiceError;
use flow_domain::ports::ComponentSpec;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The routes of this module.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_components))
}

/// Lists every component with its functions and their configuration schema (any
/// authenticated user).
#[utoipa::path(get, path = "/components", tag = "components", security(("bearerAuth" = [])),
    responses(
        (status = 200, description = "Every component, built-ins first", body = Data<Vec<ComponentSpec>>),
        (status = 401, description = "Not authenticated", body = ErrorBody),
    ))]
pub async fn list_components(
    State(state): State<AppState>,
    Authed(_actor): Authed,
) -> Result<Json<Data<Vec<ComponentSpec>>>, ApiError> {
    let components = state.components.list().await.map_err(ServiceError::Unexpected)?;
    Ok(Json(Data::new(components)))
}
