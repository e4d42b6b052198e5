//! Flow rendering and components over mocked ports: the write-only webhook secret never
//! appears in an answer; the component catalogue and registration.

use super::{Ports, app, flow, get, post_json, send};
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use flow_domain::query::Page;
use serde_json::json;

fn secret_settings() -> serde_json::Value {
    json!({"webhooks": {"requireWebhookAuth": true, "secret": "s3cret", "hmacAuthSecret": "old", "hmacHeaderKey": "x-sig"}})
}

#[tokio::test]
async fn flows_are_answered_without_their_webhook_secret() {
    let mut ports = Ports::default();
    let stored = flow("inactive", secret_settings());
    let id = stored.id;
    let listed = stored.clone();
    ports.flows.expect_get().returning(move |_| Ok(Some(stored.clone())));
    ports.flows.expect_list().returning(move |_| Ok(Page { items: vec![listed.clone()], total: 1 }));
    ports.flows.expect_save().returning(|_, _, _| Ok(()));
    let app = app(ports);
    let one = send(app.clone(), get(&format!("/flows/{id}"))).await;
    let list = send(app.clone(), get("/flows")).await;
    let patch = Request::patch(format!("/flows/{id}"))
        .header(header::AUTHORIZATION, format!("Bearer {}", super::TOKEN))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(r#"{"description": "changed"}"#))
        .expect("req");
    let patched = send(app, patch).await;
    for (what, answer, settings) in [
        ("get", &one, &one.body["data"]["flowSettings"]),
        ("list", &list, &list.body["data"][0]["flowSettings"]),
        ("patch", &patched, &patched.body["data"]["flowSettings"]),
    ] {
        assert_eq!(answer.status, StatusCode::OK, "{what}: {:?}", answer.body);
        assert_eq!(
            settings["webhooks"],
            json!({"requireWebhookAuth": true, "hmacHeaderKey": "x-sig"}),
            "{what}"
        );
        let text = String::from_utf8_lossy(&answer.bytes);
        assert!(!text.contains("s3cret") && !text.contains("\"old\""), "{what}: {text}");
    }
}

#[tokio::test]
async fn components_are_listed_and_registered() {
    let listed = send(app(Ports::default()), get("/components")).await;
    assert_eq!(listed.status, StatusCode::OK);
    assert_eq!(listed.body, json!({"data": [], "meta": {}}));

    let mut ports = Ports::default();
    ports.components.expect_insert().returning(|_| Ok(()));
    let body = json!({"name": "crm", "url": "https://crm.example/run", "functions": [{"name": "sync", "description": "Sync"}]});
    let created = send(app(ports), post_json("/components", &body.to_string())).await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    assert_eq!(created.body["data"]["id"], "crm");
    assert_eq!(created.body["data"]["builtin"], false);

    let invalid = send(app(Ports::default()), post_json("/components", r#"{"name": "X"}"#)).await;
    assert_eq!(invalid.status, StatusCode::BAD_REQUEST);
}
