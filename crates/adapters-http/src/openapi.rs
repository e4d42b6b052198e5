//! The OpenAPI document: generated from the handlers' `#[utoipa::path]` attributes as they are
//! registered on the router (so every route is described), plus the bearer security scheme.

use crate::error::{ErrorBody, ErrorEntry};
use crate::routes::{self, BEARER};
use crate::state::AppState;
use std::collections::HashSet;
use utoipa::openapi::OpenApi as Document;
use utoipa::openapi::path::Operation;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "FlowMate API",
        description = "Integration flows, templates, users and tenants (FlowMate / Open Integration Hub compatible)."
    ),
    modifiers(&BearerScheme),
    components(schemas(ErrorBody, ErrorEntry)),
    tags(
        (name = "auth", description = "Login, logout, impersonation"),
        (name = "users", description = "User accounts (also under the alias prefix /users)"),
        (name = "tenants", description = "Tenants"),
        (name = "flows", description = "Flows and their lifecycle"),
        (name = "templates", description = "Flow templates"),
        (name = "components", description = "Components nodes may use"),
        (name = "executions", description = "Runs of flows and the usage report"),
        (name = "webhooks", description = "Incoming webhook calls (auth per flow, no bearer token needed)"),
        (name = "health", description = "Readiness"),
    )
)]
struct ApiDoc;

/// Adds the `bearerAuth` scheme the protected operations refer to.
struct BearerScheme;

impl Modify for BearerScheme {
    fn modify(&self, openapi: &mut Document) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let scheme = HttpBuilder::new()
            .scheme(HttpAuthScheme::Bearer)
            .description(Some("The token returned by `POST /login`."))
            .build();
        components.add_security_scheme(BEARER, SecurityScheme::Http(scheme));
    }
}

/// Every API route with its description (the docs routes themselves are added by the caller).
pub(crate) fn api_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(routes::auth::router())
        .nest("/api/users", routes::users::router())
        .nest("/users", routes::users::router())
        .merge(routes::tenants::router())
        .merge(routes::flows::router())
        .merge(routes::flow_control::router())
        .merge(routes::templates::router())
        .merge(routes::components::router())
        .merge(routes::executions::router())
        .merge(routes::webhooks::router())
        .merge(routes::health::router())
}

/// Finishes the generated document: one handler serving several methods of a path (the
/// webhooks) gets one operation id per method (`webhook`, `webhook_post`, ...), routes mounted
/// twice (the `/users` alias) get distinct operation ids, as OpenAPI requires, and every
/// protected operation documents its 401.
pub(crate) fn finish(mut doc: Document) -> Document {
    let mut seen = HashSet::new();
    for item in doc.paths.paths.values_mut() {
        let mut in_item = HashSet::new();
        let operations = [
            ("get", &mut item.get),
            ("put", &mut item.put),
            ("post", &mut item.post),
            ("delete", &mut item.delete),
            ("options", &mut item.options),
            ("head", &mut item.head),
            ("patch", &mut item.patch),
            ("trace", &mut item.trace),
            ("query", &mut item.query),
        ];
        for (method, operation) in operations {
            let Some(operation) = operation else { continue };
            make_unique(operation, method, &mut in_item, &mut seen);
            document_unauthenticated(operation);
        }
    }
    doc
}

fn make_unique(
    operation: &mut Operation,
    method: &str,
    in_item: &mut HashSet<String>,
    seen: &mut HashSet<String>,
) {
    let Some(id) = operation.operation_id.clone() else { return };
    let id = if in_item.insert(id.clone()) { id } else { format!("{id}_{method}") };
    let mut candidate = id.clone();
    let mut n = 1;
    while !seen.insert(candidate.clone()) {
        candidate = if n == 1 { format!("{id}_alias") } else { format!("{id}_alias{n}") };
        n += 1;
    }
    operation.operation_id = Some(candidate);
}

fn document_unauthenticated(operation: &mut Operation) {
    let protected = operation.security.as_ref().is_some_and(|s| !s.is_empty());
    if protected && !operation.responses.responses.contains_key("401") {
        let content = ContentBuilder::new().schema(Some(Ref::from_schema_name("ErrorBody"))).build();
        let response = ResponseBuilder::new()
            .description("Missing, malformed, unknown or expired bearer token")
            .content("application/json", content)
            .build();
        operation.responses.responses.insert("401".into(), RefOr::T(response));
    }
}

/// The OpenAPI document of every route, as served at `/api-docs/openapi.json`.
pub fn openapi() -> Document {
    finish(api_router().into_openapi())
}
