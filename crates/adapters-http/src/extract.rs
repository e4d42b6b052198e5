//! Extractors: the bearer-token actor, JSON bodies, query parameters, path parameters and the
//! client address, each rejecting in the API's error envelope rather than axum's plain text.

use crate::error::{ApiError, body_rejection};
use crate::state::AppState;
use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Path, Query, Request};
use axum::http::request::Parts;
use axum::http::{HeaderValue, header};
use flow_domain::actor::Actor;
use flow_domain::query::Params;
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::convert::Infallible;
use std::net::SocketAddr;

/// The message of a 401 without an `Authorization` header.
pub const MISSING_AUTHORIZATION: &str = "Missing authorization header.";
/// The message of a 401 with an `Authorization` header that is not `Bearer <token>`.
pub const INVALID_AUTHORIZATION: &str = "Invalid authorization header";

/// The authenticated caller, from `Authorization: Bearer <token>`.
#[derive(Debug, Clone)]
pub struct Authed(pub Actor);

/// The token of a `Bearer <token>` header value (scheme case-insensitive), if well-formed.
pub fn bearer_token(value: &HeaderValue) -> Option<&str> {
    let text = value.to_str().ok()?;
    let (scheme, token) = text.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

impl FromRequestParts<AppState> for Authed {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let value = parts
            .headers
            .get(header::AUTHORIZATION)
            .ok_or_else(|| ApiError::unauthenticated(MISSING_AUTHORIZATION))?;
        let token = bearer_token(value).ok_or_else(|| ApiError::unauthenticated(INVALID_AUTHORIZATION))?;
        Ok(Self(state.auth.authenticate(token).await?))
    }
}

/// A JSON body of any shape (the services validate it); requires a JSON content type.
#[derive(Debug, Clone)]
pub struct JsonBody(pub Value);

impl<S: Send + Sync> FromRequest<S> for JsonBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let Json(value) = Json::<Value>::from_request(req, state).await?;
        Ok(Self(value))
    }
}

/// A JSON body that may be absent: no body (or an empty one) is `Value::Null`.
#[derive(Debug, Clone)]
pub struct OptionalJsonBody(pub Value);

impl<S: Send + Sync> FromRequest<S> for OptionalJsonBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let (parts, body) = req.into_parts();
        let bytes = Bytes::from_request(Request::from_parts(parts.clone(), body), state)
            .await
            .map_err(|rejection| body_rejection(rejection.status(), rejection.body_text()))?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(Self(Value::Null));
        }
        let JsonBody(value) =
            JsonBody::from_request(Request::from_parts(parts, Body::from(bytes)), state).await?;
        Ok(Self(value))
    }
}

/// The query string as raw parameters, for the services to parse.
#[derive(Debug, Clone, Default)]
pub struct QueryParams(pub Params);

impl<S: Send + Sync> FromRequestParts<S> for QueryParams {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let Query(params) = Query::<Params>::from_request_parts(parts, state).await?;
        Ok(Self(params))
    }
}

/// Path parameters (ids stay strings: the services answer `400 Invalid id`).
#[derive(Debug, Clone)]
pub struct PathParams<T>(pub T);

impl<T, S> FromRequestParts<S> for PathParams<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let Path(value) = Path::<T>::from_request_parts(parts, state).await?;
        Ok(Self(value))
    }
}

/// The client's IP address, when the server was started with connect info (in-process tests
/// have none); used to rate-limit failed logins per address.
#[derive(Debug, Clone, Default)]
pub struct ClientAddress(pub Option<String>);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddress {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Infallible> {
        let address = parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|info| info.0.ip().to_string());
        Ok(Self(address))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_tokens() {
        let token = |s: &'static str| bearer_token(&HeaderValue::from_static(s)).map(String::from);
        assert_eq!(token("Bearer abc"), Some("abc".into()));
        assert_eq!(token("bearer abc"), Some("abc".into()));
        assert_eq!(token("Bearer "), None);
        assert_eq!(token("Bearer"), None);
        assert_eq!(token("Basic abc"), None);
    }
}
