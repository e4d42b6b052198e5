//! SPEC §1 and §9 over HTTP: the error envelope for axum's own rejections (bad JSON, content
//! type, body limit, unknown route, wrong method), unknown body fields, malformed ids, the
//! request id, health, the OpenAPI document and Swagger UI, the component catalogue, and paging.

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use flowmate_tests::{Reply, TestApp, flow_body};
use serde_json::{Value, json};
use std::collections::BTreeSet;

fn assert_envelope(reply: &Reply, status: StatusCode, what: &str) {
    assert_eq!(reply.status, status, "{what}: {:?}", reply.body);
    let errors =
        reply.body["errors"].as_array().unwrap_or_else(|| panic!("{what}: no envelope: {:?}", reply.body));
    assert!(!errors.is_empty(), "{what}");
    for error in errors {
        assert_eq!(error["code"], status.as_u16(), "{what}");
        assert!(error["message"].as_str().is_some_and(|m| !m.is_empty()), "{what}");
    }
    let content_type = reply.headers.get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default();
    assert!(content_type.starts_with("application/json"), "{what}: {content_type}");
}

#[tokio::test]
async fn malformed_json_and_missing_content_type_are_400_and_415_in_the_envelope() {
    let app = TestApp::spawn().await;
    let json = [("content-type", "application/json")];
    for path in ["/flows", "/templates", "/api/users", "/login"] {
        let token = (path != "/login").then_some(app.admin.as_str());
        let broken = app.call_raw(Method::POST, path, token, &json, r#"{"name": "x","#).await;
        assert_envelope(&broken, StatusCode::BAD_REQUEST, path);
        let raw = serde_json::to_string(&flow_body("typed")).expect("json");
        let untyped = app.call_raw(Method::POST, path, token, &[], raw.clone()).await;
        assert_envelope(&untyped, StatusCode::UNSUPPORTED_MEDIA_TYPE, path);
        let text = app.call_raw(Method::POST, path, token, &[("content-type", "text/plain")], raw).await;
        assert_envelope(&text, StatusCode::UNSUPPORTED_MEDIA_TYPE, path);
    }
    assert_eq!(app.get("/flows", &app.admin).await.body["meta"]["total"], 0, "nothing was created");
    app.shutdown().await;
}

#[tokio::test]
async fn bodies_over_the_configured_limit_are_413() {
    let app = TestApp::spawn_with(&["--body-limit-bytes", "1024"]).await;
    let mut big = flow_body("big");
    big["description"] = json!("x".repeat(2048));
    let json = [("content-type", "application/json")];
    for path in ["/flows", "/templates", "/login"] {
        let reply = app.call_raw(Method::POST, path, Some(&app.admin), &json, big.to_string()).await;
        assert_envelope(&reply, StatusCode::PAYLOAD_TOO_LARGE, path);
    }
    // Under the limit still works.
    assert_eq!(app.post("/flows", &app.admin, flow_body("small")).await.status, StatusCode::CREATED);
    assert_eq!(app.get("/flows", &app.admin).await.body["meta"]["total"], 1);
    app.shutdown().await;
}

#[tokio::test]
async fn unknown_routes_are_404_and_wrong_methods_405_in_the_envelope() {
    let app = TestApp::spawn().await;
    for path in ["/nope", "/flows/a/b/c/d", "/api/nothing", "/api/users/me/extra"] {
        assert_envelope(&app.get(path, &app.admin).await, StatusCode::NOT_FOUND, path);
    }
    let wrong = [
        (Method::PUT, "/flows"),
        (Method::DELETE, "/login"),
        (Method::GET, "/logout"),
        (Method::PUT, "/api/users/me"),
        (Method::POST, "/healthcheck"),
        (Method::DELETE, "/api/tenants"),
    ];
    for (method, path) in wrong {
        let reply = app.call(method.clone(), path, Some(&app.admin), None).await;
        assert_envelope(&reply, StatusCode::METHOD_NOT_ALLOWED, &format!("{method} {path}"));
    }
    app.shutdown().await;
}

#[tokio::test]
async fn unknown_body_fields_are_rejected_naming_each_field() {
    let app = TestApp::spawn().await;
    let mut flow = flow_body("mass assignment");
    flow["isAdmin"] = json!(true);
    flow["ownerTenantOverride"] = json!("x");
    let reply = app.post("/flows", &app.admin, flow).await;
    assert_envelope(&reply, StatusCode::BAD_REQUEST, "flow");
    let fields: BTreeSet<String> = reply.fields().into_iter().collect();
    assert!(fields.contains("isAdmin") && fields.contains("ownerTenantOverride"), "{fields:?}");
    let mut template = flowmate_tests::template_body("t");
    template["secret"] = json!(1);
    let reply = app.post("/templates", &app.admin, template).await;
    assert_eq!((reply.status, reply.fields()), (StatusCode::BAD_REQUEST, vec!["secret".to_string()]));
    let user = json!({"username": "u@example.com", "password": "long-enough", "role": "root"});
    let reply = app.post("/api/users", &app.admin, user).await;
    assert_eq!((reply.status, reply.fields()), (StatusCode::BAD_REQUEST, vec!["role".to_string()]));
    let tenant = app.post("/api/tenants", &app.admin, json!({"name": "T", "id": "x"})).await;
    assert_eq!((tenant.status, tenant.fields()), (StatusCode::BAD_REQUEST, vec!["id".to_string()]));
    let id = app.flow(&app.admin, "target").await;
    let patch = app.patch(&format!("/flows/{id}"), &app.admin, json!({"name": "n", "runAs": "admin"})).await;
    assert_eq!((patch.status, patch.fields()), (StatusCode::BAD_REQUEST, vec!["runAs".to_string()]));
    assert_eq!(app.get(&format!("/flows/{id}"), &app.admin).await.body["data"]["name"], "target");
    assert_eq!(app.get("/flows", &app.admin).await.body["meta"]["total"], 1);
    app.shutdown().await;
}

#[tokio::test]
async fn malformed_ids_in_paths_and_filters_are_400_invalid_id() {
    let app = TestApp::spawn().await;
    let routes = [
        (Method::GET, "/flows/not-a-uuid"),
        (Method::PATCH, "/flows/not-a-uuid"),
        (Method::DELETE, "/flows/not-a-uuid"),
        (Method::POST, "/flows/not-a-uuid/start"),
        (Method::POST, "/flows/not-a-uuid/stop"),
        (Method::GET, "/flows/not-a-uuid/steps/in/logs"),
        (Method::GET, "/templates/12345"),
        (Method::PATCH, "/templates/12345"),
        (Method::DELETE, "/templates/12345"),
        (Method::POST, "/templates/12345/generate"),
        (Method::GET, "/api/users/x"),
        (Method::PATCH, "/users/x"),
        (Method::DELETE, "/api/users/x"),
        (Method::GET, "/api/tenants/x"),
    ];
    for (method, path) in routes {
        let body = matches!(method, Method::PATCH).then(|| json!({"name": "n"}));
        let reply = app.call(method.clone(), path, Some(&app.admin), body).await;
        assert_envelope(&reply, StatusCode::BAD_REQUEST, &format!("{method} {path}"));
        assert_eq!(reply.messages(), vec!["Invalid id".to_string()], "{method} {path}");
    }
    let filters = [
        ("/flows?filter[user]=nope", "filter[user]"),
        ("/flows?filter[fromTemplate]=nope", "filter[fromTemplate]"),
        ("/templates?filter[user]=nope", "filter[user]"),
    ];
    for (path, field) in filters {
        let reply = app.get(path, &app.admin).await;
        assert_envelope(&reply, StatusCode::BAD_REQUEST, path);
        assert_eq!(reply.fields(), vec![field.to_string()], "{path}");
        assert_eq!(reply.messages(), vec!["Invalid id".to_string()], "{path}");
    }
    app.shutdown().await;
}

#[tokio::test]
async fn request_id_is_echoed_when_sent_and_generated_when_not() {
    let app = TestApp::spawn().await;
    let sent = app
        .call_raw(Method::GET, "/healthcheck", None, &[("x-request-id", "trace-me-123")], Body::empty())
        .await;
    assert_eq!(sent.headers.get("x-request-id").and_then(|v| v.to_str().ok()), Some("trace-me-123"));
    let error = app.call_raw(Method::GET, "/nope", None, &[("x-request-id", "err-456")], Body::empty()).await;
    assert_eq!(error.headers.get("x-request-id").and_then(|v| v.to_str().ok()), Some("err-456"));
    let first = app.get("/api/users/me", &app.admin).await;
    let second = app.call(Method::GET, "/flows", None, None).await;
    let ids: Vec<String> = [&first, &second]
        .iter()
        .map(|r| {
            r.headers.get("x-request-id").and_then(|v| v.to_str().ok()).expect("generated id").to_string()
        })
        .collect();
    assert!(ids.iter().all(|id| !id.is_empty()));
    assert_ne!(ids[0], ids[1], "each request gets its own id");
    app.shutdown().await;
}

#[tokio::test]
async fn healthcheck_passes_without_authentication() {
    let app = TestApp::spawn().await;
    let reply = app.call(Method::GET, "/healthcheck", None, None).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.body["status"], "pass", "{}", reply.body);
    assert_eq!(reply.body["details"]["database"], json!({"status": "pass"}));
    assert_eq!(reply.body["details"]["eventBus"]["status"], "pass");
    // The in-process bus has no group members to list; on Kafka each consumer group of the
    // process is listed (still joining right after start: not stalled past the limit yet).
    let groups = reply.body["details"]["eventBus"]["groups"].as_array().expect("groups");
    assert!(groups.iter().all(|g| g["status"] == "pass" && g["group"].is_string()), "{groups:?}");
    app.shutdown().await;
}

/// Every route this build serves, as (path template, method).
const API_ROUTES: &[(&str, &str)] = &[
    ("/login", "post"),
    ("/logout", "post"),
    ("/impersonate", "post"),
    ("/api/users", "get"),
    ("/api/users", "post"),
    ("/api/users/me", "get"),
    ("/api/users/{id}", "get"),
    ("/api/users/{id}", "patch"),
    ("/api/users/{id}", "delete"),
    ("/users", "get"),
    ("/users", "post"),
    ("/users/me", "get"),
    ("/users/{id}", "get"),
    ("/users/{id}", "patch"),
    ("/users/{id}", "delete"),
    ("/api/tenants", "get"),
    ("/api/tenants", "post"),
    ("/api/tenants/{id}", "get"),
    ("/flows", "get"),
    ("/flows", "post"),
    ("/flows/bulk", "patch"),
    ("/flows/{id}", "get"),
    ("/flows/{id}", "patch"),
    ("/flows/{id}", "delete"),
    ("/flows/{id}/start", "post"),
    ("/flows/{id}/stop", "post"),
    ("/flows/multiple/start", "post"),
    ("/flows/multiple/stop", "post"),
    ("/flows/{id}/steps/{stepId}/logs", "get"),
    ("/templates", "get"),
    ("/templates", "post"),
    ("/templates/{id}", "get"),
    ("/templates/{id}", "patch"),
    ("/templates/{id}", "delete"),
    ("/templates/{id}/generate", "post"),
    ("/components", "get"),
    ("/healthcheck", "get"),
];

const METHODS: [&str; 8] = ["get", "put", "post", "delete", "options", "head", "patch", "trace"];

#[tokio::test]
async fn openapi_document_describes_every_route_and_only_served_ones() {
    let app = TestApp::spawn().await;
    let doc = app.call(Method::GET, "/api-docs/openapi.json", None, None).await;
    assert_eq!(doc.status, StatusCode::OK);
    assert!(doc.body["openapi"].as_str().is_some_and(|v| v.starts_with("3.")), "{:?}", doc.body["openapi"]);
    let paths = doc.body["paths"].as_object().expect("paths");
    let mut documented = BTreeSet::new();
    let mut operation_ids = BTreeSet::new();
    for (path, item) in paths {
        for method in METHODS {
            if let Some(operation) = item.get(method) {
                documented.insert((path.clone(), method.to_string()));
                let id = operation["operationId"].as_str().expect("operationId").to_string();
                assert!(operation_ids.insert(id.clone()), "duplicate operationId {id}");
                assert!(operation["responses"].as_object().is_some_and(|r| !r.is_empty()), "{method} {path}");
            }
        }
    }
    for (path, method) in API_ROUTES {
        assert!(documented.contains(&(path.to_string(), method.to_string())), "{method} {path} undocumented");
    }
    assert!(doc.body["components"]["securitySchemes"]["bearerAuth"].is_object());
    // Every documented operation is really routed (no fallback 404/405).
    let id = uuid::Uuid::now_v7().to_string();
    for (path, method) in &documented {
        let concrete = path.replace("{id}", &id).replace("{stepId}", "in").replace("{flowId}", &id);
        let method = Method::from_bytes(method.to_uppercase().as_bytes()).expect("method");
        let reply = app.call(method.clone(), &concrete, None, None).await;
        assert_ne!(reply.status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
        assert_ne!(reply.messages(), vec!["Not found".to_string()], "{method} {path} is not routed");
    }
    app.shutdown().await;
}

#[tokio::test]
async fn swagger_ui_is_served() {
    let app = TestApp::spawn().await;
    let mut path = "/api-docs".to_string();
    for _ in 0..3 {
        let request = Request::builder().uri(&path).body(Body::empty()).expect("request");
        let (status, headers, body) = app.send_raw(request).await;
        if status.is_redirection() {
            let location = headers.get("location").and_then(|v| v.to_str().ok()).expect("location");
            path = if location.starts_with('/') {
                location.to_string()
            } else {
                format!("/api-docs/{location}")
            };
            continue;
        }
        assert_eq!(status, StatusCode::OK, "{path}");
        let html = String::from_utf8_lossy(&body);
        assert!(html.contains("swagger-ui"), "{path}: {html}");
        app.shutdown().await;
        return;
    }
    panic!("too many redirects from /api-docs");
}

#[tokio::test]
async fn components_lists_the_builtins_with_functions_and_config_schemas() {
    let app = TestApp::spawn().await;
    assert_eq!(app.call(Method::GET, "/components", None, None).await.status, StatusCode::UNAUTHORIZED);
    let (_, nobody) = app.user(None, &[]).await;
    let reply = app.get("/components", &nobody).await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    let components = reply.body["data"].as_array().expect("data");
    let expected = [
        ("webhook", "receive", "trigger"),
        ("scheduler", "schedule", "trigger"),
        ("http", "request", "action"),
        ("jq", "transform", "action"),
        ("filter", "filter", "action"),
        ("code", "run", "action"),
        ("log", "info", "action"),
        ("delay", "wait", "action"),
    ];
    let ids: Vec<&str> = components.iter().filter_map(|c| c["id"].as_str()).collect();
    assert_eq!(&ids[..expected.len()], expected.map(|e| e.0), "built-ins first, in order");
    for (id, function, kind) in expected {
        let component = components.iter().find(|c| c["id"] == id).expect("component");
        assert_eq!(component["kind"], kind, "{id}");
        assert_eq!(component["builtin"], true, "{id}");
        let found =
            component["functions"].as_array().expect("functions").iter().find(|f| f["name"] == function);
        let schema = &found.unwrap_or_else(|| panic!("{id}.{function} missing"))["configSchema"];
        assert_eq!(schema["type"], "object", "{id}.{function}");
        assert!(schema["properties"].is_object(), "{id}.{function}");
    }
    let jq = components.iter().find(|c| c["id"] == "jq").expect("jq");
    assert_eq!(jq["functions"][0]["configSchema"]["required"], json!(["program"]));
    let http = components.iter().find(|c| c["id"] == "http").expect("http");
    assert!(http["functions"][0]["configSchema"]["properties"]["url"].is_object());
    app.shutdown().await;
}

fn names(reply: &Reply) -> Vec<String> {
    reply.body["data"]
        .as_array()
        .expect("data")
        .iter()
        .filter_map(|f| f["name"].as_str().map(String::from))
        .collect()
}

#[tokio::test]
async fn paging_defaults_meta_empty_pages_and_limits() {
    let app = TestApp::spawn().await;
    for i in 0..12 {
        app.flow(&app.admin, &format!("flow-{i:02}")).await;
    }
    let first = app.get("/flows", &app.admin).await;
    assert_eq!(first.body["meta"], json!({"page": 1, "perPage": 10, "total": 12, "totalPages": 2}));
    let expected: Vec<String> = (0..10).map(|i| format!("flow-{i:02}")).collect();
    assert_eq!(names(&first), expected, "default order: createdAt ascending");
    let second = app.get("/flows?page[number]=2", &app.admin).await;
    assert_eq!(names(&second), vec!["flow-10".to_string(), "flow-11".to_string()]);
    assert_eq!(second.body["meta"], json!({"page": 2, "perPage": 10, "total": 12, "totalPages": 2}));
    let sized = app.get("/flows?page[size]=5&page[number]=3", &app.admin).await;
    assert_eq!(sized.body["meta"], json!({"page": 3, "perPage": 5, "total": 12, "totalPages": 3}));
    assert_eq!(names(&sized), vec!["flow-10".to_string(), "flow-11".to_string()]);
    let beyond = app.get("/flows?page[number]=9", &app.admin).await;
    assert_eq!(beyond.status, StatusCode::OK);
    assert_eq!(
        beyond.body,
        json!({"data": [], "meta": {"page": 9, "perPage": 10, "total": 12, "totalPages": 2}})
    );
    let max = app.get("/flows?page[size]=100", &app.admin).await;
    assert_eq!((max.status, names(&max).len()), (StatusCode::OK, 12));
    let empty = app.get("/templates", &app.admin).await;
    assert_eq!(
        empty.body,
        json!({"data": [], "meta": {"page": 1, "perPage": 10, "total": 0, "totalPages": 0}})
    );

    for base in ["/flows", "/templates", "/api/users", "/users", "/api/tenants"] {
        for query in ["page[size]=0", "page[size]=101", "page[size]=ten", "page[number]=0", "page[number]=-1"]
        {
            let path = format!("{base}?{query}");
            let reply = app.get(&path, &app.admin).await;
            assert_envelope(&reply, StatusCode::BAD_REQUEST, &path);
            let field = query.split('=').next().expect("name");
            assert_eq!(reply.fields(), vec![field.to_string()], "{path}");
        }
        let both = app.get(&format!("{base}?page[size]=0&page[number]=0"), &app.admin).await;
        let fields: BTreeSet<String> = both.fields().into_iter().collect();
        assert_eq!(fields, BTreeSet::from(["page[number]".to_string(), "page[size]".to_string()]), "{base}");
    }
    app.shutdown().await;
}

#[tokio::test]
async fn error_bodies_never_leak_internals() {
    let app = TestApp::spawn().await;
    let probes: Vec<Reply> = vec![
        app.get("/flows?sort=name%3BDROP%20TABLE%20flows", &app.admin).await,
        app.get("/flows?search=%27%20OR%201=1--", &app.admin).await,
        app.post("/flows", &app.admin, json!({"name": "'; DROP TABLE flows; --"})).await,
    ];
    for reply in &probes {
        let text = reply.body.to_string().to_lowercase();
        for leak in ["sqlite", "select ", "panicked", "sqlx", "stack"] {
            assert!(!text.contains(leak), "{leak} in {text}");
        }
        assert!(reply.status.is_success() || reply.status.is_client_error(), "{:?}", reply.body);
    }
    let search = &probes[1];
    assert_eq!((search.status, search.body["data"].clone()), (StatusCode::OK, Value::Array(vec![])));
    assert_eq!(app.get("/healthcheck", &app.admin).await.status, StatusCode::OK);
    app.shutdown().await;
}

#[tokio::test]
async fn metrics_are_served_in_prometheus_format() {
    let app = TestApp::spawn().await;
    let _ = app.get("/flows", &app.admin).await;
    let (status, _, bytes) =
        app.send_raw(axum::http::Request::get("/metrics").body(axum::body::Body::empty()).unwrap()).await;
    assert_eq!(status, 200);
    let text = String::from_utf8_lossy(&bytes).to_string();
    assert!(text.contains("http_requests_total"), "{text}");
    assert!(text.contains("route=\"/flows\""), "{text}");
    app.shutdown().await;
}
