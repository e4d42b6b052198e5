//! Hostile cases: webhook auth (issue 16, findings 6 and 8).
//!
//! - A captured signed call (HMAC, or Standard Webhooks within its 5-minute window) replayed
//!   with a new `Idempotency-Key` or `x-request-id` answers the first reply and starts nothing:
//!   a signed call's key comes from what the signature covers.
//! - A non-ASCII `Authorization` header is refused (403 on a webhook, 401 on the API), never a
//!   panic and a 500.

use axum::body::Body;
use axum::http::{HeaderValue, Method, Request, StatusCode};
use flow_domain::services::webhook_auth::{sign_hmac, sign_standard_webhook};
use flowmate_tests::TestApp;
use serde_json::{Value, json};

const SECRET: &str = "whsec_aG9zdGlsZS1yZXBsYXktc2VjcmV0";

/// A single webhook node, with `settings` as its flow settings.
fn echo(settings: Value) -> Value {
    json!({
        "name": "replayed",
        "flowSettings": settings,
        "graph": {"nodes": [{"id": "in", "componentId": "webhook", "function": "receive"}]}
    })
}

fn secured() -> Value {
    json!({"webhooks": {"requireWebhookAuth": true, "secret": SECRET}})
}

async fn executions_of(app: &TestApp, flow: &str) -> u64 {
    let reply = app.get(&format!("/executions?filter[flowId]={flow}"), &app.admin).await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    reply.body["meta"]["total"].as_u64().unwrap_or(u64::MAX)
}

/// Posts `raw` to `path` with `headers` (JSON content type added).
async fn post(app: &TestApp, path: &str, headers: &[(&str, &str)], raw: &str) -> flowmate_tests::Reply {
    let mut all = vec![("content-type", "application/json")];
    all.extend_from_slice(headers);
    app.call_raw(Method::POST, path, None, &all, raw.to_string()).await
}

#[tokio::test]
async fn a_replayed_hmac_call_with_new_keys_answers_the_first_reply_and_starts_nothing() {
    let app = TestApp::spawn().await;
    let flow = app.active_flow(&app.admin, echo(secured())).await;
    for (order, path) in [(1, format!("/webhooks/{flow}")), (2, format!("/webhooks/{flow}?sync=true"))] {
        let raw = json!({ "order": order }).to_string();
        let signature = sign_hmac(SECRET, raw.as_bytes());
        let first = post(&app, &path, &[("x-hmac", &signature), ("idempotency-key", "first")], &raw).await;
        assert_eq!(first.status, StatusCode::OK, "{:?}", first.body);
        let sent = ["second", "third", "fourth"];
        for (n, key) in sent.iter().enumerate() {
            // A new Idempotency-Key, a new x-request-id, the signature respelled.
            let respelled = match n {
                0 => signature.clone(),
                1 => signature.to_uppercase(),
                _ => format!("sha256={signature}"),
            };
            let request_id = format!("replay-{key}");
            let headers =
                [("x-hmac", respelled.as_str()), ("idempotency-key", key), ("x-request-id", &request_id)];
            let replay = post(&app, &path, &headers, &raw).await;
            assert_eq!(replay.status, StatusCode::OK, "{:?}", replay.body);
            assert_eq!(replay.body, first.body, "the replay answers the first reply");
            assert_eq!(replay.headers.get("x-execution-id"), first.headers.get("x-execution-id"));
        }
    }
    assert_eq!(executions_of(&app, &flow).await, 2, "the replays started nothing");
}

#[tokio::test]
async fn a_replayed_standard_webhook_with_new_keys_answers_the_first_reply_and_starts_nothing() {
    let app = TestApp::spawn().await;
    let flow = app.active_flow(&app.admin, echo(secured())).await;
    let path = format!("/webhooks/{flow}");
    let raw = json!({"event": "paid"}).to_string();
    let now = chrono::Utc::now().timestamp();
    let ts = now.to_string();
    let signature = sign_standard_webhook(SECRET, "msg_hostile", now, raw.as_bytes());
    let signed = [
        ("webhook-id", "msg_hostile"),
        ("webhook-timestamp", ts.as_str()),
        ("webhook-signature", &signature),
    ];
    let first = post(&app, &path, &signed, &raw).await;
    assert_eq!(first.status, StatusCode::OK, "{:?}", first.body);
    for n in 0..3 {
        let (key, request_id) = (format!("fresh-{n}"), format!("fresh-request-{n}"));
        let mut headers = signed.to_vec();
        headers.extend([("idempotency-key", key.as_str()), ("x-request-id", request_id.as_str())]);
        let replay = post(&app, &path, &headers, &raw).await;
        assert_eq!(replay.status, StatusCode::OK, "{:?}", replay.body);
        assert_eq!(replay.body, first.body, "the replay answers the first reply");
    }
    // A re-delivery by the sender (same webhook-id, fresh timestamp and signature) is the same
    // message too.
    let later = now + 1;
    let resigned = sign_standard_webhook(SECRET, "msg_hostile", later, raw.as_bytes());
    let later = later.to_string();
    let redelivery =
        [("webhook-id", "msg_hostile"), ("webhook-timestamp", &later), ("webhook-signature", &resigned)];
    assert_eq!(post(&app, &path, &redelivery, &raw).await.body, first.body);
    assert_eq!(executions_of(&app, &flow).await, 1, "the replays started nothing");
}

#[tokio::test]
async fn a_bearer_call_keeps_the_callers_idempotency_key() {
    let app = TestApp::spawn().await;
    let flow = app.active_flow(&app.admin, echo(secured())).await;
    let path = format!("/webhooks/{flow}");
    let bearer = format!("Bearer {}", app.admin);
    let first = post(&app, &path, &[("authorization", &bearer), ("idempotency-key", "b-1")], "{}").await;
    let again = post(&app, &path, &[("authorization", &bearer), ("idempotency-key", "b-1")], "{}").await;
    let other = post(&app, &path, &[("authorization", &bearer), ("idempotency-key", "b-2")], "{}").await;
    assert_eq!(first.status, StatusCode::OK, "{:?}", first.body);
    assert_eq!(again.body, first.body);
    assert_ne!(other.body["data"]["executionId"], first.body["data"]["executionId"]);
    assert_eq!(executions_of(&app, &flow).await, 2);
}

/// `path` called with the raw bytes `authorization` as its `Authorization` header.
async fn with_authorization(app: &TestApp, method: Method, path: &str, authorization: &[u8]) -> StatusCode {
    let value = HeaderValue::from_bytes(authorization).expect("header bytes");
    let request = Request::builder()
        .method(method)
        .uri(path)
        .header("content-type", "application/json")
        .header("authorization", value)
        .body(Body::from("{}"))
        .expect("request");
    let reply = app.send(request).await;
    if reply.status.is_server_error() {
        panic!("{path} with {:?}: {} {:?}", String::from_utf8_lossy(authorization), reply.status, reply.body);
    }
    reply.status
}

/// Non-ASCII bytes at and around each place the old parser sliced at.
const HOSTILE_AUTHORIZATION: &[&[u8]] = &[
    b"Bearer \xc3\xa9\xc3\xa9\xc3\xa9",
    b"Bearer\xc3\xa9\xc3\xa9",
    b"Beare\xc3\xa9\xc3\xa9",
    b"Basic\xc3\xa9\xc3\xa9",
    b"Basi\xc3\xa9",
    b"Basic \xc3\xa9\xc3\xa9",
    b"\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9",
    b"\xff\xfe\xfd\xfc\xfb\xfa\xf9\xf8",
    b"Bearer \xff",
    b"\xe2\x82\xac",
];

#[tokio::test]
async fn a_non_ascii_authorization_is_refused_without_a_panic() {
    let app = TestApp::spawn().await;
    let signed = app.active_flow(&app.admin, echo(secured())).await;
    let bearer_only =
        app.active_flow(&app.admin, echo(json!({"webhooks": {"requireWebhookAuth": true}}))).await;
    for value in HOSTILE_AUTHORIZATION {
        for flow in [&signed, &bearer_only] {
            for path in [format!("/webhooks/{flow}"), format!("/hook/{flow}/suffix")] {
                for method in [Method::POST, Method::GET, Method::HEAD] {
                    let status = with_authorization(&app, method, &path, value).await;
                    assert_eq!(status, StatusCode::FORBIDDEN, "{path} {:?}", String::from_utf8_lossy(value));
                }
            }
        }
        for path in ["/flows", "/api/users/me", "/templates", "/executions"] {
            let status = with_authorization(&app, Method::GET, path, value).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{path} {:?}", String::from_utf8_lossy(value));
        }
        let status = with_authorization(&app, Method::POST, "/logout", value).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "/logout");
    }
    assert_eq!(executions_of(&app, &signed).await, 0);
    assert_eq!(executions_of(&app, &bearer_only).await, 0);
    // The process still serves.
    assert_eq!(app.get("/flows", &app.admin).await.status, StatusCode::OK);
}
