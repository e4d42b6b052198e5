//! User administration, mounted under `/api/users` and under the alias prefix `/users`.

use crate::envelope::{Data, List, Message};
use crate::error::{ApiError, ErrorBody};
use crate::extract::{Authed, JsonBody, PathParams, QueryParams};
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use flow_domain::model::User;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The routes of this module, relative to the prefix they are nested under.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_users, create_user))
        .routes(routes!(current_user))
        .routes(routes!(get_user, update_user, delete_user))
}

/// Lists users: admins see all; `tenant.account.read` holders their tenant's.
#[utoipa::path(get, path = "", tag = "users", security(("bearerAuth" = [])),
    params(
        ("username" = Option<String>, Query, description = "Exact username"),
        ("page[size]" = Option<u32>, Query, description = "1..=100, default 10"),
        ("page[number]" = Option<u32>, Query, description = ">= 1, default 1"),
    ),
    responses(
        (status = 200, description = "One page of users", body = List<User>),
        (status = 400, description = "Bad paging", body = ErrorBody),
        (status = 403, description = "MISSING_PERMISSION", body = ErrorBody),
    ))]
pub async fn list_users(
    State(state): State<AppState>,
    Authed(actor): Authed,
    QueryParams(params): QueryParams,
) -> Result<Json<List<User>>, ApiError> {
    let page = state.users.list(&actor, &params).await?;
    Ok(Json(List::from_page(page, &params)))
}

/// Creates a user (`tenant.account.create`).
#[utoipa::path(post, path = "", tag = "users", security(("bearerAuth" = [])),
    request_body(content = Object, description = "username, password, firstname, lastname, status, tenant, permissions, canLogin"),
    responses(
        (status = 201, description = "Created", body = Data<User>),
        (status = 400, description = "Invalid user", body = ErrorBody),
        (status = 403, description = "MISSING_PERMISSION", body = ErrorBody),
        (status = 409, description = "Duplicate username", body = ErrorBody),
    ))]
pub async fn create_user(
    State(state): State<AppState>,
    Authed(actor): Authed,
    JsonBody(body): JsonBody,
) -> Result<(StatusCode, Json<Data<User>>), ApiError> {
    let user = state.users.create(&actor, &body).await?;
    Ok((StatusCode::CREATED, Json(Data::new(user))))
}

/// The caller's own account.
#[utoipa::path(get, path = "/me", tag = "users", security(("bearerAuth" = [])),
    responses(
        (status = 200, description = "The caller", body = Data<User>),
        (status = 401, description = "Not authenticated", body = ErrorBody),
    ))]
pub async fn current_user(
    State(state): State<AppState>,
    Authed(actor): Authed,
) -> Result<Json<Data<User>>, ApiError> {
    Ok(Json(Data::new(state.users.me(&actor).await?)))
}

/// One user: oneself, or with `tenant.account.read` in one's tenant.
#[utoipa::path(get, path = "/{id}", tag = "users", security(("bearerAuth" = [])),
    params(("id" = String, Path, description = "User id")),
    responses(
        (status = 200, description = "The user", body = Data<User>),
        (status = 400, description = "Invalid id", body = ErrorBody),
        (status = 404, description = "User not found", body = ErrorBody),
    ))]
pub async fn get_user(
    State(state): State<AppState>,
    Authed(actor): Authed,
    PathParams(id): PathParams<String>,
) -> Result<Json<Data<User>>, ApiError> {
    Ok(Json(Data::new(state.users.get(&actor, &id).await?)))
}

/// Changes a user: names and password of oneself, anything with `tenant.account.update`.
#[utoipa::path(patch, path = "/{id}", tag = "users", security(("bearerAuth" = [])),
    params(("id" = String, Path, description = "User id")),
    request_body(content = Object, description = "firstname, lastname, password, status, permissions"),
    responses(
        (status = 200, description = "The updated user", body = Data<User>),
        (status = 400, description = "Invalid change", body = ErrorBody),
        (status = 403, description = "MISSING_PERMISSION", body = ErrorBody),
        (status = 404, description = "User not found", body = ErrorBody),
    ))]
pub async fn update_user(
    State(state): State<AppState>,
    Authed(actor): Authed,
    PathParams(id): PathParams<String>,
    JsonBody(body): JsonBody,
) -> Result<Json<Data<User>>, ApiError> {
    Ok(Json(Data::new(state.users.update(&actor, &id, &body).await?)))
}

/// Deletes a user (`iam.account.delete`); their ownerships are removed.
#[utoipa::path(delete, path = "/{id}", tag = "users", security(("bearerAuth" = [])),
    params(("id" = String, Path, description = "User id")),
    responses(
        (status = 200, description = "Deleted", body = Message),
        (status = 403, description = "MISSING_PERMISSION", body = ErrorBody),
        (status = 404, description = "User not found", body = ErrorBody),
        (status = 409, description = "Own account", body = ErrorBody),
    ))]
pub async fn delete_user(
    State(state): State<AppState>,
    Authed(actor): Authed,
    PathParams(id): PathParams<String>,
) -> Result<Json<Message>, ApiError> {
    state.users.delete(&actor, &id).await?;
    Ok(Json(Message::new("User was successfully deleted")))
}
