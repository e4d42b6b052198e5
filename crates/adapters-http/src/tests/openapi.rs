//! The OpenAPI document and Swagger UI: every route is described, webhooks need no bearer
//! token, operation ids are unique.

use super::{Ports, app, send};
use axum::body::Body;
use axum::http::{Request, StatusCode};
use tower::ServiceExt;

#[tokio::test]
async fn docs_are_served() {
    let doc =
        send(app(Ports::default()), Request::get("/api-docs/openapi.json").body(Body::empty()).expect("req"))
            .await;
    assert_eq!(doc.status, StatusCode::OK);
    assert!(doc.body["paths"]["/flows"].is_object());
    let ui =
        app(Ports::default()).oneshot(Request::get("/api-docs/").body(Body::empty()).expect("req")).await;
    assert_eq!(ui.expect("infallible").status(), StatusCode::OK);
}

#[test]
fn openapi_documents_every_route_with_unique_operation_ids() {
    let doc = serde_json::to_value(crate::openapi()).expect("json");
    let paths = doc["paths"].as_object().expect("paths");
    for path in [
        "/login",
        "/logout",
        "/impersonate",
        "/api/users",
        "/api/users/me",
        "/api/users/{id}",
        "/users",
        "/users/{id}",
        "/api/tenants",
        "/api/tenants/{id}",
        "/flows",
        "/flows/{id}",
        "/flows/bulk",
        "/flows/{id}/start",
        "/flows/multiple/stop",
        "/flows/{id}/steps/{stepId}/logs",
        "/templates",
        "/templates/{id}/generate",
        "/components",
        "/healthcheck",
        "/webhooks/{flowId}",
        "/webhooks/{flowId}/{suffix}",
        "/hook/{flowId}",
        "/hook/{flowId}/{suffix}",
        "/executions",
        "/executions/{id}",
        "/executions/{id}/retry",
        "/executions/{id}/cancel",
        "/icenter/executions",
    ] {
        assert!(paths.contains_key(path), "{path} missing");
    }
    assert_eq!(doc["components"]["securitySchemes"]["bearerAuth"]["scheme"], "bearer");
    assert!(doc["paths"]["/flows"]["get"]["responses"]["401"].is_object());
    assert!(doc["paths"]["/healthcheck"]["get"]["responses"]["401"].is_null());
    for method in ["get", "post", "head"] {
        let operation = &doc["paths"]["/webhooks/{flowId}"][method];
        assert!(operation.is_object(), "webhook {method} missing");
        assert!(operation["security"].is_null(), "webhooks need no bearer token");
    }
    assert_eq!(doc["paths"]["/webhooks/{flowId}"]["post"]["operationId"], "webhook_post");
    assert!(doc["paths"]["/components"]["post"].is_object());
    assert!(doc["paths"]["/executions/{id}/retry"]["post"]["responses"]["401"].is_object());
    let ids: Vec<&str> = paths
        .values()
        .flat_map(|item| item.as_object().into_iter().flat_map(|ops| ops.values()))
        .filter_map(|op| op["operationId"].as_str())
        .collect();
    let unique: std::collections::HashSet<_> = ids.iter().collect();
    assert_eq!(unique.len(), ids.len());
}
