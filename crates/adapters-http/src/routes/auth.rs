//! `POST /login`, `POST /logout`, `POST /impersonate`: bare OIH-compatible answers.

use crate::error::{ApiError, ErrorBody};
use crate::extract::{Authed, ClientAddress, JsonBody};
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use flow_domain::services::IssuedToken;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// `POST /login` body (documentation only: the service validates the raw JSON).
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct LoginRequest {
    /// The account's username.
    username: String,
    /// Its password.
    password: String,
}

/// `POST /impersonate` body (documentation only).
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct ImpersonateRequest {
    /// The end user of the caller's tenant to act as (created when missing).
    username: String,
}

/// An issued token: the bearer secret and the token's id.
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenResponse {
    /// The bearer secret, shown once.
    pub token: String,
    /// The token's id.
    pub id: String,
}

impl From<IssuedToken> for TokenResponse {
    fn from(issued: IssuedToken) -> Self {
        Self { token: issued.token, id: issued.id.to_string() }
    }
}

/// `POST /logout` answer.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LoggedOut {
    /// Always `true`.
    pub logged_out: bool,
}

/// The routes of this module.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(login)).routes(routes!(logout)).routes(routes!(impersonate))
}

/// Exchanges a username and password for a bearer token.
#[utoipa::path(post, path = "/login", tag = "auth", request_body = LoginRequest,
    responses(
        (status = 200, description = "Logged in", body = TokenResponse),
        (status = 400, description = "Malformed body", body = ErrorBody),
        (status = 401, description = "Wrong username or password", body = ErrorBody),
        (status = 403, description = "Account not active", body = ErrorBody),
        (status = 429, description = "Too many failed attempts", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
    ))]
pub async fn login(
    State(state): State<AppState>,
    ClientAddress(address): ClientAddress,
    JsonBody(body): JsonBody,
) -> Result<Json<TokenResponse>, ApiError> {
    let issued = state.auth.login(&body, address.as_deref()).await?;
    Ok(Json(issued.into()))
}

/// Revokes the caller's token.
#[utoipa::path(post, path = "/logout", tag = "auth", security(("bearerAuth" = [])),
    responses(
        (status = 200, description = "Logged out", body = LoggedOut),
        (status = 401, description = "Not authenticated", body = ErrorBody),
    ))]
pub async fn logout(
    State(state): State<AppState>,
    Authed(actor): Authed,
) -> Result<Json<LoggedOut>, ApiError> {
    state.auth.logout(&actor).await?;
    Ok(Json(LoggedOut { logged_out: true }))
}

/// Issues a token for an end user of the caller's tenant (tenant administrators).
#[utoipa::path(post, path = "/impersonate", tag = "auth", request_body = ImpersonateRequest,
    security(("bearerAuth" = [])),
    responses(
        (status = 200, description = "Token for the end user", body = TokenResponse),
        (status = 400, description = "Malformed body", body = ErrorBody),
        (status = 401, description = "Not authenticated", body = ErrorBody),
        (status = 403, description = "Not a tenant administrator", body = ErrorBody),
    ))]
pub async fn impersonate(
    State(state): State<AppState>,
    Authed(actor): Authed,
    JsonBody(body): JsonBody,
) -> Result<Json<TokenResponse>, ApiError> {
    let issued = state.auth.impersonate(&actor, &body).await?;
    Ok(Json(issued.into()))
}
