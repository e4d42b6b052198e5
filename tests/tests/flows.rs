//! HTTP suite for flow CRUD (SPEC §1, §3, §4): create (single and bulk), get, update (single
//! and bulk), delete, with their 401/403/404/409 answers and the all-errors-at-once validation.
//! Listing is in `flows_list.rs`; start/stop in `lifecycle.rs`.

use axum::http::{Method, StatusCode};
use flowmate_tests::{Reply, TestApp, flow_body};
use serde_json::{Value, json};

const WRITER: &[&str] = &["flows.read", "flows.write"];
const CONTROLLER: &[&str] = &["flows.read", "flows.write", "flows.control"];
const STATUS_READ_ONLY: &str =
    "Flow status cannot be set manually. Use the flow start/stop end points instead.";

fn assert_error(reply: &Reply, status: StatusCode, message: &str) {
    assert_eq!(reply.status, status, "{:?}", reply.body);
    assert!(reply.messages().iter().any(|m| m == message), "expected {message:?} in {:?}", reply.body);
    for entry in reply.body["errors"].as_array().expect("errors") {
        assert_eq!(entry["code"], status.as_u16(), "{entry}");
    }
}

fn assert_timestamp(value: &Value) {
    let text = value.as_str().unwrap_or_else(|| panic!("timestamp expected, got {value}"));
    assert_eq!(text.len(), 24, "RFC 3339 with milliseconds: {text}");
    assert!(text.ends_with('Z') && &text[19..20] == ".", "UTC with milliseconds: {text}");
    chrono::DateTime::parse_from_rfc3339(text).unwrap_or_else(|e| panic!("{text}: {e}"));
}

fn assert_uuid_v7(value: &Value) {
    let text = value.as_str().expect("id string");
    let id = uuid::Uuid::parse_str(text).expect("uuid");
    assert_eq!(id.get_version_num(), 7, "{text}");
    assert_eq!(id.hyphenated().to_string(), text, "lowercase hyphenated: {text}");
}

/// Starts a flow and waits until the engine has confirmed it.
async fn activate(app: &TestApp, token: &str, id: &str) {
    let reply = app.post_empty(&format!("/flows/{id}/start"), token).await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    app.wait_for_status(token, id, "active").await;
}

#[tokio::test]
async fn create_answers_201_with_caller_and_tenant_as_owners_inactive_and_ms_timestamps() {
    let app = TestApp::spawn().await;
    let tenant = app.tenant("acme").await;
    let (user, token) = app.user(Some(&tenant), WRITER).await;
    let reply = app.post("/flows", &token, flow_body("orders")).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{:?}", reply.body);
    assert_eq!(reply.body["meta"], json!({}));
    let flow = &reply.body["data"];
    assert_uuid_v7(&flow["id"]);
    assert_eq!(flow["name"], "orders");
    assert_eq!(flow["description"], "orders description");
    assert_eq!(flow["status"], "inactive");
    assert_eq!(flow["type"], "ordinary");
    assert_eq!(flow["tenant"], tenant);
    assert_eq!(flow["fromTemplate"], Value::Null);
    assert_eq!(flow["owners"], json!([{"id": user, "type": "user"}, {"id": tenant, "type": "tenant"}]));
    assert_eq!(flow["graph"]["nodes"][1]["fields"], json!({"program": ".data"}));
    assert_eq!(flow["graph"]["edges"][0]["source"], "in");
    assert_timestamp(&flow["createdAt"]);
    assert_timestamp(&flow["updatedAt"]);
    let id = flow["id"].as_str().expect("id");
    let fetched = app.get(&format!("/flows/{id}"), &token).await;
    assert_eq!(fetched.status, StatusCode::OK);
    assert_eq!(fetched.body["data"], *flow, "GET returns what POST answered");
    app.shutdown().await;
}

#[tokio::test]
async fn create_ignores_read_only_fields_and_refuses_a_status_other_than_inactive() {
    let app = TestApp::spawn().await;
    let tenant = app.tenant("acme").await;
    let (_, token) = app.user(Some(&tenant), WRITER).await;
    let forged_id = uuid::Uuid::now_v7().to_string();
    let mut body = flow_body("forged");
    body["id"] = json!(forged_id);
    body["createdAt"] = json!("2000-01-01T00:00:00.000Z");
    body["fromTemplate"] = json!(uuid::Uuid::now_v7().to_string());
    body["status"] = json!("inactive");
    let reply = app.post("/flows", &token, body.clone()).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{:?}", reply.body);
    assert_ne!(reply.body["data"]["id"], json!(forged_id));
    assert_ne!(reply.body["data"]["createdAt"], "2000-01-01T00:00:00.000Z");
    assert_eq!(reply.body["data"]["fromTemplate"], Value::Null);
    body["status"] = json!("active");
    let reply = app.post("/flows", &token, body).await;
    assert_error(&reply, StatusCode::BAD_REQUEST, STATUS_READ_ONLY);
    assert_eq!(reply.fields(), vec!["status"]);
    let listed = app.get("/flows", &token).await;
    assert_eq!(listed.body["meta"]["total"], 1, "the refused flow was not stored");
    app.shutdown().await;
}

#[tokio::test]
async fn create_requires_a_token_and_flows_write() {
    let app = TestApp::spawn().await;
    let tenant = app.tenant("acme").await;
    let (_, reader) = app.user(Some(&tenant), &["flows.read"]).await;
    let reply = app.call(Method::POST, "/flows", None, Some(flow_body("x"))).await;
    assert_error(&reply, StatusCode::UNAUTHORIZED, "Missing authorization header.");
    let reply = app.call(Method::POST, "/flows", Some("not-a-token"), Some(flow_body("x"))).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    let reply = app.post("/flows", &reader, flow_body("x")).await;
    assert_error(&reply, StatusCode::FORBIDDEN, "MISSING_PERMISSION");
    app.shutdown().await;
}

#[tokio::test]
async fn create_with_an_array_needs_flows_bulk_and_answers_each_item_in_order() {
    let app = TestApp::spawn().await;
    let tenant = app.tenant("acme").await;
    let (_, writer) = app.user(Some(&tenant), WRITER).await;
    let (user, bulk) = app.user(Some(&tenant), &["flows.read", "flows.write", "flows.bulk"]).await;
    let items = json!([flow_body("first"), {"name": "no graph"}, flow_body("third")]);
    let reply = app.post("/flows", &writer, items.clone()).await;
    assert_error(&reply, StatusCode::FORBIDDEN, "MISSING_PERMISSION");
    let reply = app.post("/flows", &bulk, items).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{:?}", reply.body);
    let data = reply.body["data"].as_array().expect("array");
    assert_eq!(data.len(), 3);
    assert_eq!(data[0]["name"], "first");
    assert_eq!(data[0]["owners"][0], json!({"id": user, "type": "user"}));
    assert_eq!(
        data[1],
        json!({"errors": [{"message": "Flows require a graph.", "code": 400, "field": "graph"}]})
    );
    assert_eq!(data[2]["name"], "third");
    for created in [&data[0], &data[2]] {
        let id = created["id"].as_str().expect("id");
        assert_eq!(app.get(&format!("/flows/{id}"), &bulk).await.status, StatusCode::OK);
    }
    assert_eq!(app.get("/flows", &bulk).await.body["meta"]["total"], 2);
    let reply = app.post("/flows", &bulk, json!([])).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "an empty array is refused: {:?}", reply.body);
    let too_many: Vec<Value> = (0..101).map(|i| flow_body(&format!("f{i}"))).collect();
    let reply = app.post("/flows", &bulk, Value::Array(too_many)).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "more than 100 items are refused");
    assert_eq!(app.get("/flows", &bulk).await.body["meta"]["total"], 2);
    app.shutdown().await;
}

/// Every rule of SPEC §4, broken at once across a few documents: each answer lists every
/// problem of its document with its field path.
#[tokio::test]
async fn create_reports_every_validation_error_with_its_field_at_once() {
    let app = TestApp::spawn().await;
    let tenant = app.tenant("acme").await;
    let (_, token) = app.user(Some(&tenant), WRITER).await;
    let long_id = "n".repeat(31);
    let broken = json!({
        "name": "broken", "colour": "red", "cron": "every other tuesday",
        "graph": {
            "nodes": [
                {"id": "a", "componentId": "webhook"},
                {"componentId": "jq", "function": "transform"},
                {"id": "c", "function": "transform"},
                {"id": "a", "componentId": "jq", "function": "transform"},
                {"id": long_id, "componentId": "jq", "function": "transform"}
            ],
            "edges": [
                {"source": "a", "target": "ghost", "config": {"condition": ".a |", "mapper": "{{"}},
                {"source": "nowhere", "target": "c"}
            ]
        }
    });
    let reply = app.post("/flows", &token, broken).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{:?}", reply.body);
    let got: Vec<(String, String)> = reply.body["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .map(|e| {
            assert_eq!(e["code"], 400);
            (e["field"].as_str().unwrap_or("").to_string(), e["message"].as_str().unwrap_or("").to_string())
        })
        .collect();
    let expected = [
        ("colour", "Unknown field \"colour\"."),
        ("cron", "Invalid cron expression."),
        ("graph.nodes[0].function", "Flow nodes require a function."),
        ("graph.nodes[1].id", "Flow nodes require an id."),
        ("graph.nodes[2].componentId", "Flow nodes require a componentId."),
        ("graph.nodes[3].id", "Node id \"a\" is not unique."),
        ("graph.nodes[4].id", "Node ids must be at most 30 characters."),
        ("graph.edges[0].target", "Edge target with id \"ghost\" could not be found among nodes."),
        ("graph.edges[1].source", "Edge source with id \"nowhere\" could not be found among nodes."),
    ];
    for (field, message) in expected {
        assert!(got.contains(&(field.into(), message.into())), "missing {field}: {message} in {got:?}");
    }
    for (field, what) in
        [("graph.edges[0].config.condition", "condition"), ("graph.edges[0].config.mapper", "mapper")]
    {
        let prefix = format!("Invalid jq expression in {what}");
        assert!(got.iter().any(|(f, m)| f == field && m.starts_with(&prefix)), "missing {field} in {got:?}");
    }
    assert_eq!(got.len(), expected.len() + 2, "no other error: {got:?}");

    let node = |id: &str| json!({"id": id, "componentId": "jq", "function": "transform"});
    let documents = [
        (json!({"name": "no graph"}), "graph", "Flows require a graph.".to_string()),
        (
            json!({"name": "empty", "graph": {"nodes": [], "edges": []}}),
            "graph.nodes",
            "Flows require at least one node.".into(),
        ),
        (
            json!({"name": "loose", "graph": {"nodes": [node("a"), node("b")]}}),
            "graph.edges",
            "Flows with more than one node require edges.".into(),
        ),
        (
            json!({"name": "cycle", "graph": {"nodes": [node("a"), node("b"), node("c")], "edges": [
                {"source": "a", "target": "b"}, {"source": "b", "target": "c"}, {"source": "c", "target": "b"}]}}),
            "graph",
            "The graph must not contain a cycle.".into(),
        ),
        (
            json!({"name": "two triggers", "graph": {"nodes": [node("a"), node("b"), node("c")], "edges": [
                {"source": "a", "target": "c"}, {"source": "b", "target": "c"}]}}),
            "graph",
            "The graph must have exactly one trigger node (a node with no incoming edge); found 2: a, b."
                .into(),
        ),
    ];
    for (doc, field, message) in documents {
        let reply = app.post("/flows", &token, doc.clone()).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{doc}: {:?}", reply.body);
        let entry = json!({"message": message, "code": 400, "field": field});
        let errors = reply.body["errors"].as_array().expect("errors");
        assert!(errors.contains(&entry), "{doc}: {entry} missing in {errors:?}");
    }
    assert_eq!(app.get("/flows", &token).await.body["meta"]["total"], 0, "nothing invalid was stored");
    app.shutdown().await;
}

#[tokio::test]
async fn get_answers_the_flow_or_404_for_unknown_and_other_tenants_flows() {
    let app = TestApp::spawn().await;
    let (acme, globex) = (app.tenant("acme").await, app.tenant("globex").await);
    let (_, mine) = app.user(Some(&acme), WRITER).await;
    let (_, theirs) = app.user(Some(&globex), WRITER).await;
    let (_, no_read) = app.user(Some(&acme), &["flows.write"]).await;
    let id = app.flow(&mine, "mine").await;
    let other = app.flow(&theirs, "theirs").await;
    let reply = app.get(&format!("/flows/{id}"), &mine).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.body["data"]["id"], id);
    assert_error(&app.get(&format!("/flows/{other}"), &mine).await, StatusCode::NOT_FOUND, "No flow found");
    let unknown = uuid::Uuid::now_v7();
    assert_error(&app.get(&format!("/flows/{unknown}"), &mine).await, StatusCode::NOT_FOUND, "No flow found");
    assert_error(&app.get("/flows/not-an-id", &mine).await, StatusCode::BAD_REQUEST, "Invalid id");
    assert_error(
        &app.get(&format!("/flows/{id}"), &no_read).await,
        StatusCode::FORBIDDEN,
        "MISSING_PERMISSION",
    );
    let reply = app.call(Method::GET, &format!("/flows/{id}"), None, None).await;
    assert_error(&reply, StatusCode::UNAUTHORIZED, "Missing authorization header.");
    app.shutdown().await;
}

#[tokio::test]
async fn patch_merges_top_level_fields_and_revalidates_the_whole_flow() {
    let app = TestApp::spawn().await;
    let tenant = app.tenant("acme").await;
    let (_, token) = app.user(Some(&tenant), WRITER).await;
    let created = app.post("/flows", &token, flow_body("orders")).await.body["data"].clone();
    let id = created["id"].as_str().expect("id");
    let path = format!("/flows/{id}");
    let reply = app.patch(&path, &token, json!({"name": "renamed", "type": "realtime"})).await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    let updated = &reply.body["data"];
    assert_eq!(updated["name"], "renamed");
    assert_eq!(updated["type"], "realtime");
    for kept in ["description", "graph", "owners", "tenant", "createdAt", "status"] {
        assert_eq!(updated[kept], created[kept], "{kept} is kept");
    }
    assert_timestamp(&updated["updatedAt"]);
    assert!(updated["updatedAt"].as_str() >= created["updatedAt"].as_str());
    assert_eq!(app.get(&path, &token).await.body["data"], *updated, "the change is stored");
    // A graph replaced by an invalid one: every error, nothing stored.
    let bad_graph = json!({"graph": {"nodes": [{"id": "a"}, {"id": "b", "componentId": "jq"}]}, "cron": "x"});
    let reply = app.patch(&path, &token, bad_graph).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{:?}", reply.body);
    let mut fields = reply.fields();
    fields.sort();
    assert_eq!(
        fields,
        vec![
            "cron",
            "graph",
            "graph.edges",
            "graph.nodes[0].componentId",
            "graph.nodes[0].function",
            "graph.nodes[1].function"
        ]
    );
    assert_error(
        &app.patch(&path, &token, json!({"colour": "red"})).await,
        StatusCode::BAD_REQUEST,
        "Unknown field \"colour\".",
    );
    let reply = app.patch(&path, &token, json!({"status": "active"})).await;
    assert_error(&reply, StatusCode::BAD_REQUEST, STATUS_READ_ONLY);
    let reply =
        app.patch(&path, &token, json!({"status": "inactive", "description": "same status is fine"})).await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    assert_eq!(reply.body["data"]["description"], "same status is fine");
    let reply = app.patch(&path, &token, json!({"id": uuid::Uuid::now_v7().to_string(), "name": "n2"})).await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    assert_eq!(reply.body["data"]["id"], id, "the id is never taken from a body");
    let stored = app.get(&path, &token).await.body["data"].clone();
    assert_eq!(stored["graph"], created["graph"]);
    assert_eq!(stored["cron"], Value::Null);
    app.shutdown().await;
}

#[tokio::test]
async fn patch_answers_401_403_404_and_409_when_the_flow_is_active() {
    let app = TestApp::spawn().await;
    let (acme, globex) = (app.tenant("acme").await, app.tenant("globex").await);
    let (_, token) = app.user(Some(&acme), CONTROLLER).await;
    let (_, reader) = app.user(Some(&acme), &["flows.read"]).await;
    let (_, stranger) = app.user(Some(&globex), WRITER).await;
    let id = app.flow(&token, "orders").await;
    let path = format!("/flows/{id}");
    let body = json!({"name": "x"});
    let reply = app.call(Method::PATCH, &path, None, Some(body.clone())).await;
    assert_error(&reply, StatusCode::UNAUTHORIZED, "Missing authorization header.");
    assert_error(&app.patch(&path, &reader, body.clone()).await, StatusCode::FORBIDDEN, "MISSING_PERMISSION");
    assert_error(&app.patch(&path, &stranger, body.clone()).await, StatusCode::NOT_FOUND, "No flow found");
    assert_error(
        &app.patch("/flows/nope", &token, body.clone()).await,
        StatusCode::BAD_REQUEST,
        "Invalid id",
    );
    activate(&app, &token, &id).await;
    let reply = app.patch(&path, &token, body).await;
    assert_error(&reply, StatusCode::CONFLICT, "Flow is not inactive. Current status: active");
    assert_eq!(app.get(&path, &token).await.body["data"]["name"], "orders");
    app.shutdown().await;
}

#[tokio::test]
async fn delete_removes_an_inactive_flow_and_refuses_active_ones() {
    let app = TestApp::spawn().await;
    let (acme, globex) = (app.tenant("acme").await, app.tenant("globex").await);
    let (_, token) = app.user(Some(&acme), CONTROLLER).await;
    let (_, reader) = app.user(Some(&acme), &["flows.read"]).await;
    let (_, stranger) = app.user(Some(&globex), WRITER).await;
    let id = app.flow(&token, "doomed").await;
    let running = app.flow(&token, "running").await;
    let path = format!("/flows/{id}");
    let reply = app.call(Method::DELETE, &path, None, None).await;
    assert_error(&reply, StatusCode::UNAUTHORIZED, "Missing authorization header.");
    assert_error(&app.delete(&path, &reader).await, StatusCode::FORBIDDEN, "MISSING_PERMISSION");
    assert_error(&app.delete(&path, &stranger).await, StatusCode::NOT_FOUND, "No flow found");
    assert_error(&app.delete("/flows/nope", &token).await, StatusCode::BAD_REQUEST, "Invalid id");
    let reply = app.delete(&path, &token).await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    assert_eq!(reply.body, json!({"msg": "Flow was successfully deleted"}));
    assert_error(&app.get(&path, &token).await, StatusCode::NOT_FOUND, "No flow found");
    assert_error(&app.delete(&path, &token).await, StatusCode::NOT_FOUND, "No flow found");
    activate(&app, &token, &running).await;
    let reply = app.delete(&format!("/flows/{running}"), &token).await;
    assert_error(&reply, StatusCode::CONFLICT, "Flow is not inactive. Current status: active");
    assert_eq!(app.get(&format!("/flows/{running}"), &token).await.status, StatusCode::OK);
    app.shutdown().await;
}

#[tokio::test]
async fn bulk_patch_answers_200_with_one_result_per_item() {
    let app = TestApp::spawn().await;
    let (acme, globex) = (app.tenant("acme").await, app.tenant("globex").await);
    let (_, token) =
        app.user(Some(&acme), &["flows.read", "flows.write", "flows.control", "flows.bulk"]).await;
    let (_, stranger) = app.user(Some(&globex), WRITER).await;
    let editable = app.flow(&token, "editable").await;
    let active = app.flow(&token, "active").await;
    let invalid = app.flow(&token, "invalid").await;
    let foreign = app.flow(&stranger, "foreign").await;
    let unknown = uuid::Uuid::now_v7().to_string();
    activate(&app, &token, &active).await;
    let body = json!([
        {"id": editable, "name": "edited"},
        {"id": unknown, "name": "x"},
        {"id": active, "name": "x"},
        {"id": invalid, "cron": "nonsense"},
        {"id": foreign, "name": "x"},
        {"name": "no id"},
        {"id": "not-an-id", "name": "x"}
    ]);
    let reply = app.patch("/flows/bulk", &token, body.clone()).await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    let data = reply.body["data"].as_array().expect("array");
    assert_eq!(data.len(), 7);
    assert_eq!(data[0]["id"], editable);
    assert_eq!(data[0]["name"], "edited");
    assert_eq!(data[0]["description"], "editable description");
    let err = |message: &str, code: u16| json!({"errors": [{"message": message, "code": code}]});
    assert_eq!(data[1], err(&format!("Flow {unknown} not found"), 404));
    assert_eq!(data[2], err("Flow is not inactive. Current status: active", 409));
    assert_eq!(
        data[3],
        json!({"errors": [{"message": "Invalid cron expression.", "code": 400, "field": "cron"}]})
    );
    assert_eq!(data[4], err(&format!("Flow {foreign} not found"), 404));
    assert_eq!(data[5]["errors"][0]["code"], 400);
    assert_eq!(data[5]["errors"][0]["field"], "id");
    assert_eq!(data[6], err("Invalid id", 400));
    assert_eq!(app.get(&format!("/flows/{editable}"), &token).await.body["data"]["name"], "edited");
    assert_eq!(app.get(&format!("/flows/{invalid}"), &token).await.body["data"]["cron"], Value::Null);
    assert_eq!(app.get(&format!("/flows/{foreign}"), &stranger).await.body["data"]["name"], "foreign");
    app.shutdown().await;
}

#[tokio::test]
async fn bulk_patch_answers_401_403_and_400_for_a_body_that_is_not_a_list() {
    let app = TestApp::spawn().await;
    let tenant = app.tenant("acme").await;
    let (_, writer) = app.user(Some(&tenant), WRITER).await;
    let (_, bulk) = app.user(Some(&tenant), &["flows.read", "flows.write", "flows.bulk"]).await;
    let id = app.flow(&bulk, "f").await;
    let body = json!([{"id": id, "name": "x"}]);
    let reply = app.call(Method::PATCH, "/flows/bulk", None, Some(body.clone())).await;
    assert_error(&reply, StatusCode::UNAUTHORIZED, "Missing authorization header.");
    assert_error(&app.patch("/flows/bulk", &writer, body).await, StatusCode::FORBIDDEN, "MISSING_PERMISSION");
    for bad in [json!("text"), json!(42), json!([])] {
        let reply = app.patch("/flows/bulk", &bulk, bad.clone()).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{bad}: {:?}", reply.body);
    }
    let too_many: Vec<Value> = (0..101).map(|_| json!({"id": id, "name": "x"})).collect();
    let reply = app.patch("/flows/bulk", &bulk, Value::Array(too_many)).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{:?}", reply.body);
    assert_eq!(app.get(&format!("/flows/{id}"), &bulk).await.body["data"]["name"], "f");
    app.shutdown().await;
}
