//! Hostile cases: intake (issue 16, point 3). One nesting limit (`FLOWMATE_MAX_BODY_DEPTH`,
//! default 64) for JSON, XML and form bodies, checked before a call is accepted, and a body at
//! the limit reads back through every route (row 4); XML is converted with its attributes
//! capped, and a body is parsed only for a flow that takes it (row 5); a flow has at most
//! `FLOWMATE_MAX_NODES` nodes and flow and template documents get the same depth limit (row 7).
//! Speed is measured by benchmarks, not here: these cases assert the answers.

use axum::http::{Method, StatusCode};
use flowmate_tests::{NON_ADMIN_PERMISSIONS, TestApp};
use serde_json::{Value, json};

/// The default nesting limit.
const LIMIT: usize = 64;

/// The 400 message of a body deeper than the default limit.
const TOO_DEEP: &str = "Body nesting is deeper than 64 levels (FLOWMATE_MAX_BODY_DEPTH).";

/// A value nested `depth` deep (objects and arrays in turn, a string at the bottom).
fn nested(depth: usize) -> Value {
    let mut value = json!("bottom");
    for level in 0..depth {
        value = if level % 2 == 0 { Value::Array(vec![value]) } else { object_of(value) };
    }
    value
}

/// `{"a": value}` (`json!` would copy `value` through serialization, level by level).
fn object_of(value: Value) -> Value {
    Value::Object(serde_json::Map::from_iter([("a".to_string(), value)]))
}

/// XML whose JSON nests `depth` deep: the document's object, `depth - 1` element objects, a
/// string.
fn nested_xml(depth: usize) -> String {
    format!("{}bottom{}", "<a>".repeat(depth), "</a>".repeat(depth))
}

/// The JSON `nested_xml(depth)` converts to.
fn nested_xml_json(depth: usize) -> Value {
    let mut value = json!("bottom");
    for _ in 0..depth {
        value = object_of(value);
    }
    value
}

/// webhook -> jq `.data`: the reply is the body.
fn echo_flow() -> Value {
    flowmate_tests::flow_body("echo")
}

/// webhook -> delay (10 minutes) -> log: executions stay running until cancelled.
fn slow() -> Value {
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
    })
}

async fn post_body(app: &TestApp, path: &str, content_type: &str, body: String) -> flowmate_tests::Reply {
    app.call_raw(Method::POST, path, None, &[("content-type", content_type)], body).await
}

/// The id of the execution an accepted call created.
fn execution_of(reply: &flowmate_tests::Reply) -> String {
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    reply.body["data"]["executionId"].as_str().expect("execution id").to_string()
}

async fn executions_of(app: &TestApp, flow: &str) -> u64 {
    let reply = app.get(&format!("/executions?filter[flowId]={flow}"), &app.admin).await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    reply.body["meta"]["total"].as_u64().unwrap_or(u64::MAX)
}

/// Every route that reads the execution `id` of `flow` answers 200 with `data` as its input
/// data, for its owner and for the administrator.
async fn reads_back(app: &TestApp, owner: &str, flow: &str, id: &str, data: &Value) {
    for token in [owner, app.admin.as_str()] {
        let one = app.get(&format!("/executions/{id}"), token).await;
        assert_eq!(one.status, StatusCode::OK, "GET /executions/{{id}}: {:?}", one.body);
        assert_eq!(&one.body["data"]["input"]["data"], data);
        for list in [
            format!("/executions?filter[flowId]={flow}&page[size]=100"),
            "/executions?page[size]=100".to_string(),
        ] {
            let page = app.get(&list, token).await;
            assert_eq!(page.status, StatusCode::OK, "GET {list}: {:?}", page.body);
            let items = page.body["data"].as_array().cloned().unwrap_or_default();
            assert!(items.iter().any(|e| e["id"] == id), "GET {list} lists {id}");
        }
    }
}

#[tokio::test]
async fn a_body_at_the_limit_reads_back_through_every_route() {
    let app = TestApp::spawn().await;
    let tenant = app.tenant("deep bodies").await;
    let (_, owner) = app.user(Some(&tenant), &NON_ADMIN_PERMISSIONS).await;
    let echo = app.active_flow(&owner, echo_flow()).await;
    let body = nested(LIMIT);

    // JSON at the limit: accepted, run, and read back by every route; the step's sample
    // output carries the body inside two more wrappers.
    let id = execution_of(&app.hook(&format!("/webhooks/{echo}"), &[], &body).await);
    let ended = app.wait_for_execution(&owner, &id).await;
    assert_eq!(ended["status"], "succeeded", "{ended}");
    assert_eq!(ended["steps"]["add"]["sampleOutput"][0]["data"], body);
    reads_back(&app, &owner, &echo, &id, &body).await;
    let logs = app.get(&format!("/flows/{echo}/steps/add/logs"), &owner).await;
    assert_eq!(logs.status, StatusCode::OK, "step logs: {:?}", logs.body);
    assert_eq!(logs.body["data"][0]["step"]["sampleOutput"][0]["data"], body);
    let retried = app.post_empty(&format!("/executions/{id}/retry"), &owner).await;
    assert_eq!(retried.status, StatusCode::CREATED, "retry: {:?}", retried.body);
    let again = retried.body["data"]["id"].as_str().expect("id").to_string();
    assert_eq!(app.wait_for_execution(&owner, &again).await["status"], "succeeded");
    reads_back(&app, &owner, &echo, &again, &body).await;

    // `?sync=true` answers the body itself.
    let reply = app.hook(&format!("/webhooks/{echo}?sync=true"), &[], &body).await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    assert_eq!(reply.body, body);

    // XML and text at the limit, too.
    let xml =
        execution_of(&post_body(&app, &format!("/hook/{echo}"), "application/xml", nested_xml(LIMIT)).await);
    app.wait_for_execution(&owner, &xml).await;
    reads_back(&app, &owner, &echo, &xml, &nested_xml_json(LIMIT)).await;
    let text = execution_of(&post_body(&app, &format!("/hook/{echo}"), "text/plain", body.to_string()).await);
    app.wait_for_execution(&owner, &text).await;
    reads_back(&app, &owner, &echo, &text, &body).await;

    // A running execution with the body is cancelled, and the cancelled one reads back.
    let slow = app.active_flow(&owner, slow()).await;
    let running = execution_of(&app.hook(&format!("/webhooks/{slow}"), &[], &body).await);
    let cancelled = app.post_empty(&format!("/executions/{running}/cancel"), &owner).await;
    assert_eq!(cancelled.status, StatusCode::OK, "cancel: {:?}", cancelled.body);
    assert_eq!(cancelled.body["data"]["input"]["data"], body);
    assert_eq!(app.wait_for_execution(&owner, &running).await["status"], "cancelled");
    reads_back(&app, &owner, &slow, &running, &body).await;
    app.shutdown().await;
}

#[tokio::test]
async fn the_highest_limit_allowed_still_reads_back() {
    // FLOWMATE_MAX_BODY_DEPTH is at most 100 (flow_domain::limits::MAX_DEPTH_CEILING): a body
    // that deep still reads back inside every wrapper; 101 is refused.
    let app = TestApp::spawn_with(&["--max-body-depth", "100"]).await;
    let echo = app.active_flow(&app.admin, echo_flow()).await;
    let body = nested(100);
    let id = execution_of(&app.hook(&format!("/webhooks/{echo}"), &[], &body).await);
    assert_eq!(app.wait_for_execution(&app.admin, &id).await["status"], "succeeded");
    reads_back(&app, &app.admin, &echo, &id, &body).await;
    let logs = app.get(&format!("/flows/{echo}/steps/add/logs"), &app.admin).await;
    assert_eq!(logs.body["data"][0]["step"]["sampleOutput"][0]["data"], body);
    let reply = app.hook(&format!("/webhooks/{echo}?sync=true"), &[], &body).await;
    assert_eq!(reply.body, body);
    let refused = app.hook(&format!("/webhooks/{echo}"), &[], &nested(101)).await;
    assert_eq!(refused.messages(), ["Body nesting is deeper than 100 levels (FLOWMATE_MAX_BODY_DEPTH)."]);
    app.shutdown().await;
}

#[tokio::test]
async fn bodies_past_the_limit_are_refused_naming_it() {
    let app = TestApp::spawn().await;
    let echo = app.active_flow(&app.admin, echo_flow()).await;
    let path = format!("/webhooks/{echo}");
    let deeper = nested(LIMIT + 1).to_string();
    // Each kind one level past the limit, and far past it (measured before any tree is built).
    let cases = [
        ("application/json", deeper.clone()),
        ("application/json", format!("{}{}", "[".repeat(100_000), "]".repeat(100_000))),
        ("application/json", "[".repeat(1_000_000)),
        ("text/plain", deeper.clone()),
        ("application/xml", nested_xml(LIMIT + 1)),
        ("application/xml", nested_xml(100_000)),
        // The repeated <b> is an array: one more level than the elements show.
        ("application/xml", format!("{}<b/><b/>{}", "<a>".repeat(LIMIT - 1), "</a>".repeat(LIMIT - 1))),
    ];
    for (content_type, body) in cases {
        for sync in ["", "?sync=true"] {
            let reply = post_body(&app, &format!("{path}{sync}"), content_type, body.clone()).await;
            assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{content_type}: {:?}", reply.body);
            assert_eq!(reply.messages(), [TOO_DEEP], "{content_type}");
        }
    }
    assert_eq!(executions_of(&app, &echo).await, 0, "nothing refused was stored");

    // Forms and query data never nest more than two deep (a repeated key is an array; brackets
    // in keys are kept as they are), so no form reaches a limit a flow can be created under
    // (a flow document is at least four deep); the form check itself is a unit test of
    // adapters-http (webhook_body). A key of 100 bracket levels is one flat key.
    let key: String = format!("a{}", "[b]".repeat(100));
    let form = format!("{}=1&{key}=2&d=3", key.replace('[', "%5B").replace(']', "%5D"));
    let reply = post_body(&app, &path, "application/x-www-form-urlencoded", form).await;
    let id = execution_of(&reply);
    let ended = app.wait_for_execution(&app.admin, &id).await;
    assert_eq!(
        ended["input"]["data"],
        json!({ key.as_str(): ["1", "2"], "d": "3" }),
        "form keys do not nest"
    );
    let query_key = key.replace('[', "%5B").replace(']', "%5D");
    let query = app.call(Method::GET, &format!("{path}?{query_key}=1&d=2"), None, None).await;
    let id = execution_of(&query);
    assert_eq!(
        app.wait_for_execution(&app.admin, &id).await["input"]["data"],
        json!({ key.as_str(): "1", "d": "2" })
    );
    assert_eq!(executions_of(&app, &echo).await, 2, "only the form and the query were stored");
    app.shutdown().await;
}

#[tokio::test]
async fn xml_attributes_are_capped_and_bodies_wait_for_the_flow() {
    let app = TestApp::spawn().await;
    let echo = app.active_flow(&app.admin, echo_flow()).await;
    let element = |n: usize| {
        let attributes: String = (0..n).map(|i| format!(" a{i}=\"\"")).collect();
        format!("<r{attributes} />")
    };
    // 80,000 attributes (the review's slowest case) are refused at the cap, unparsed beyond it.
    let reply = post_body(&app, &format!("/webhooks/{echo}"), "application/xml", element(80_000)).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{:?}", reply.body);
    assert_eq!(reply.messages(), ["XML element <r> has more than 1000 attributes."]);
    // 1,000 are taken.
    let id =
        execution_of(&post_body(&app, &format!("/webhooks/{echo}"), "application/xml", element(1_000)).await);
    let ended = app.wait_for_execution(&app.admin, &id).await;
    assert_eq!(ended["input"]["data"]["r"]["_attr"].as_object().map(serde_json::Map::len), Some(1_000));
    // A repeated attribute is malformed XML (found by hashing, not by comparing each pair).
    let repeated = format!("<r{} a0=\"x\"/>", (0..999).map(|i| format!(" a{i}=\"\"")).collect::<String>());
    let reply = post_body(&app, &format!("/webhooks/{echo}"), "application/xml", repeated).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert!(reply.messages()[0].starts_with("Malformed XML in request body."), "{:?}", reply.body);
    // Bodies to an unknown or inactive flow are not parsed: the answer is the flow's 404 (a
    // malformed or too deep body would be 400 if it were read).
    let inactive = app.flow(&app.admin, "inactive").await;
    let unknown = uuid::Uuid::now_v7().to_string();
    for flow in [unknown.as_str(), inactive.as_str(), "not-a-uuid"] {
        for (content_type, body) in [
            ("application/xml", element(80_000)),
            ("application/xml", "<a><b></a>".to_string()),
            ("application/json", "[".repeat(1_000)),
            ("application/x-www-form-urlencoded", "%zz".to_string()),
        ] {
            let reply = post_body(&app, &format!("/webhooks/{flow}"), content_type, body).await;
            assert_eq!(reply.status, StatusCode::NOT_FOUND, "{flow} {content_type}: {:?}", reply.body);
            assert_eq!(reply.messages(), [format!("Flow {flow} either does not exist or is inactive.")]);
        }
    }
    app.shutdown().await;
}

/// A flow document whose graph is a chain of `n` nodes.
fn chain(n: usize) -> Value {
    let nodes: Vec<Value> = (0..n)
        .map(|i| {
            if i == 0 {
                json!({"id": "n0", "componentId": "webhook", "function": "receive"})
            } else {
                json!({"id": format!("n{i}"), "componentId": "log", "function": "info"})
            }
        })
        .collect();
    let edges: Vec<Value> =
        (1..n).map(|i| json!({"source": format!("n{}", i - 1), "target": format!("n{i}")})).collect();
    json!({"name": format!("chain of {n}"), "graph": {"nodes": nodes, "edges": edges}})
}

#[tokio::test]
async fn graphs_are_held_to_max_nodes() {
    let app = TestApp::spawn().await;
    let created = app.post("/flows", &app.admin, chain(1_000)).await;
    assert_eq!(created.status, StatusCode::CREATED, "a 1,000-node chain: {:?}", created.messages());
    let id = created.body["data"]["id"].as_str().expect("id");
    assert_eq!(app.get(&format!("/flows/{id}"), &app.admin).await.status, StatusCode::OK);
    for n in [1_001, 40_000] {
        let refused = app.post("/flows", &app.admin, chain(n)).await;
        assert_eq!(refused.status, StatusCode::BAD_REQUEST);
        assert_eq!(refused.fields(), ["graph.nodes"]);
        assert_eq!(
            refused.messages(),
            [format!("A flow has at most 1000 nodes (FLOWMATE_MAX_NODES); this one has {n}.")]
        );
        let mut template = chain(n);
        template["name"] = json!("template");
        let refused = app.post("/templates", &app.admin, template).await;
        assert_eq!(refused.status, StatusCode::BAD_REQUEST);
        assert_eq!(refused.fields(), ["graph.nodes"]);
    }
    app.shutdown().await;

    let app = TestApp::spawn_with(&["--max-nodes", "10"]).await;
    assert_eq!(app.post("/flows", &app.admin, chain(10)).await.status, StatusCode::CREATED);
    let refused = app.post("/flows", &app.admin, chain(11)).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert_eq!(refused.messages(), ["A flow has at most 10 nodes (FLOWMATE_MAX_NODES); this one has 11."]);
    app.shutdown().await;
}

/// A valid flow document nested exactly `depth` deep, through a node's `fields` (document,
/// graph, nodes, node, fields: 5 levels) or `flowSettings` (2 levels).
fn deep_flow(depth: usize, through_settings: bool) -> Value {
    let mut body = flowmate_tests::flow_body("deep");
    if through_settings {
        body["flowSettings"] = json!({ "x": nested(depth - 2) });
    } else {
        body["graph"]["nodes"][1]["fields"]["x"] = nested(depth - 5);
    }
    body
}

#[tokio::test]
async fn flow_and_template_documents_get_the_depth_limit() {
    let app = TestApp::spawn().await;
    for (through_settings, field) in [(false, "graph"), (true, "flowSettings")] {
        let created = app.post("/flows", &app.admin, deep_flow(LIMIT, through_settings)).await;
        assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.messages());
        let id = created.body["data"]["id"].as_str().expect("id").to_string();
        assert_eq!(app.get(&format!("/flows/{id}"), &app.admin).await.status, StatusCode::OK);
        assert_eq!(app.get("/flows?page[size]=100", &app.admin).await.status, StatusCode::OK);
        let refused = app.post("/flows", &app.admin, deep_flow(LIMIT + 1, through_settings)).await;
        assert_eq!(refused.status, StatusCode::BAD_REQUEST);
        assert_eq!(refused.fields(), [field]);
        assert_eq!(refused.messages(), ["Nesting is deeper than 64 levels (FLOWMATE_MAX_BODY_DEPTH)."]);
        let patched =
            app.patch(&format!("/flows/{id}"), &app.admin, deep_flow(LIMIT + 1, through_settings)).await;
        assert_eq!(patched.status, StatusCode::BAD_REQUEST, "{:?}", patched.body);
        let template = app.post("/templates", &app.admin, deep_flow(LIMIT, through_settings)).await;
        assert_eq!(template.status, StatusCode::CREATED, "{:?}", template.messages());
        let template_id = template.body["data"]["id"].as_str().expect("id").to_string();
        assert_eq!(app.get(&format!("/templates/{template_id}"), &app.admin).await.status, StatusCode::OK);
        let refused = app.post("/templates", &app.admin, deep_flow(LIMIT + 1, through_settings)).await;
        assert_eq!(refused.status, StatusCode::BAD_REQUEST);
        assert_eq!(refused.fields(), [field]);
    }
    app.shutdown().await;
}
