//! Executions over the whole application (SPEC §7): real components against a local HTTP
//! receiver, edge conditions and mappers, fan-out with a failing branch, external components,
//! the execution routes (list, get, retry, cancel, usage report, step logs) and isolation.

use axum::http::StatusCode;
use flowmate_tests::TestApp;
use serde_json::{Value, json};
use wiremock::matchers::{body_json, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

async fn app() -> TestApp {
    TestApp::spawn_with(&["--allow-private-networks"]).await
}

/// Posts `body` to the flow's webhook and returns the execution id.
async fn trigger(app: &TestApp, flow: &str, body: Value) -> String {
    let reply = app.hook(&format!("/webhooks/{flow}"), &[], &body).await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    reply.body["data"]["executionId"].as_str().expect("execution id").to_string()
}

#[tokio::test]
async fn webhook_jq_http_delivers_the_transformed_body() {
    let receiver = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/orders"))
        .and(body_json(json!({"order": 7, "total": 30})))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({"stored": true})))
        .expect(1)
        .mount(&receiver)
        .await;
    let app = app().await;
    let flow = app
        .active_flow(
            &app.admin,
            json!({
                "name": "forward",
                "graph": {
                    "nodes": [
                        {"id": "in", "componentId": "webhook", "function": "receive"},
                        {"id": "shape", "componentId": "jq", "function": "transform",
                         "fields": {"program": "{order: .data.id, total: (.data.qty * .data.price)}"}},
                        {"id": "send", "componentId": "http", "function": "request",
                         "fields": {"method": "POST", "url": format!("{}/orders", receiver.uri())}}
                    ],
                    "edges": [{"source": "in", "target": "shape"}, {"source": "shape", "target": "send"}]
                }
            }),
        )
        .await;
    let reply =
        app.hook(&format!("/webhooks/{flow}?sync=true"), &[], &json!({"id": 7, "qty": 3, "price": 10})).await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    assert_eq!(reply.body, json!({"stored": true}));
    let id = reply.headers["x-execution-id"].to_str().expect("header").to_string();
    let record = app.wait_for_execution(&app.admin, &id).await;
    assert_eq!(record["status"], "succeeded");
    for step in ["in", "shape", "send"] {
        assert_eq!(record["steps"][step]["status"], "succeeded", "{step}");
    }
    assert_eq!(record["counters"], json!({"started": 3, "succeeded": 3, "errors": 0}));
    receiver.verify().await;
}

#[tokio::test]
async fn conditions_route_and_mappers_reshape_and_a_failing_branch_fails_the_execution() {
    let app = app().await;
    let flow = app
        .active_flow(
            &app.admin,
            json!({
                "name": "router",
                "graph": {
                    "nodes": [
                        {"id": "in", "componentId": "webhook", "function": "receive"},
                        {"id": "big", "componentId": "log", "function": "info"},
                        {"id": "small", "componentId": "log", "function": "info"},
                        {"id": "bad", "componentId": "code", "function": "run", "fields": {"script": "throw \"no\""}}
                    ],
                    "edges": [
                        {"source": "in", "target": "big",
                         "config": {"condition": ".data.n > 10", "mapper": "{data: {size: \"big\", n: .data.n}}"}},
                        {"source": "in", "target": "small", "config": {"condition": ".data.n <= 10"}},
                        {"source": "in", "target": "bad", "config": {"condition": ".data.n == 99"}}
                    ]
                }
            }),
        )
        .await;
    let id = trigger(&app, &flow, json!({"n": 50})).await;
    let record = app.wait_for_execution(&app.admin, &id).await;
    assert_eq!(record["status"], "succeeded", "{record}");
    assert_eq!(record["steps"]["big"]["sampleOutput"][0]["data"], json!({"size": "big", "n": 50}));
    assert!(record["steps"].get("small").is_none() || record["steps"]["small"].is_null());
    let id = trigger(&app, &flow, json!({"n": 99})).await;
    let record = app.wait_for_execution(&app.admin, &id).await;
    assert_eq!(record["status"], "failed", "{record}");
    assert_eq!(record["steps"]["big"]["status"], "succeeded");
    assert_eq!(record["steps"]["bad"]["status"], "failed");
    assert!(record["steps"]["bad"]["lastError"].as_str().unwrap_or_default().contains("no"));
}

#[tokio::test]
async fn a_node_emitting_many_messages_runs_the_next_node_for_each() {
    let app = app().await;
    let flow = app
        .active_flow(
            &app.admin,
            json!({
                "name": "split",
                "graph": {
                    "nodes": [
                        {"id": "in", "componentId": "webhook", "function": "receive"},
                        {"id": "each", "componentId": "jq", "function": "transform", "fields": {"program": ".data.items[]"}},
                        {"id": "log", "componentId": "log", "function": "info"}
                    ],
                    "edges": [{"source": "in", "target": "each"}, {"source": "each", "target": "log"}]
                }
            }),
        )
        .await;
    let id = trigger(&app, &flow, json!({"items": [1, 2, 3]})).await;
    let record = app.wait_for_execution(&app.admin, &id).await;
    assert_eq!(record["status"], "succeeded");
    assert_eq!(record["steps"]["each"]["out"], 3);
    assert_eq!(record["steps"]["log"]["in"], 3);
}

#[tokio::test]
async fn listing_filters_pages_and_isolates_tenants() {
    let app = app().await;
    let tenant = app.tenant("other").await;
    let (_, outsider) = app.user(Some(&tenant), &["flows.read", "executions.read"]).await;
    let a = app.active_flow(&app.admin, json!({"name": "a", "graph": {"nodes": [{"id": "in", "componentId": "webhook", "function": "receive"}]}})).await;
    let b = app.active_flow(&app.admin, json!({"name": "b", "graph": {"nodes": [{"id": "in", "componentId": "webhook", "function": "receive"}]}})).await;
    let mut ids = Vec::new();
    for flow in [&a, &a, &b] {
        let id = trigger(&app, flow, json!({})).await;
        app.wait_for_execution(&app.admin, &id).await;
        ids.push(id);
    }
    let all = app.get("/executions", &app.admin).await;
    assert_eq!(all.body["meta"]["total"], 3);
    let newest_first: Vec<&str> =
        all.body["data"].as_array().expect("list").iter().filter_map(|e| e["id"].as_str()).collect();
    assert_eq!(newest_first, [ids[2].as_str(), ids[1].as_str(), ids[0].as_str()]);
    let of_a =
        app.get(&format!("/executions?filter[flowId]={a}&page[size]=1&page[number]=2"), &app.admin).await;
    assert_eq!(of_a.body["meta"]["total"], 2);
    assert_eq!(of_a.body["data"][0]["id"], ids[0].as_str());
    let failed = app.get("/executions?filter[status]=failed", &app.admin).await;
    assert_eq!(failed.body["meta"]["total"], 0);
    let bad = app.get("/executions?filter[status]=sideways", &app.admin).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    let malformed = app.get("/executions/nope", &app.admin).await;
    assert_eq!(malformed.status, StatusCode::BAD_REQUEST);
    // Another tenant sees nothing and cannot act on anything.
    let theirs = app.get("/executions", &outsider).await;
    assert_eq!(theirs.body["meta"]["total"], 0);
    for id in &ids {
        assert_eq!(app.get(&format!("/executions/{id}"), &outsider).await.status, StatusCode::NOT_FOUND);
        let retry = app.post_empty(&format!("/executions/{id}/retry"), &outsider).await;
        assert!(matches!(retry.status, StatusCode::NOT_FOUND | StatusCode::FORBIDDEN));
    }
    let logs = app.get(&format!("/flows/{a}/steps/in/logs"), &outsider).await;
    assert_eq!(logs.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn retry_runs_the_same_input_again_and_cancel_stops_between_steps() {
    let app = app().await;
    let flow = app
        .active_flow(
            &app.admin,
            json!({
                "name": "slow",
                "graph": {
                    "nodes": [
                        {"id": "in", "componentId": "webhook", "function": "receive"},
                        {"id": "wait", "componentId": "delay", "function": "wait", "fields": {"ms": 600000}},
                        {"id": "after", "componentId": "log", "function": "info"}
                    ],
                    "edges": [{"source": "in", "target": "wait"}, {"source": "wait", "target": "after"}]
                }
            }),
        )
        .await;
    let id = trigger(&app, &flow, json!({"k": "v"})).await;
    let early_retry = app.post_empty(&format!("/executions/{id}/retry"), &app.admin).await;
    assert_eq!(early_retry.status, StatusCode::CONFLICT);
    let cancelled = app.post_empty(&format!("/executions/{id}/cancel"), &app.admin).await;
    assert_eq!(cancelled.status, StatusCode::OK, "{:?}", cancelled.body);
    assert_eq!(cancelled.body["data"]["status"], "cancelled");
    let record = app.wait_for_execution(&app.admin, &id).await;
    assert_eq!(record["status"], "cancelled");
    assert!(record["steps"].get("after").is_none() || record["steps"]["after"].is_null(), "{record}");
    let again = app.post_empty(&format!("/executions/{id}/cancel"), &app.admin).await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    let retried = app.post_empty(&format!("/executions/{id}/retry"), &app.admin).await;
    assert_eq!(retried.status, StatusCode::CREATED, "{:?}", retried.body);
    assert_eq!(retried.body["data"]["input"]["data"], json!({"k": "v"}));
    assert_eq!(retried.body["data"]["trigger"]["type"], "manual");
    let second = retried.body["data"]["id"].as_str().expect("id").to_string();
    assert_ne!(second, id);
    let stop = app.post_empty(&format!("/executions/{second}/cancel"), &app.admin).await;
    assert_eq!(stop.status, StatusCode::OK);
}

#[tokio::test]
async fn step_logs_and_the_usage_report_count_what_ran() {
    let app = app().await;
    let flow = app.active_flow(&app.admin, flowmate_tests::flow_body("counted")).await;
    for n in 0..3 {
        let id = trigger(&app, &flow, json!({"n": n})).await;
        app.wait_for_execution(&app.admin, &id).await;
    }
    let logs = app.get(&format!("/flows/{flow}/steps/add/logs?page[size]=2"), &app.admin).await;
    assert_eq!(logs.status, StatusCode::OK, "{:?}", logs.body);
    assert_eq!(logs.body["meta"]["total"], 3);
    assert_eq!(logs.body["data"].as_array().map(Vec::len), Some(2));
    let unknown_step = app.get(&format!("/flows/{flow}/steps/nope/logs"), &app.admin).await;
    assert_eq!(unknown_step.status, StatusCode::NOT_FOUND);
    let by_flow = app.get("/icenter/executions?groupby=flow", &app.admin).await;
    assert_eq!(by_flow.status, StatusCode::OK, "{:?}", by_flow.body);
    let row = by_flow.body["data"]
        .as_array()
        .and_then(|rows| rows.iter().find(|r| r["flow"] == flow.as_str()))
        .cloned();
    assert_eq!(row.map(|r| r["total"].clone()), Some(json!(6)));
    let by_component = app.get("/icenter/executions?groupby=component", &app.admin).await;
    let jq = by_component.body["data"]
        .as_array()
        .and_then(|rows| rows.iter().find(|r| r["component"] == "jq"))
        .cloned();
    assert_eq!(jq.map(|r| r["total"].clone()), Some(json!(3)));
    let bad = app.get("/icenter/executions?groupby=planet", &app.admin).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn external_components_are_registered_and_called_with_function_fields_and_msg() {
    let service = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/component"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([{"data": {"enriched": true}}])))
        .expect(1)
        .mount(&service)
        .await;
    let app = app().await;
    let registered = app
        .post(
            "/components",
            &app.admin,
            json!({"name": "enricher", "url": format!("{}/component", service.uri()), "functions": [{"name": "enrich"}]}),
        )
        .await;
    assert_eq!(registered.status, StatusCode::CREATED, "{:?}", registered.body);
    let duplicate = app
        .post(
            "/components",
            &app.admin,
            json!({"name": "enricher", "url": "http://x.test/", "functions": [{"name": "a"}]}),
        )
        .await;
    assert_eq!(duplicate.status, StatusCode::CONFLICT);
    let builtin = app
        .post(
            "/components",
            &app.admin,
            json!({"name": "http", "url": "http://x.test/", "functions": [{"name": "a"}]}),
        )
        .await;
    assert_eq!(builtin.status, StatusCode::CONFLICT);
    let invalid = app
        .post("/components", &app.admin, json!({"name": "Bad Name", "url": "ftp://x", "functions": []}))
        .await;
    assert_eq!(invalid.status, StatusCode::BAD_REQUEST);
    assert_eq!(invalid.fields().len(), 3, "{:?}", invalid.body);
    let listed = app.get("/components", &app.admin).await;
    assert!(listed.body.to_string().contains("enricher"));
    let flow = app
        .active_flow(
            &app.admin,
            json!({
                "name": "enrich",
                "graph": {
                    "nodes": [
                        {"id": "in", "componentId": "webhook", "function": "receive"},
                        {"id": "x", "componentId": "enricher", "function": "enrich", "fields": {"level": 2}}
                    ],
                    "edges": [{"source": "in", "target": "x"}]
                }
            }),
        )
        .await;
    let reply = app.hook(&format!("/webhooks/{flow}?sync=true"), &[], &json!({"a": 1})).await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    assert_eq!(reply.body, json!({"enriched": true}));
    let requests = service.received_requests().await.unwrap_or_default();
    let sent: Value =
        requests.first().map(|r| serde_json::from_slice(&r.body).unwrap_or(Value::Null)).unwrap_or_default();
    assert_eq!(sent["function"], "enrich");
    assert_eq!(sent["fields"], json!({"level": 2}));
    assert_eq!(sent["msg"]["data"], json!({"a": 1}));
}
