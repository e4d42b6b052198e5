//! HTTP suite for `POST /templates/{id}/generate` (SPEC §8): published templates only, the body
//! deep-merged into the template (objects by key, arrays by index), the result validated as a
//! flow with every error listed, and the new flow owned by the caller and its tenant.

use axum::http::{Method, StatusCode};
use flowmate_tests::{Reply, TestApp, template_body};
use serde_json::{Value, json};

const AUTHOR: &[&str] = &["templates.read", "templates.write", "flows.read", "flows.write"];

fn assert_error(reply: &Reply, status: StatusCode, message: &str) {
    assert_eq!(reply.status, status, "{:?}", reply.body);
    assert_eq!(reply.messages(), vec![message.to_string()], "{:?}", reply.body);
    assert_eq!(reply.body["errors"][0]["code"], status.as_u16());
}

async fn create_template(app: &TestApp, token: &str, mut body: Value, status: &str) -> String {
    body["status"] = json!(status);
    let reply = app.post("/templates", token, body).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{:?}", reply.body);
    reply.body["data"]["id"].as_str().expect("id").to_string()
}

/// A graph document as the API renders a stored flow's graph: every node with `fields` and
/// `nodeSettings`, every edge with `config`.
fn canonical(graph: &Value) -> Value {
    let mut graph = graph.clone();
    if graph.get("edges").is_none() {
        graph["edges"] = json!([]);
    }
    for node in graph["nodes"].as_array_mut().expect("nodes") {
        for key in ["fields", "nodeSettings"] {
            if node.get(key).is_none() {
                node[key] = json!({});
            }
        }
    }
    for edge in graph["edges"].as_array_mut().expect("edges") {
        if edge.get("config").is_none() {
            edge["config"] = json!({});
        }
    }
    graph
}

async fn generate(app: &TestApp, token: &str, id: &str, body: Value) -> Reply {
    app.post(&format!("/templates/{id}/generate"), token, body).await
}

#[tokio::test]
async fn generate_creates_an_inactive_flow_from_the_template_owned_by_the_caller() {
    let app = TestApp::spawn().await;
    let tenant = app.tenant("acme").await;
    let (_, author) = app.user(Some(&tenant), AUTHOR).await;
    let (user, token) = app.user(Some(&tenant), &["flows.read", "flows.write"]).await;
    let mut body = template_body("blueprint");
    body["cron"] = json!("*/5 * * * *");
    body["flowSettings"] = json!({"webhooks": {"requireWebhookAuth": false}});
    let id = create_template(&app, &author, body.clone(), "published").await;
    let reply = app.post_empty(&format!("/templates/{id}/generate"), &token).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{:?}", reply.body);
    assert_eq!(reply.body["meta"], json!({}));
    let flow = &reply.body["data"];
    assert_eq!(flow["fromTemplate"], id);
    assert_eq!(flow["status"], "inactive");
    assert_eq!(flow["tenant"], tenant);
    assert_eq!(flow["owners"], json!([{"id": user, "type": "user"}, {"id": tenant, "type": "tenant"}]));
    for copied in ["name", "description", "cron", "flowSettings"] {
        assert_eq!(flow[copied], body[copied], "{copied} copied from the template");
    }
    assert_eq!(flow["graph"], canonical(&body["graph"]));
    assert_eq!(flow.get("tags"), None, "a flow has no tags");
    let flow_id = flow["id"].as_str().expect("flow id");
    assert_ne!(flow_id, id);
    assert_eq!(app.get(&format!("/flows/{flow_id}"), &token).await.body["data"], *flow);
    // A second generation is a second, independent flow.
    let again = app.post_empty(&format!("/templates/{id}/generate"), &token).await;
    assert_eq!(again.status, StatusCode::CREATED);
    assert_ne!(again.body["data"]["id"], flow["id"]);
    assert_eq!(app.get("/flows", &token).await.body["meta"]["total"], 2);
    app.shutdown().await;
}

#[tokio::test]
async fn generate_deep_merges_objects_by_key_and_arrays_by_index() {
    let app = TestApp::spawn().await;
    let tenant = app.tenant("acme").await;
    let (_, token) = app.user(Some(&tenant), AUTHOR).await;
    let mut body = template_body("blueprint");
    body["flowSettings"] = json!({"webhooks": {"requireWebhookAuth": false, "hmacHeaderKey": "x-sig"}});
    let id = create_template(&app, &token, body.clone(), "published").await;
    let patch = json!({"graph": {"nodes": [{}, {"fields": {"program": ".x"}}]}});
    let reply = generate(&app, &token, &id, patch).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{:?}", reply.body);
    let mut expected_graph = body["graph"].clone();
    expected_graph["nodes"][1]["fields"]["program"] = json!(".x");
    assert_eq!(reply.body["data"]["graph"], canonical(&expected_graph), "only that field changed");
    assert_eq!(reply.body["data"]["name"], "blueprint");
    let patch = json!({
        "name": "for customer 7",
        "flowSettings": {"webhooks": {"requireWebhookAuth": true}},
        "graph": {"nodes": [{"name": "Inbound"}]}
    });
    let reply = generate(&app, &token, &id, patch).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{:?}", reply.body);
    let flow = &reply.body["data"];
    assert_eq!(flow["name"], "for customer 7");
    assert_eq!(flow["description"], body["description"]);
    assert_eq!(
        flow["flowSettings"],
        json!({"webhooks": {"requireWebhookAuth": true, "hmacHeaderKey": "x-sig"}})
    );
    let mut expected_graph = body["graph"].clone();
    expected_graph["nodes"][0]["name"] = json!("Inbound");
    assert_eq!(flow["graph"], canonical(&expected_graph));
    // The template itself is untouched.
    let stored = app.get(&format!("/templates/{id}"), &token).await;
    assert_eq!(stored.body["data"]["graph"], body["graph"]);
    assert_eq!(stored.body["data"]["name"], "blueprint");
    app.shutdown().await;
}

#[tokio::test]
async fn generate_validates_the_result_as_a_flow_and_lists_every_error() {
    let app = TestApp::spawn().await;
    let tenant = app.tenant("acme").await;
    let (_, token) = app.user(Some(&tenant), AUTHOR).await;
    // A template with open parts: the second node has no function and nothing joins the nodes.
    let open = json!({
        "name": "open",
        "graph": {"nodes": [
            {"id": "in", "componentId": "webhook", "function": "receive"},
            {"id": "add", "componentId": "jq"}
        ]}
    });
    let id = create_template(&app, &token, open, "published").await;
    let reply = generate(&app, &token, &id, json!({"cron": "whenever"})).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{:?}", reply.body);
    let got: Vec<(String, String)> = reply.body["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .map(|e| (e["field"].as_str().unwrap_or("").into(), e["message"].as_str().unwrap_or("").into()))
        .collect();
    for (field, message) in [
        ("cron", "Invalid cron expression."),
        ("graph.nodes[1].function", "Flow nodes require a function."),
        ("graph.edges", "Flows with more than one node require edges."),
    ] {
        assert!(got.contains(&(field.into(), message.into())), "{field}: {message} missing in {got:?}");
    }
    assert_eq!(app.get("/flows", &token).await.body["meta"]["total"], 0, "nothing was created");
    let fill = json!({
        "graph": {
            "nodes": [{}, {"function": "transform", "fields": {"program": "."}}],
            "edges": [{"source": "in", "target": "add"}]
        }
    });
    let reply = generate(&app, &token, &id, fill).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{:?}", reply.body);
    assert_eq!(reply.body["data"]["graph"]["nodes"][1]["function"], "transform");
    let reply = generate(&app, &token, &id, json!({"tags": ["x"], "status": "active"})).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{:?}", reply.body);
    let mut fields = reply.fields();
    fields.sort();
    assert_eq!(fields, vec!["status", "tags"], "only flow content may be merged in");
    let reply = generate(&app, &token, &id, json!(["not", "an", "object"])).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{:?}", reply.body);
    app.shutdown().await;
}

#[tokio::test]
async fn generate_needs_a_published_template_flows_write_and_visibility() {
    let app = TestApp::spawn().await;
    let (acme, globex) = (app.tenant("acme").await, app.tenant("globex").await);
    let (_, token) = app.user(Some(&acme), AUTHOR).await;
    let (_, templates_only) = app.user(Some(&acme), &["templates.read", "templates.write"]).await;
    let (_, stranger) = app.user(Some(&globex), AUTHOR).await;
    let draft = create_template(&app, &token, template_body("draft"), "draft").await;
    let published = create_template(&app, &token, template_body("published"), "published").await;
    let path = format!("/templates/{published}/generate");
    let reply = app.call(Method::POST, &path, None, None).await;
    assert_error(&reply, StatusCode::UNAUTHORIZED, "Missing authorization header.");
    assert_error(&app.post_empty(&path, &templates_only).await, StatusCode::FORBIDDEN, "MISSING_PERMISSION");
    assert_error(&app.post_empty(&path, &stranger).await, StatusCode::NOT_FOUND, "Template not found");
    let unknown = uuid::Uuid::now_v7();
    let reply = app.post_empty(&format!("/templates/{unknown}/generate"), &token).await;
    assert_error(&reply, StatusCode::NOT_FOUND, "Template not found");
    assert_error(
        &app.post_empty("/templates/nope/generate", &token).await,
        StatusCode::BAD_REQUEST,
        "Invalid id",
    );
    let reply = app.post_empty(&format!("/templates/{draft}/generate"), &token).await;
    assert_error(
        &reply,
        StatusCode::CONFLICT,
        "Template is not published. Only published templates can generate flows.",
    );
    assert_eq!(app.get("/flows", &token).await.body["meta"]["total"], 0);
    assert_eq!(app.get("/flows", &stranger).await.body["meta"]["total"], 0);
    app.shutdown().await;
}
