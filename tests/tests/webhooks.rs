//! Incoming webhooks over the whole application (SPEC §6): every status code, every body kind,
//! every auth mode (forged, stale and replayed signatures refused), idempotency, `?sync=true`,
//! the `/hook` alias, and the write-only secret.

use axum::http::{Method, StatusCode};
use base64::Engine as _;
use flow_domain::services::webhook_auth::{sign_hmac, sign_standard_webhook};
use flowmate_tests::{ADMIN_PASSWORD, TestApp};
use serde_json::{Value, json};

const SECRET: &str = "whsec_c2VjcmV0LWtleS1tYXRlcmlhbA==";

/// webhook -> jq (`{greeting: "hello " + .data.name}`).
fn greeter(settings: Value) -> Value {
    json!({
        "name": "greeter",
        "flowSettings": settings,
        "graph": {
            "nodes": [
                {"id": "in", "componentId": "webhook", "function": "receive"},
                {"id": "greet", "componentId": "jq", "function": "transform",
                 "fields": {"program": "{greeting: (\"hello \" + .data.name)}"}}
            ],
            "edges": [{"source": "in", "target": "greet"}]
        }
    })
}

/// A single webhook node: the reply is what was received.
fn echo() -> Value {
    json!({"name": "echo", "graph": {"nodes": [{"id": "in", "componentId": "webhook", "function": "receive"}]}})
}

fn secured() -> Value {
    json!({"webhooks": {"requireWebhookAuth": true, "secret": SECRET}})
}

async fn executions_of(app: &TestApp, flow: &str) -> u64 {
    let reply = app.get(&format!("/executions?filter[flowId]={flow}"), &app.admin).await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    reply.body["meta"]["total"].as_u64().unwrap_or(u64::MAX)
}

#[tokio::test]
async fn a_call_runs_the_flow_and_sync_answers_with_the_last_output() {
    let app = TestApp::spawn().await;
    let flow = app.active_flow(&app.admin, greeter(json!({}))).await;
    let reply = app.hook(&format!("/webhooks/{flow}?sync=true"), &[], &json!({"name": "Ada"})).await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    assert_eq!(reply.body, json!({"greeting": "hello Ada"}));
    let execution = reply.headers["x-execution-id"].to_str().expect("header").to_string();
    // webhook -> jq runs inline: the ended execution was stored before the answer.
    let record = app.get(&format!("/executions/{execution}"), &app.admin).await.body["data"].clone();
    assert_eq!(record["status"], "succeeded");
    assert_eq!(record["flowId"], flow.as_str());
    assert_eq!(record["trigger"]["type"], "webhook");
    assert_eq!(record["steps"]["in"]["status"], "succeeded");
    assert_eq!(record["steps"]["greet"]["in"], 1);
    assert_eq!(record["steps"]["greet"]["out"], 1);
    assert_eq!(record["counters"]["errors"], 0);
    assert_eq!(record["input"]["data"], json!({"name": "Ada"}));
    assert_eq!(record["input"]["method"], "POST");
}

#[tokio::test]
async fn an_async_call_is_recorded_before_the_reply() {
    let app = TestApp::spawn().await;
    let flow = app.active_flow(&app.admin, greeter(json!({}))).await;
    let reply =
        app.hook(&format!("/webhooks/{flow}"), &[("x-request-id", "req-42")], &json!({"name": "Bo"})).await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    assert_eq!(reply.body["data"]["message"], "thank you");
    assert_eq!(reply.body["data"]["requestId"], "req-42");
    let execution = reply.body["data"]["executionId"].as_str().expect("execution id").to_string();
    // Readable at once: stored before the reply.
    let now = app.get(&format!("/executions/{execution}"), &app.admin).await;
    assert_eq!(now.status, StatusCode::OK, "{:?}", now.body);
    assert_eq!(now.body["data"]["trigger"]["requestId"], "req-42");
    let done = app.wait_for_execution(&app.admin, &execution).await;
    assert_eq!(done["status"], "succeeded");
    assert_eq!(done["steps"]["greet"]["sampleOutput"][0]["data"], json!({"greeting": "hello Bo"}));
}

#[tokio::test]
async fn unknown_inactive_and_malformed_flows_are_404() {
    let app = TestApp::spawn().await;
    let inactive = app.flow(&app.admin, "idle").await;
    let unknown = uuid::Uuid::now_v7().to_string();
    for id in [inactive.as_str(), unknown.as_str(), "not-a-uuid"] {
        for path in [format!("/webhooks/{id}"), format!("/hook/{id}")] {
            let reply = app.hook(&path, &[], &json!({})).await;
            assert_eq!(reply.status, StatusCode::NOT_FOUND, "{path}");
            assert_eq!(reply.messages(), [format!("Flow {id} either does not exist or is inactive.")]);
        }
        let head = app.call_raw(Method::HEAD, &format!("/webhooks/{id}"), None, &[], "").await;
        assert_eq!(head.status, StatusCode::NOT_FOUND);
    }
}

#[tokio::test]
async fn a_sync_call_to_a_flow_that_waits_goes_through_a_worker_and_still_answers() {
    let app = TestApp::spawn().await;
    let paused = json!({
        "name": "paused greeter",
        "graph": {
            "nodes": [
                {"id": "in", "componentId": "webhook", "function": "receive"},
                {"id": "pause", "componentId": "delay", "function": "wait", "fields": {"ms": 1}},
                {"id": "greet", "componentId": "jq", "function": "transform",
                 "fields": {"program": "{greeting: (\"hello \" + .data.name)}"}}
            ],
            "edges": [{"source": "in", "target": "pause"}, {"source": "pause", "target": "greet"}]
        }
    });
    let flow = app.active_flow(&app.admin, paused).await;
    let reply = app.hook(&format!("/webhooks/{flow}?sync=true"), &[], &json!({"name": "Bo"})).await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    assert_eq!(reply.body, json!({"greeting": "hello Bo"}));
    let execution = reply.headers["x-execution-id"].to_str().expect("header").to_string();
    let record = app.get(&format!("/executions/{execution}"), &app.admin).await.body["data"].clone();
    assert_eq!(record["status"], "succeeded");
    assert_eq!(record["steps"]["pause"]["status"], "succeeded");
}

#[tokio::test]
async fn bodies_of_every_accepted_kind_become_the_message_data() {
    let app = TestApp::spawn().await;
    let flow = app.active_flow(&app.admin, echo()).await;
    let path = format!("/webhooks/{flow}?sync=true");
    let cases: [(&str, &str, Value); 6] = [
        ("application/json", r#"{"a":[1,2]}"#, json!({"a": [1, 2]})),
        ("text/plain", r#"{"b":true}"#, json!({"b": true})),
        ("text/plain; charset=utf-8", "just text", json!("just text")),
        ("application/x-www-form-urlencoded", "name=Ada&lang=en", json!({"name": "Ada", "lang": "en"})),
        ("application/xml", "<order id=\"7\"><item>a</item><item>b</item></order>", Value::Null),
        ("text/xml", "<note>hi</note>", Value::Null),
    ];
    for (content_type, body, expected) in cases {
        let reply = app.call_raw(Method::POST, &path, None, &[("content-type", content_type)], body).await;
        assert_eq!(reply.status, StatusCode::OK, "{content_type}: {:?}", reply.body);
        if expected.is_null() {
            let text = reply.body.to_string();
            assert!(text.contains("\"a\"") || text.contains("hi"), "{content_type}: {text}");
        } else {
            assert_eq!(reply.body, expected, "{content_type}");
        }
    }
    let get = app.call_raw(Method::GET, &format!("/webhooks/{flow}?sync=true&q=1&w=x"), None, &[], "").await;
    assert_eq!(get.status, StatusCode::OK, "{:?}", get.body);
    assert_eq!(get.body["q"], "1");
    assert_eq!(get.body["w"], "x");
}

#[tokio::test]
async fn bad_requests_get_their_status_codes() {
    let app = TestApp::spawn_with(&["--body-limit-bytes", "1024"]).await;
    let flow = app.active_flow(&app.admin, echo()).await;
    let path = format!("/webhooks/{flow}");
    let missing = app.call_raw(Method::POST, &path, None, &[], "{}").await;
    assert_eq!(missing.status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{:?}", missing.body);
    assert_eq!(missing.messages(), ["Content-Type header is missing"]);
    let unsupported = app.call_raw(Method::POST, &path, None, &[("content-type", "image/png")], "x").await;
    assert_eq!(unsupported.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let bad_json =
        app.call_raw(Method::POST, &path, None, &[("content-type", "application/json")], "{nope").await;
    assert_eq!(bad_json.status, StatusCode::BAD_REQUEST);
    let bad_xml =
        app.call_raw(Method::POST, &path, None, &[("content-type", "application/xml")], "<a><b></a>").await;
    assert_eq!(bad_xml.status, StatusCode::BAD_REQUEST);
    let big = "x".repeat(4096);
    let too_big = app.call_raw(Method::POST, &path, None, &[("content-type", "text/plain")], big).await;
    assert_eq!(too_big.status, StatusCode::PAYLOAD_TOO_LARGE);
    let head = app.call_raw(Method::HEAD, &path, None, &[], "").await;
    assert_eq!(head.status, StatusCode::OK);
    // None of these created an execution.
    assert_eq!(executions_of(&app, &flow).await, 0);
}

#[tokio::test]
async fn the_hook_alias_keeps_the_path_suffix() {
    let app = TestApp::spawn().await;
    let flow = app.active_flow(&app.admin, echo()).await;
    let reply = app.hook(&format!("/hook/{flow}/orders"), &[], &json!({"n": 1})).await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    let execution = reply.body["data"]["executionId"].as_str().expect("id").to_string();
    let record = app.wait_for_execution(&app.admin, &execution).await;
    assert_eq!(record["input"]["pathSuffix"], "orders");
}

#[tokio::test]
async fn idempotency_keys_answer_the_first_response_once() {
    let app = TestApp::spawn().await;
    let flow = app.active_flow(&app.admin, echo()).await;
    let path = format!("/webhooks/{flow}");
    let first = app.hook(&path, &[("idempotency-key", "k-1")], &json!({"n": 1})).await;
    let again = app.hook(&path, &[("idempotency-key", "k-1")], &json!({"n": 2})).await;
    assert_eq!(first.status, StatusCode::OK);
    assert_eq!(again.status, StatusCode::OK);
    assert_eq!(first.body, again.body);
    let other = app.hook(&path, &[("idempotency-key", "k-2")], &json!({"n": 3})).await;
    assert_ne!(other.body["data"]["executionId"], first.body["data"]["executionId"]);
    let by_request_id = app.hook(&path, &[("x-request-id", "r-9")], &json!({})).await;
    let repeated = app.hook(&path, &[("x-request-id", "r-9")], &json!({})).await;
    assert_eq!(by_request_id.body, repeated.body);
    assert_eq!(executions_of(&app, &flow).await, 3);
    // Synchronous calls run inline; a repeat answers the first call's reply and stores nothing.
    let sync = format!("/webhooks/{flow}?sync=true");
    let first = app.hook(&sync, &[("idempotency-key", "s-1")], &json!({"n": 4})).await;
    let again = app.hook(&sync, &[("idempotency-key", "s-1")], &json!({"n": 5})).await;
    assert_eq!(first.status, StatusCode::OK, "{:?}", first.body);
    assert_eq!((first.body.clone(), again.body), (json!({"n": 4}), json!({"n": 4})));
    assert_eq!(first.headers["x-execution-id"], again.headers["x-execution-id"]);
    assert_eq!(executions_of(&app, &flow).await, 4);
}

#[tokio::test]
async fn hmac_signatures_are_checked_and_never_replayed() {
    let app = TestApp::spawn().await;
    let flow = app.active_flow(&app.admin, greeter(secured())).await;
    let path = format!("/webhooks/{flow}");
    let body = json!({"name": "Signed"});
    let raw = body.to_string();
    let good = sign_hmac(SECRET, raw.as_bytes());
    let ok = app
        .call_raw(
            Method::POST,
            &path,
            None,
            &[("content-type", "application/json"), ("x-hmac", &good)],
            raw.clone(),
        )
        .await;
    assert_eq!(ok.status, StatusCode::OK, "{:?}", ok.body);
    let replay = app
        .call_raw(
            Method::POST,
            &path,
            None,
            &[("content-type", "application/json"), ("x-hmac", &good)],
            raw.clone(),
        )
        .await;
    assert_eq!(replay.body["data"]["executionId"], ok.body["data"]["executionId"]);
    let forged = sign_hmac("guessed", raw.as_bytes());
    for signature in [forged.as_str(), "", "zz", &good[..10]] {
        let reply = app
            .call_raw(
                Method::POST,
                &path,
                None,
                &[("content-type", "application/json"), ("x-hmac", signature)],
                raw.clone(),
            )
            .await;
        assert_eq!(reply.status, StatusCode::FORBIDDEN, "{signature:?}");
        assert_eq!(reply.messages(), ["Unauthorized"]);
    }
    let tampered = app
        .call_raw(
            Method::POST,
            &path,
            None,
            &[("content-type", "application/json"), ("x-hmac", &good)],
            r#"{"name":"Other"}"#,
        )
        .await;
    assert_eq!(tampered.status, StatusCode::FORBIDDEN);
    let anonymous = app.hook(&path, &[], &body).await;
    assert_eq!(anonymous.status, StatusCode::FORBIDDEN);
    assert_eq!(executions_of(&app, &flow).await, 1);
}

#[tokio::test]
async fn standard_webhooks_refuse_stale_forged_and_replayed_calls() {
    let app = TestApp::spawn().await;
    let flow = app.active_flow(&app.admin, echo_with(secured())).await;
    let path = format!("/webhooks/{flow}");
    let raw = json!({"event": "paid"}).to_string();
    let now = chrono::Utc::now().timestamp();
    let send = |id: &'static str, ts: i64, secret: &'static str| {
        let sig = sign_standard_webhook(secret, id, ts, raw.as_bytes());
        let ts = ts.to_string();
        let raw = raw.clone();
        let app = &app;
        let path = path.clone();
        async move {
            let headers = [
                ("content-type", "application/json"),
                ("webhook-id", id),
                ("webhook-timestamp", ts.as_str()),
                ("webhook-signature", sig.as_str()),
            ];
            app.call_raw(Method::POST, &path, None, &headers, raw).await
        }
    };
    let ok = send("msg_1", now, SECRET).await;
    assert_eq!(ok.status, StatusCode::OK, "{:?}", ok.body);
    let replay = send("msg_1", now, SECRET).await;
    assert_eq!(replay.body["data"]["executionId"], ok.body["data"]["executionId"]);
    // Well past the 300 s tolerance: the server reads its clock in whole seconds later than
    // `now` was taken, so `now + 301` passed whenever a second boundary fell in between.
    assert_eq!(send("msg_2", now - 330, SECRET).await.status, StatusCode::FORBIDDEN);
    assert_eq!(send("msg_3", now + 330, SECRET).await.status, StatusCode::FORBIDDEN);
    assert_eq!(send("msg_4", now, "whsec_b3RoZXI=").await.status, StatusCode::FORBIDDEN);
    assert_eq!(executions_of(&app, &flow).await, 1);
}

fn echo_with(settings: Value) -> Value {
    let mut flow = echo();
    flow["flowSettings"] = settings;
    flow
}

#[tokio::test]
async fn bearer_and_basic_need_webhooks_execute_and_ownership() {
    let app = TestApp::spawn().await;
    let tenant = app.tenant("acme").await;
    let (_, owner) =
        app.user(Some(&tenant), &["flows.write", "flows.control", "flows.read", "webhooks.execute"]).await;
    // Flows are owned by their creator and the creator's tenant: a user of another tenant is
    // not an owner.
    let elsewhere = app.tenant("elsewhere").await;
    let (_, stranger) = app.user(Some(&elsewhere), &["webhooks.execute"]).await;
    let (_, no_permission) = app.user(Some(&tenant), &["flows.read"]).await;
    let flow = app.active_flow(&owner, echo_with(json!({"webhooks": {"requireWebhookAuth": true}}))).await;
    let path = format!("/webhooks/{flow}");
    let bearer = |token: &str| format!("Bearer {token}");
    let ok = app.hook(&path, &[("authorization", &bearer(&owner))], &json!({})).await;
    assert_eq!(ok.status, StatusCode::OK, "{:?}", ok.body);
    for token in [stranger.as_str(), no_permission.as_str(), "not-a-token"] {
        let reply = app.hook(&path, &[("authorization", &bearer(token))], &json!({})).await;
        assert_eq!(reply.status, StatusCode::FORBIDDEN);
    }
    // Basic: the admin owns everything but lacks nothing; a wrong password is refused.
    let basic = |password: &str| {
        format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("admin:{password}")))
    };
    let ok = app.hook(&path, &[("authorization", &basic(ADMIN_PASSWORD))], &json!({})).await;
    assert_eq!(ok.status, StatusCode::OK, "{:?}", ok.body);
    let wrong = app.hook(&path, &[("authorization", &basic("wrong-password"))], &json!({})).await;
    assert_eq!(wrong.status, StatusCode::FORBIDDEN);
    assert_eq!(executions_of(&app, &flow).await, 2);
}

#[tokio::test]
async fn the_webhook_secret_is_write_only() {
    let app = TestApp::spawn().await;
    let created = app.post("/flows", &app.admin, echo_with(secured())).await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    let id = created.body["data"]["id"].as_str().expect("id").to_string();
    let read = app.get(&format!("/flows/{id}"), &app.admin).await;
    assert_eq!(read.body["data"]["flowSettings"]["webhooks"], json!({"requireWebhookAuth": true}));
    // An update that does not mention the secret keeps it.
    let patched = app
        .patch(
            &format!("/flows/{id}"),
            &app.admin,
            json!({"flowSettings": read.body["data"]["flowSettings"]}),
        )
        .await;
    assert_eq!(patched.status, StatusCode::OK, "{:?}", patched.body);
    app.post_empty(&format!("/flows/{id}/start"), &app.admin).await;
    app.wait_for_status(&app.admin, &id, "active").await;
    let raw = "{}";
    let sig = sign_hmac(SECRET, raw.as_bytes());
    let ok = app
        .call_raw(
            Method::POST,
            &format!("/webhooks/{id}"),
            None,
            &[("content-type", "application/json"), ("x-hmac", &sig)],
            raw,
        )
        .await;
    assert_eq!(ok.status, StatusCode::OK, "{:?}", ok.body);
    let list = app.get("/flows", &app.admin).await;
    assert!(!list.body.to_string().contains(SECRET));
    app.assert_no_secrets(&[SECRET]);
}

#[tokio::test]
async fn sync_answers_500_with_the_step_error() {
    let app = TestApp::spawn().await;
    let failing = json!({
        "name": "fails",
        "graph": {
            "nodes": [
                {"id": "in", "componentId": "webhook", "function": "receive"},
                {"id": "boom", "componentId": "code", "function": "run", "fields": {"script": "throw \"boom\""}}
            ],
            "edges": [{"source": "in", "target": "boom"}]
        }
    });
    let flow = app.active_flow(&app.admin, failing).await;
    let reply = app.hook(&format!("/webhooks/{flow}?sync=true"), &[], &json!({})).await;
    assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR, "{:?}", reply.body);
    assert!(reply.messages().iter().any(|m| m.contains("boom")), "{:?}", reply.body);
    assert!(reply.headers.contains_key("x-execution-id"));
}

/// FLOWMATE_MAX_QUEUED_EXECUTIONS: while more executions wait than the limit, a call that would
/// queue one more is refused with 503 and Retry-After and stores nothing; once the backlog is
/// gone, calls are accepted again. The backlog is sampled a few times a second, so the test
/// calls until the refusal comes (bounded) rather than expecting it at a fixed call.
#[tokio::test]
async fn calls_are_refused_with_503_while_too_many_executions_wait_and_nothing_is_stored() {
    let app = TestApp::spawn_with(&["--max-queued-executions", "2", "--max-concurrent-per-flow", "1"]).await;
    let slow = json!({
        "name": "slow",
        "graph": {
            "nodes": [
                {"id": "in", "componentId": "webhook", "function": "receive"},
                {"id": "wait", "componentId": "delay", "function": "wait", "fields": {"ms": 600000}}
            ],
            "edges": [{"source": "in", "target": "wait"}]
        }
    });
    let flow = app.active_flow(&app.admin, slow).await;
    let path = format!("/webhooks/{flow}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    let mut accepted = Vec::new();
    let refused = loop {
        let reply = app.hook(&path, &[], &json!({"n": accepted.len()})).await;
        if reply.status != StatusCode::OK {
            break reply;
        }
        accepted.push(reply.body["data"]["executionId"].as_str().expect("execution id").to_string());
        assert!(std::time::Instant::now() < deadline, "never refused after {} calls", accepted.len());
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    assert_eq!(refused.status, StatusCode::SERVICE_UNAVAILABLE, "{:?}", refused.body);
    assert_eq!(refused.headers["retry-after"], "1");
    assert_eq!(refused.body["errors"][0]["code"], 503);
    assert!(refused.body["errors"][0]["message"].as_str().is_some_and(|m| m.contains("waiting")));
    // One runs (held by the delay, one at a time for this flow), at least two wait.
    assert!(accepted.len() >= 3, "{accepted:?}");
    assert_eq!(executions_of(&app, &flow).await, accepted.len() as u64);
    for id in &accepted {
        let cancelled = app.post_empty(&format!("/executions/{id}/cancel"), &app.admin).await;
        assert_eq!(cancelled.status, StatusCode::OK, "{:?}", cancelled.body);
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    let again = loop {
        let reply = app.hook(&path, &[], &json!({"n": "again"})).await;
        if reply.status == StatusCode::OK || std::time::Instant::now() > deadline {
            break reply;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    assert_eq!(again.status, StatusCode::OK, "{:?}", again.body);
    let last = again.body["data"]["executionId"].as_str().expect("execution id").to_string();
    assert_eq!(
        app.post_empty(&format!("/executions/{last}/cancel"), &app.admin).await.status,
        StatusCode::OK
    );
    app.shutdown().await;
}
