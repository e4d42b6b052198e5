//! Hostile cases: user programs (rows 1-3 of the attack review). A jq program that recursed
//! without end, a Rhai script that returned a value 60,000 levels deep and jq generators that
//! ran for seconds used to abort or stall the process; now each fails its own step with a plain
//! message while the service goes on answering. A crash here kills the test process: the
//! failure is then that nothing below passes.

use axum::http::StatusCode;
use flowmate_tests::TestApp;
use serde_json::{Value, json};

/// `webhook -> <component>` with `fields`.
fn flow(component: &str, function: &str, fields: Value) -> Value {
    json!({
        "name": format!("hostile {component}"),
        "graph": {
            "nodes": [
                {"id": "in", "componentId": "webhook", "function": "receive"},
                {"id": "user", "componentId": component, "function": function, "fields": fields}
            ],
            "edges": [{"source": "in", "target": "user"}]
        }
    })
}

/// Calls the flow's webhook once and waits for the execution to end.
async fn run_once(app: &TestApp, flow: &str) -> Value {
    let reply = app.hook(&format!("/webhooks/{flow}"), &[], &json!({"n": 1})).await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    let execution = reply.body["data"]["executionId"].as_str().expect("execution id").to_string();
    app.wait_for_execution(&app.admin, &execution).await
}

async fn healthy(app: &TestApp) {
    let health = app.get("/healthcheck", &app.admin).await;
    assert_eq!(health.status, StatusCode::OK, "{:?}", health.body);
}

#[tokio::test]
async fn row_1_unbounded_recursion_fails_its_step_only() {
    let app = TestApp::spawn().await;
    let id =
        app.active_flow(&app.admin, flow("jq", "transform", json!({"program": "def f: f + 1; f"}))).await;
    let execution = run_once(&app, &id).await;
    assert_eq!(execution["status"], "failed", "{execution}");
    let error = execution["steps"]["user"]["lastError"].as_str().unwrap_or_default();
    assert!(error.starts_with("stack overflow"), "{execution}");
    healthy(&app).await;
    // Again: the pool replaced the process that died.
    let again = run_once(&app, &id).await;
    assert_eq!(again["status"], "failed");
    healthy(&app).await;
}

#[tokio::test]
async fn row_2_a_deep_script_result_fails_with_the_nesting_limit() {
    let app = TestApp::spawn().await;
    let script = "let a = []; for i in 0..3000 { a = [a]; } a";
    let fields = json!({"script": script, "limits": {"timeMs": 30000}});
    let id = app.active_flow(&app.admin, flow("code", "run", fields)).await;
    let execution = run_once(&app, &id).await;
    assert_eq!(execution["status"], "failed", "{execution}");
    assert_eq!(execution["steps"]["user"]["lastError"], "nesting deeper than 64 levels", "{execution}");
    healthy(&app).await;
}

#[tokio::test]
async fn row_3_runaway_generators_stop_at_the_time_limit_while_the_service_answers() {
    let app = TestApp::spawn().await;
    let id = app
        .active_flow(&app.admin, flow("jq", "transform", json!({"program": "last(range(459305798))"})))
        .await;
    let path = format!("/webhooks/{id}?sync=true");
    let body = json!({});
    let (first, second, health) = tokio::join!(
        app.hook(&path, &[], &body),
        app.hook(&path, &[], &body),
        app.get("/healthcheck", &app.admin),
    );
    assert_eq!(health.status, StatusCode::OK);
    for reply in [first, second] {
        assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR, "{:?}", reply.body);
        assert!(
            reply.messages().iter().any(|m| m.contains("time limit of 1000 ms exceeded")),
            "{:?}",
            reply.body
        );
    }
    healthy(&app).await;
}

#[tokio::test]
async fn programs_cannot_read_the_host() {
    let app = TestApp::spawn().await;
    // A node's program is checked when the flow starts: it does not deploy.
    for program in ["{data: env}", "$ENV", "input", "debug", "halt"] {
        let body = flow("jq", "transform", json!({"program": program}));
        let reply = app.post("/flows", &app.admin, body).await;
        assert_eq!(reply.status, StatusCode::CREATED, "{program}: {:?}", reply.body);
        let id = reply.body["data"]["id"].as_str().expect("flow id").to_string();
        assert_eq!(app.post_empty(&format!("/flows/{id}/start"), &app.admin).await.status, StatusCode::OK);
        let flow = app.wait_for_status(&app.admin, &id, "inactive").await;
        let reason = flow["statusReason"].as_str().unwrap_or_default();
        assert!(reason.contains("not a valid jq program"), "{program}: {flow}");
    }
    // An edge's program is checked when the flow is saved.
    let edge = json!({
        "name": "edge reads env",
        "graph": {
            "nodes": [
                {"id": "in", "componentId": "webhook", "function": "receive"},
                {"id": "out", "componentId": "log", "function": "info"}
            ],
            "edges": [{"source": "in", "target": "out", "config": {"mapper": "env"}}]
        }
    });
    assert_eq!(app.post("/flows", &app.admin, edge).await.status, StatusCode::BAD_REQUEST);
}
