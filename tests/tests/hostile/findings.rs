//! Hostile cases: the smaller findings of the attack review (issue 16, findings 9 to 13).
//!
//! - 9: a template's webhook secret is write-only exactly like a flow's (create, list, get,
//!   update, generate), and kept by updates that do not name it.
//! - 10: a password change, an administrator's reset and disabling a user revoke that user's
//!   other tokens at once (the token that changed its own password stays valid).
//! - 11: made-up HTTP methods and random paths add no series to `/metrics`.
//! - 12: a `log` node cannot forge a log line (its text is an escaped field, in text and JSON).
//! - 13: the SSRF guard refuses IPv4-compatible, IPv4-mapped and NAT64 forms of private
//!   addresses.

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use flow_domain::services::webhook_auth::sign_hmac;
use flowmate::config::LogFormat;
use flowmate_tests::{TestApp, USER_PASSWORD, template_body};
use serde_json::{Value, json};
use std::sync::Arc;

const SECRET: &str = "template-secret-never-shown";

// Finding 9 ------------------------------------------------------------------------------

#[tokio::test]
async fn a_template_secret_is_write_only_like_a_flows() {
    let app = TestApp::spawn().await;
    let mut body = template_body("signed template");
    body["flowSettings"] = json!({"webhooks": {"requireWebhookAuth": true, "secret": SECRET}});
    let shown = json!({"requireWebhookAuth": true});
    let created = app.post("/templates", &app.admin, body).await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    assert_eq!(created.body["data"]["flowSettings"]["webhooks"], shown, "create");
    let id = created.body["data"]["id"].as_str().expect("id").to_string();
    let read = app.get(&format!("/templates/{id}"), &app.admin).await;
    assert_eq!(read.body["data"]["flowSettings"]["webhooks"], shown, "get");
    let list = app.get("/templates", &app.admin).await;
    let listed = list.body["data"].as_array().expect("list").iter().find(|t| t["id"] == id.as_str()).cloned();
    assert_eq!(listed.expect("listed")["flowSettings"]["webhooks"], shown, "list");
    // Updates that do not name the secret keep it: sending back what was read, renaming.
    let path = format!("/templates/{id}");
    let patched =
        app.patch(&path, &app.admin, json!({"flowSettings": read.body["data"]["flowSettings"]})).await;
    assert_eq!(patched.status, StatusCode::OK, "{:?}", patched.body);
    assert_eq!(patched.body["data"]["flowSettings"]["webhooks"], shown, "update");
    let renamed = app.patch(&path, &app.admin, json!({"name": "renamed", "status": "published"})).await;
    assert_eq!(renamed.status, StatusCode::OK, "{:?}", renamed.body);
    let generated = app.post(&format!("/templates/{id}/generate"), &app.admin, json!({})).await;
    assert_eq!(generated.status, StatusCode::CREATED, "{:?}", generated.body);
    assert_eq!(generated.body["data"]["flowSettings"]["webhooks"], shown, "generate");
    // The generated flow inherited the secret: only a call signed with it is accepted.
    let flow = generated.body["data"]["id"].as_str().expect("flow id").to_string();
    assert_eq!(app.post_empty(&format!("/flows/{flow}/start"), &app.admin).await.status, StatusCode::OK);
    app.wait_for_status(&app.admin, &flow, "active").await;
    let raw = r#"{"name":"Ada"}"#;
    let signature = sign_hmac(SECRET, raw.as_bytes());
    let hook = format!("/webhooks/{flow}");
    let json_type = ("content-type", "application/json");
    let signed = app.call_raw(Method::POST, &hook, None, &[json_type, ("x-hmac", &signature)], raw).await;
    assert_eq!(signed.status, StatusCode::OK, "{:?}", signed.body);
    let unsigned = app.call_raw(Method::POST, &hook, None, &[json_type], raw).await;
    assert_eq!(unsigned.status, StatusCode::FORBIDDEN);
    app.get(&format!("/flows/{flow}"), &app.admin).await;
    app.assert_no_secrets(&[SECRET]);
}

// Finding 10 -----------------------------------------------------------------------------

async fn me(app: &TestApp, token: &str) -> StatusCode {
    app.get("/api/users/me", token).await.status
}

#[tokio::test]
async fn a_password_change_a_reset_and_disabling_revoke_the_users_other_tokens() {
    let app = TestApp::spawn().await;
    let tenant = app.tenant("revocations").await;
    let (id, first) = app.user(Some(&tenant), &["flows.read"]).await;
    let username =
        app.get("/api/users/me", &first).await.body["data"]["username"].as_str().expect("name").to_string();
    let second = app.login(&username, USER_PASSWORD).await;
    let path = format!("/api/users/{id}");

    // The user changes its own password with `first`: `second` is refused at once, `first` stays.
    let changed = app.patch(&path, &first, json!({"password": "a-new-password-1"})).await;
    assert_eq!(changed.status, StatusCode::OK, "{:?}", changed.body);
    assert_eq!(me(&app, &second).await, StatusCode::UNAUTHORIZED, "the other session ended");
    assert_eq!(me(&app, &first).await, StatusCode::OK, "the session that changed it goes on");
    let old = app.call(
        Method::POST,
        "/login",
        None,
        Some(json!({"username": username, "password": USER_PASSWORD})),
    );
    assert_eq!(old.await.status, StatusCode::UNAUTHORIZED);
    let third = app.login(&username, "a-new-password-1").await;

    // An administrator resets it: every token of the user ends, the one that changed it before
    // too.
    let reset = app.patch(&path, &app.admin, json!({"password": "a-new-password-2"})).await;
    assert_eq!(reset.status, StatusCode::OK, "{:?}", reset.body);
    for token in [&first, &third] {
        assert_eq!(me(&app, token).await, StatusCode::UNAUTHORIZED, "reset ends every session");
    }

    // Disabling ends every session, and enabling again revives none.
    let fourth = app.login(&username, "a-new-password-2").await;
    let disabled = app.patch(&path, &app.admin, json!({"status": "DISABLED"})).await;
    assert_eq!(disabled.status, StatusCode::OK, "{:?}", disabled.body);
    assert_eq!(me(&app, &fourth).await, StatusCode::UNAUTHORIZED, "disabling ends every session");
    let enabled = app.patch(&path, &app.admin, json!({"status": "ACTIVE"})).await;
    assert_eq!(enabled.status, StatusCode::OK, "{:?}", enabled.body);
    for token in [&first, &second, &third, &fourth] {
        assert_eq!(me(&app, token).await, StatusCode::UNAUTHORIZED, "no session comes back");
    }
    let fifth = app.login(&username, "a-new-password-2").await;
    assert_eq!(me(&app, &fifth).await, StatusCode::OK);
    // A change of names alone ends nothing.
    let renamed = app.patch(&path, &fifth, json!({"firstname": "Ada"})).await;
    assert_eq!(renamed.status, StatusCode::OK, "{:?}", renamed.body);
    assert_eq!(me(&app, &fifth).await, StatusCode::OK);
}

// Finding 11 -----------------------------------------------------------------------------

/// Sends `method` to `path` and returns the status.
async fn send(app: &TestApp, method: &str, path: &str) -> StatusCode {
    let method = Method::from_bytes(method.as_bytes()).expect("method");
    let request = Request::builder().method(method).uri(path).body(Body::empty()).expect("request");
    app.send(request).await.status
}

/// The label values of `label` in the Prometheus text `metrics`.
fn label_values(metrics: &str, label: &str) -> std::collections::BTreeSet<String> {
    let key = format!("{label}=\"");
    metrics
        .lines()
        .filter_map(|line| line.split_once(&key).and_then(|(_, rest)| rest.split_once('"')))
        .map(|(value, _)| value.to_string())
        .collect()
}

#[tokio::test]
async fn made_up_methods_and_paths_add_no_series_to_metrics() {
    let app = TestApp::spawn().await;
    let flow = app.flow(&app.admin, "metered").await;
    let marker = uuid::Uuid::new_v4().simple().to_string().to_uppercase();
    let targets = |n: usize| {
        [
            format!("/{marker}/{n}"),
            format!("/flows/{flow}"),
            format!("/webhooks/{flow}"),
            format!("/api/{marker}-{n}/x?y={n}"),
        ]
    };
    // One request of each kind first, so that every series these calls can touch exists.
    for path in targets(0) {
        send(&app, &format!("WARM{marker}"), &path).await;
    }
    let other = |text: &str| text.lines().filter(|l| l.contains("method=\"other\"")).count();
    let before = app.metrics().await;
    for n in 0..300 {
        for path in targets(n) {
            let status = send(&app, &format!("M{n}{marker}"), &path).await;
            assert!(status.is_client_error(), "{path}: {status}");
        }
    }
    let after = app.metrics().await;
    eprintln!(
        "/metrics: {} lines before the made-up calls, {} after",
        before.lines().count(),
        after.lines().count()
    );
    assert!(!after.contains(&marker), "no label holds what the client sent");
    assert_eq!(other(&after), other(&before), "1,200 made-up calls added no series");
    let standard = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "TRACE", "CONNECT", "other"];
    for method in label_values(&after, "method") {
        assert!(standard.contains(&method.as_str()), "method label {method}");
    }
    for route in label_values(&after, "route") {
        assert!(route == "unmatched" || route.starts_with('/'), "route label {route}");
        assert!(!route.contains(&flow), "route label {route} is a template, not a path");
    }
}

// Finding 12 -----------------------------------------------------------------------------

const FORGED_LINE: &str = "2026-05-01T12:00:00.000000Z ERROR flowmate: forged admin login";

/// What the server logs, in `format`, while a flow with a `log` node whose message holds a
/// forged line runs (synchronously: inline, on this test's thread, where the capture is).
async fn log_of_a_forging_flow(format: LogFormat) -> String {
    let app = TestApp::spawn().await;
    let message = format!("order received\n{FORGED_LINE}\r\n\u{1b}[2K{FORGED_LINE}");
    let flow = json!({
        "name": "forger",
        "graph": {
            "nodes": [
                {"id": "in", "componentId": "webhook", "function": "receive"},
                {"id": "say", "componentId": "log", "function": "info", "fields": {"message": message, "level": "error"}}
            ],
            "edges": [{"source": "in", "target": "say"}]
        }
    });
    let flow = app.active_flow(&app.admin, flow).await;
    // `Arc<File>` writes through `&File`: every event goes to one temporary file.
    let log = tempfile::NamedTempFile::new().expect("a log file");
    let writer = Arc::new(log.reopen().expect("the log file"));
    let subscriber = flowmate::telemetry::subscriber("info", format, writer, false).expect("subscriber");
    let reply = {
        let _capture = tracing::subscriber::set_default(subscriber);
        app.hook(&format!("/webhooks/{flow}?sync=true"), &[], &json!({})).await
    };
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    let out = std::fs::read_to_string(log.path()).expect("the log");
    assert!(out.contains("log node"), "the log node wrote: {out}");
    for line in out.lines() {
        assert!(!line.starts_with(FORGED_LINE), "a forged line at column 0: {out}");
        assert!(!line.contains(['\r', '\u{1b}']), "a control character in {line:?}");
    }
    out
}

#[tokio::test]
async fn a_log_node_cannot_forge_a_text_log_line() {
    let out = log_of_a_forging_flow(LogFormat::Text).await;
    let line = out.lines().find(|l| l.contains("log node")).expect("the log node's line");
    let escaped = format!(r#"text="order received\n{FORGED_LINE}\r\n\u{{1b}}[2K{FORGED_LINE}""#);
    assert!(line.contains(&escaped), "{line}");
}

#[tokio::test]
async fn a_log_node_cannot_forge_a_json_log_line() {
    let out = log_of_a_forging_flow(LogFormat::Json).await;
    let line = out.lines().find(|l| l.contains("log node")).expect("the log node's line");
    let event: Value = serde_json::from_str(line).expect("one JSON object");
    let text = event["text"].as_str().expect("text field");
    assert!(text.starts_with("order received\n") && text.ends_with(FORGED_LINE), "{text:?}");
    assert_eq!(event["level"], "ERROR");
}

// Finding 13 -----------------------------------------------------------------------------

#[tokio::test]
async fn the_ssrf_guard_refuses_every_form_of_a_loopback_address() {
    let app = TestApp::spawn().await;
    for url in [
        "http://127.0.0.1:9/",
        "http://[::1]:9/",
        "http://[::ffff:127.0.0.1]:9/",
        "http://[::127.0.0.1]:9/",
        "http://[::ffff:0:127.0.0.1]:9/",
        "http://[64:ff9b::127.0.0.1]:9/",
        "http://[64:ff9b:1::7f00:1]:9/",
        "http://[2002:7f00:1::1]:9/",
        "http://[::ffff:169.254.169.254]/latest/meta-data/",
        "http://[64:ff9b::a9fe:a9fe]/latest/meta-data/",
    ] {
        let flow = json!({
            "name": "fetcher",
            "graph": {
                "nodes": [
                    {"id": "in", "componentId": "webhook", "function": "receive"},
                    {"id": "get", "componentId": "http", "function": "request", "fields": {"url": url}}
                ],
                "edges": [{"source": "in", "target": "get"}]
            }
        });
        let flow = app.active_flow(&app.admin, flow).await;
        let reply = app.hook(&format!("/webhooks/{flow}?sync=true"), &[], &json!({})).await;
        assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR, "{url}: {:?}", reply.body);
        let messages = reply.messages().join(" ");
        assert!(messages.contains("private"), "{url} refused by the guard: {messages}");
    }
}
