//! HTTP suite for the flow lifecycle (SPEC §4, §5): start and stop through the real engine,
//! the 409 rules, multiple start/stop, flows the engine refuses, and the removal of a deleted
//! user from owners. Store-level lifecycle rules (watchdog, idempotent consumers, transitional
//! statuses) are in `lifecycle_events.rs`.

use axum::http::{Method, StatusCode};
use flowmate_tests::{Reply, TestApp, flow_body};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

const CONTROLLER: &[&str] = &["flows.read", "flows.write", "flows.control"];

fn assert_error(reply: &Reply, status: StatusCode, message: &str) {
    assert_eq!(reply.status, status, "{:?}", reply.body);
    assert_eq!(reply.messages(), vec![message.to_string()], "{:?}", reply.body);
}

async fn start(app: &TestApp, token: &str, id: &str) -> Reply {
    app.post_empty(&format!("/flows/{id}/start"), token).await
}

async fn stop(app: &TestApp, token: &str, id: &str) -> Reply {
    app.post_empty(&format!("/flows/{id}/stop"), token).await
}

async fn create(app: &TestApp, token: &str, body: Value) -> String {
    let reply = app.post("/flows", token, body).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{:?}", reply.body);
    reply.body["data"]["id"].as_str().expect("id").to_string()
}

/// Polls the flow as `token` until `done` holds for it (deadline 10 s).
async fn wait_until(
    app: &TestApp,
    token: &str,
    id: &str,
    what: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let reply = app.get(&format!("/flows/{id}"), token).await;
        if done(&reply.body["data"]) {
            return reply.body["data"].clone();
        }
        assert!(Instant::now() < deadline, "flow {id} never {what}: {:?}", reply.body);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn start_answers_starting_and_the_engine_makes_the_flow_active() {
    let app = TestApp::spawn().await;
    let tenant = app.tenant("acme").await;
    let (_, token) = app.user(Some(&tenant), CONTROLLER).await;
    let id = app.flow(&token, "orders").await;
    let reply = start(&app, &token, &id).await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    assert_eq!(reply.body, json!({"data": {"id": id, "status": "starting"}, "meta": {}}));
    let flow = app.wait_for_status(&token, &id, "active").await;
    assert_eq!(flow["statusReason"], Value::Null);
    assert_eq!(app.get("/flows?filter%5Bstatus%5D=active", &token).await.body["meta"]["total"], 1);
    app.shutdown().await;
}

#[tokio::test]
async fn stop_answers_stopping_and_the_engine_makes_the_flow_inactive() {
    let app = TestApp::spawn().await;
    let tenant = app.tenant("acme").await;
    let (_, token) = app.user(Some(&tenant), CONTROLLER).await;
    let id = app.flow(&token, "orders").await;
    assert_eq!(start(&app, &token, &id).await.status, StatusCode::OK);
    app.wait_for_status(&token, &id, "active").await;
    let reply = stop(&app, &token, &id).await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    assert_eq!(reply.body, json!({"data": {"id": id, "status": "stopping"}, "meta": {}}));
    let flow = app.wait_for_status(&token, &id, "inactive").await;
    assert_eq!(flow["statusReason"], Value::Null);
    // Once inactive again, it can be edited, restarted and deleted.
    let reply = app.patch(&format!("/flows/{id}"), &token, json!({"name": "edited"})).await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    assert_eq!(start(&app, &token, &id).await.status, StatusCode::OK);
    app.wait_for_status(&token, &id, "active").await;
    assert_eq!(stop(&app, &token, &id).await.status, StatusCode::OK);
    app.wait_for_status(&token, &id, "inactive").await;
    assert_eq!(app.delete(&format!("/flows/{id}"), &token).await.status, StatusCode::OK);
    app.shutdown().await;
}

#[tokio::test]
async fn start_and_stop_answer_409_outside_their_statuses() {
    let app = TestApp::spawn().await;
    let tenant = app.tenant("acme").await;
    let (_, token) = app.user(Some(&tenant), CONTROLLER).await;
    let id = app.flow(&token, "orders").await;
    let reply = stop(&app, &token, &id).await;
    assert_error(&reply, StatusCode::CONFLICT, "Flow is not active or starting. Current status: inactive");
    assert_eq!(start(&app, &token, &id).await.status, StatusCode::OK);
    // Right after a start the flow is starting, or already active: a second start is refused.
    let again = start(&app, &token, &id).await;
    assert_eq!(again.status, StatusCode::CONFLICT, "{:?}", again.body);
    let message = again.messages().join("");
    assert!(
        ["starting", "active"]
            .iter()
            .any(|s| message == format!("Flow is not inactive. Current status: {s}")),
        "{message}"
    );
    app.wait_for_status(&token, &id, "active").await;
    assert_error(
        &start(&app, &token, &id).await,
        StatusCode::CONFLICT,
        "Flow is not inactive. Current status: active",
    );
    assert_eq!(stop(&app, &token, &id).await.status, StatusCode::OK);
    let again = stop(&app, &token, &id).await;
    assert_eq!(again.status, StatusCode::CONFLICT, "{:?}", again.body);
    let message = again.messages().join("");
    assert!(
        ["stopping", "inactive"]
            .iter()
            .any(|s| message == format!("Flow is not active or starting. Current status: {s}")),
        "{message}"
    );
    app.wait_for_status(&token, &id, "inactive").await;
    app.shutdown().await;
}

#[tokio::test]
async fn start_and_stop_answer_401_403_404_and_400() {
    let app = TestApp::spawn().await;
    let (acme, globex) = (app.tenant("acme").await, app.tenant("globex").await);
    let (_, token) = app.user(Some(&acme), CONTROLLER).await;
    let (_, no_control) = app.user(Some(&acme), &["flows.read", "flows.write"]).await;
    let (_, stranger) = app.user(Some(&globex), CONTROLLER).await;
    let id = app.flow(&token, "orders").await;
    let unknown = uuid::Uuid::now_v7().to_string();
    for action in ["start", "stop"] {
        let path = format!("/flows/{id}/{action}");
        let reply = app.call(Method::POST, &path, None, None).await;
        assert_error(&reply, StatusCode::UNAUTHORIZED, "Missing authorization header.");
        assert_error(&app.post_empty(&path, &no_control).await, StatusCode::FORBIDDEN, "MISSING_PERMISSION");
        assert_error(&app.post_empty(&path, &stranger).await, StatusCode::NOT_FOUND, "No flow found");
        let reply = app.post_empty(&format!("/flows/{unknown}/{action}"), &token).await;
        assert_error(&reply, StatusCode::NOT_FOUND, "No flow found");
        let reply = app.post_empty(&format!("/flows/nope/{action}"), &token).await;
        assert_error(&reply, StatusCode::BAD_REQUEST, "Invalid id");
    }
    assert_eq!(app.get(&format!("/flows/{id}"), &token).await.body["data"]["status"], "inactive");
    app.shutdown().await;
}

#[tokio::test]
async fn multiple_start_and_stop_answer_one_result_per_id_in_order() {
    let app = TestApp::spawn().await;
    let (acme, globex) = (app.tenant("acme").await, app.tenant("globex").await);
    let (_, token) = app.user(Some(&acme), CONTROLLER).await;
    let (_, stranger) = app.user(Some(&globex), CONTROLLER).await;
    let first = app.flow(&token, "first").await;
    let second = app.flow(&token, "second").await;
    let idle = app.flow(&token, "idle").await;
    let foreign = app.flow(&stranger, "foreign").await;
    let unknown = uuid::Uuid::now_v7().to_string();
    let body = json!([first, "bad-id", unknown, foreign, second]);
    let reply = app.post("/flows/multiple/start", &token, body).await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    let data = reply.body["data"].as_array().expect("array");
    assert_eq!(data.len(), 5);
    assert_eq!(data[0]["data"], json!({"id": first, "status": "starting"}));
    let failed = |message: &str, code: u16, id: &str| json!({"errors": [{"message": message, "code": code, "flowId": id}]});
    assert_eq!(data[1], failed("Invalid id", 400, "bad-id"));
    assert_eq!(data[2], failed("No flow found", 404, &unknown));
    assert_eq!(data[3], failed("No flow found", 404, &foreign));
    assert_eq!(data[4]["data"], json!({"id": second, "status": "starting"}));
    app.wait_for_status(&token, &first, "active").await;
    app.wait_for_status(&token, &second, "active").await;
    assert_eq!(app.get(&format!("/flows/{foreign}"), &stranger).await.body["data"]["status"], "inactive");

    let reply = app.post("/flows/multiple/start", &token, json!([first])).await;
    assert_eq!(reply.body["data"][0], failed("Flow is not inactive. Current status: active", 409, &first));
    let reply = app.post("/flows/multiple/stop", &token, json!([second, idle, first])).await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    let data = reply.body["data"].as_array().expect("array");
    assert_eq!(data.len(), 3);
    assert_eq!(data[0]["data"], json!({"id": second, "status": "stopping"}));
    assert_eq!(data[1], failed("Flow is not active or starting. Current status: inactive", 409, &idle));
    assert_eq!(data[2]["data"], json!({"id": first, "status": "stopping"}));
    app.wait_for_status(&token, &first, "inactive").await;
    app.wait_for_status(&token, &second, "inactive").await;
    app.shutdown().await;
}

#[tokio::test]
async fn multiple_start_and_stop_need_an_array_of_1_to_100_ids() {
    let app = TestApp::spawn().await;
    let tenant = app.tenant("acme").await;
    let (_, token) = app.user(Some(&tenant), CONTROLLER).await;
    let (_, no_control) = app.user(Some(&tenant), &["flows.read"]).await;
    let id = app.flow(&token, "orders").await;
    let too_many: Vec<Value> = (0..101).map(|_| json!(id)).collect();
    for action in ["start", "stop"] {
        let path = format!("/flows/multiple/{action}");
        let reply = app.call(Method::POST, &path, None, Some(json!([id]))).await;
        assert_error(&reply, StatusCode::UNAUTHORIZED, "Missing authorization header.");
        assert_error(
            &app.post(&path, &no_control, json!([id])).await,
            StatusCode::FORBIDDEN,
            "MISSING_PERMISSION",
        );
        for bad in [
            json!([]),
            json!({"ids": [id]}),
            json!(id),
            json!([1]),
            json!([id, null]),
            Value::Array(too_many.clone()),
        ] {
            let reply = app.post(&path, &token, bad.clone()).await;
            assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{action} {bad}: {:?}", reply.body);
            assert_eq!(reply.body["errors"][0]["code"], 400);
        }
    }
    assert_eq!(app.get(&format!("/flows/{id}"), &token).await.body["data"]["status"], "inactive");
    app.shutdown().await;
}

#[tokio::test]
async fn a_flow_the_engine_cannot_deploy_falls_back_to_inactive_with_a_reason_naming_the_node() {
    let app = TestApp::spawn().await;
    let tenant = app.tenant("acme").await;
    let (_, token) = app.user(Some(&tenant), CONTROLLER).await;
    let with_second_node = |name: &str, node: Value| {
        let mut body = flow_body(name);
        body["graph"]["nodes"][1] = node;
        body
    };
    let cases = [
        (
            with_second_node(
                "unknown component",
                json!({"id": "add", "componentId": "teleport", "function": "beam"}),
            ),
            "Node \"add\": unknown component \"teleport\"",
        ),
        (
            with_second_node(
                "unknown function",
                json!({"id": "add", "componentId": "jq", "function": "explode"}),
            ),
            "Node \"add\": component \"jq\" has no function \"explode\"",
        ),
        (
            with_second_node(
                "missing field",
                json!({"id": "add", "componentId": "jq", "function": "transform"}),
            ),
            "Node \"add\"",
        ),
    ];
    for (body, reason) in cases {
        let id = create(&app, &token, body).await;
        let reply = start(&app, &token, &id).await;
        assert_eq!(reply.body["data"]["status"], "starting", "{:?}", reply.body);
        let flow = app.wait_for_status(&token, &id, "inactive").await;
        let got = flow["statusReason"].as_str().unwrap_or_else(|| panic!("no reason: {flow}"));
        assert!(got.contains(reason), "reason {got:?} should contain {reason:?}");
    }
    // A refused flow, once fixed, starts; a new start forgets the old reason.
    let id = create(
        &app,
        &token,
        with_second_node("fixed later", json!({"id": "add", "componentId": "jq", "function": "transform"})),
    )
    .await;
    assert_eq!(start(&app, &token, &id).await.status, StatusCode::OK);
    app.wait_for_status(&token, &id, "inactive").await;
    let reply = app.patch(&format!("/flows/{id}"), &token, flow_body("fixed later")).await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    assert_eq!(start(&app, &token, &id).await.status, StatusCode::OK);
    let flow = app.wait_for_status(&token, &id, "active").await;
    assert_eq!(flow["statusReason"], Value::Null);
    app.shutdown().await;
}

#[tokio::test]
async fn deleting_a_user_removes_it_from_owners_and_stops_flows_left_without_owners() {
    let app = TestApp::spawn().await;
    let tenant = app.tenant("acme").await;
    let (user, token) = app.user(Some(&tenant), CONTROLLER).await;
    let orphan = app.flow(&token, "orphan").await;
    let shared = app.flow(&token, "shared").await;
    let only_user = json!({"owners": [{"id": user, "type": "user"}]});
    let reply = app.patch(&format!("/flows/{orphan}"), &app.admin, only_user).await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    assert_eq!(reply.body["data"]["owners"], json!([{"id": user, "type": "user"}]));
    for id in [&orphan, &shared] {
        assert_eq!(start(&app, &token, id).await.status, StatusCode::OK);
        app.wait_for_status(&token, id, "active").await;
    }
    let reply = app.delete(&format!("/api/users/{user}"), &app.admin).await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    let flow = wait_until(&app, &app.admin, &orphan, "stopped without owners", |f| {
        f["status"] == "inactive" && f["owners"] == json!([])
    })
    .await;
    assert_eq!(flow["owners"], json!([]));
    let tenant_only = json!([{"id": tenant, "type": "tenant"}]);
    let flow =
        wait_until(&app, &app.admin, &shared, "lost its deleted owner", |f| f["owners"] == tenant_only).await;
    assert_eq!(flow["status"], "active", "a flow still owned by its tenant keeps running");
    app.shutdown().await;
}
