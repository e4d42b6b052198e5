//! FlowMate's driving adapter: the REST API over the domain's use cases.
//!
//! [`router`] builds the complete application: every route of the API (handlers parse, call one
//! use case, render), the error envelope for every failure including axum's own rejections and
//! unknown routes, the body limit, the request id (`x-request-id`, echoed on every response and
//! carried by a tracing span per request), and the OpenAPI document with Swagger UI. Each
//! request runs to its end even when its client disconnects (`detach`).

mod detach;
mod envelope;
mod error;
mod extract;
mod openapi;
mod public_flow;
mod request_id;
mod request_metrics;
mod routes;
mod state;
pub mod webhook_body;
mod webhook_sync;
pub mod xml_json;

#[cfg(test)]
mod tests;

pub use envelope::{Data, List, ListMeta};
pub use error::{ApiError, ErrorBody, ErrorEntry};
pub use extract::{INVALID_AUTHORIZATION, MISSING_AUTHORIZATION};
pub use openapi::openapi;
pub use request_id::REQUEST_ID_HEADER;
pub use state::{AppState, DEFAULT_BODY_LIMIT_BYTES, DEFAULT_WEBHOOK_SYNC_TIMEOUT, HttpConfig};
pub use webhook_body::{MISSING_CONTENT_TYPE, UNSUPPORTED_CONTENT_TYPE};

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::Request;
use tower::ServiceBuilder;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tracing::{Level, Span};
use utoipa_swagger_ui::SwaggerUi;

/// Where Swagger UI is served.
pub const DOCS_PATH: &str = "/api-docs";
/// Where the OpenAPI document is served.
pub const OPENAPI_PATH: &str = "/api-docs/openapi.json";

/// What a process without the API (role `worker`) serves: `GET /healthcheck` over its
/// database and event bus, and the error envelope for anything else.
pub fn health_router(
    database: std::sync::Arc<dyn flow_domain::ports::Health>,
    event_bus: std::sync::Arc<dyn flow_domain::ports::Health>,
    bus_monitor: std::sync::Arc<dyn flow_domain::ports::BusMonitor>,
) -> Router {
    Router::new()
        .route(
            "/healthcheck",
            axum::routing::get(move || {
                let (database, event_bus, members) =
                    (database.clone(), event_bus.clone(), bus_monitor.clone());
                async move {
                    routes::health::report(database.as_ref(), event_bus.as_ref(), members.as_ref()).await
                }
            }),
        )
        .fallback(error::not_found)
        .layer(PropagateRequestIdLayer::new(REQUEST_ID_HEADER))
        .layer(SetRequestIdLayer::new(REQUEST_ID_HEADER, MakeRequestUuid))
}

/// The complete application over `state`.
pub fn router(state: AppState) -> Router {
    let (api, doc) = openapi::api_router().split_for_parts();
    let body_limit = state.config.body_limit_bytes;
    api.merge(SwaggerUi::new(DOCS_PATH).url(OPENAPI_PATH, openapi::finish(doc)))
        .fallback(error::not_found)
        .method_not_allowed_fallback(error::method_not_allowed)
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(
            ServiceBuilder::new()
                .layer(axum::middleware::from_fn(request_id::mark_client_sent))
                .layer(SetRequestIdLayer::new(REQUEST_ID_HEADER, MakeRequestUuid))
                .layer(PropagateRequestIdLayer::new(REQUEST_ID_HEADER))
                .layer(
                    TraceLayer::new_for_http()
                        .make_span_with(request_span)
                        // One line per response at DEBUG: at INFO it costs a webhook-heavy
                        // service a good part of its throughput (http_requests_total counts them).
                        .on_response(DefaultOnResponse::new().level(Level::DEBUG))
                        // Failures are logged once, with their cause, by the error renderer.
                        .on_failure(()),
                )
                .layer(axum::middleware::from_fn(detach::run_to_completion))
                .layer(axum::middleware::from_fn(request_metrics::record)),
        )
        .with_state(state)
}

fn request_span<B>(req: &Request<B>) -> Span {
    tracing::info_span!(
        "request",
        method = %req.method(),
        path = %req.uri().path(),
        request_id = %request_id::of_request(req),
    )
}
