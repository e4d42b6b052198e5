//! External components through `ComponentRegistry::resolve`: the call body, the answer shapes,
//! retries, the private-network guard and tenant isolation.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use flow_domain::ids::TenantId;
use flow_domain::model::{ExternalComponent, ExternalFunction};
use flow_domain::ports::MockComponentRepository;
use flow_engine::components::{CallContext, Component, ComponentRegistry, HttpConfig};
use serde_json::{Map, Value, json};
use wiremock::matchers::{body_json, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn msg() -> Value {
    json!({ "id": "m1", "data": { "n": 1 }, "attachments": {}, "metadata": {}, "headers": {},
            "query": {}, "method": null, "url": null, "pathSuffix": null })
}

fn ctx(allow_private_networks: bool) -> CallContext {
    CallContext {
        flow_id: "f1".into(),
        step_id: "s1".into(),
        allow_private_networks,
        sandbox: common::sandbox(),
        ..CallContext::default()
    }
}

/// A registry whose repository holds `acme` (functions `run`) at `url`, owned by `owner`.
fn registry(url: String, owner: TenantId) -> ComponentRegistry {
    let mut repo = MockComponentRepository::new();
    repo.expect_get().returning(move |name| {
        Ok((name == "acme").then(|| ExternalComponent {
            name: "acme".into(),
            url: url.clone(),
            functions: vec![ExternalFunction { name: "run".into(), description: "Runs.".into() }],
            tenant: Some(owner),
            owners: Vec::new(),
            created_at: Utc::now(),
        }))
    });
    let config = HttpConfig { base_backoff: Duration::from_millis(5), ..HttpConfig::default() };
    ComponentRegistry::builtin(config).unwrap().with_sandbox(common::sandbox()).with_externals(Arc::new(repo))
}

async fn acme(server: &MockServer, tenant: TenantId) -> Arc<dyn Component> {
    registry(format!("{}/run", server.uri()), tenant).resolve("acme", Some(tenant)).await.unwrap().unwrap()
}

fn fields() -> Map<String, Value> {
    json!({ "greeting": "hi" }).as_object().cloned().unwrap()
}

#[tokio::test]
async fn call_body_is_function_fields_msg_and_the_array_answer_becomes_messages() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/run"))
        .and(body_json(json!({ "function": "run", "fields": { "greeting": "hi" }, "msg": msg() })))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([{ "data": "own" }, 7, "text"])))
        .expect(1)
        .mount(&server)
        .await;
    let tenant = TenantId::new();
    let out = acme(&server, tenant).await.call("run", &fields(), &msg(), &ctx(true)).await.unwrap();
    let mut seven = msg();
    seven["data"] = json!(7);
    let mut text = msg();
    text["data"] = json!("text");
    assert_eq!(out, vec![json!({ "data": "own" }), seven, text]);
}

#[tokio::test]
async fn messages_object_answer_and_invalid_answers() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/run"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({ "messages": [{ "data": 1 }] })))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/run"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({ "data": 1 })))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/run"))
        .respond_with(ResponseTemplate::new(200).set_body_string("not json"))
        .mount(&server)
        .await;
    let component = acme(&server, TenantId::new()).await;
    let out = component.call("run", &fields(), &msg(), &ctx(true)).await.unwrap();
    assert_eq!(out, vec![json!({ "data": 1 })]);
    let not_messages = component.call("run", &fields(), &msg(), &ctx(true)).await.unwrap_err();
    assert!(!not_messages.retryable, "{not_messages}");
    let not_json = component.call("run", &fields(), &msg(), &ctx(true)).await.unwrap_err();
    assert!(!not_json.retryable, "{not_json}");
    let unknown = component.call("nope", &fields(), &msg(), &ctx(true)).await.unwrap_err();
    assert!(!unknown.retryable && unknown.message.contains("nope"), "{unknown}");
    assert_eq!(server.received_requests().await.unwrap().len(), 3);
}

#[tokio::test]
async fn server_error_then_success_is_retried() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/run"))
        .respond_with(ResponseTemplate::new(500))
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/run"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([{ "data": "ok" }])))
        .expect(1)
        .mount(&server)
        .await;
    let out = acme(&server, TenantId::new()).await.call("run", &fields(), &msg(), &ctx(true)).await.unwrap();
    assert_eq!(out, vec![json!({ "data": "ok" })]);
}

#[tokio::test]
async fn private_address_is_refused_unless_allowed() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/run"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([])))
        .expect(1)
        .mount(&server)
        .await;
    let component = acme(&server, TenantId::new()).await;
    let refused = component.call("run", &fields(), &msg(), &ctx(false)).await.unwrap_err();
    assert!(!refused.retryable, "{refused}");
    assert!(refused.message.contains("private"), "{refused}");
    assert!(server.received_requests().await.unwrap().is_empty());
    let allowed = component.call("run", &fields(), &msg(), &ctx(true)).await.unwrap();
    assert!(allowed.is_empty());
}

#[tokio::test]
async fn only_the_registering_tenant_resolves_it_and_builtins_win() {
    let owner = TenantId::new();
    let registry = registry("https://example.com/run".into(), owner);
    assert!(registry.resolve("acme", Some(TenantId::new())).await.unwrap().is_none());
    assert!(registry.resolve("acme", None).await.unwrap().is_none());
    // The cached entry still answers per tenant.
    assert!(registry.resolve("acme", Some(owner)).await.unwrap().is_some());
    assert!(registry.resolve("acme", Some(TenantId::new())).await.unwrap().is_none());
    assert!(registry.resolve("nosuch", Some(owner)).await.unwrap().is_none());
    assert!(registry.resolve("http", Some(TenantId::new())).await.unwrap().is_some());
}

#[tokio::test]
async fn repository_is_read_once_per_name() {
    let mut repo = MockComponentRepository::new();
    repo.expect_get().times(1).returning(|_| {
        Ok(Some(ExternalComponent {
            name: "acme".into(),
            url: "https://example.com/run".into(),
            functions: Vec::new(),
            tenant: None,
            owners: Vec::new(),
            created_at: Utc::now(),
        }))
    });
    let registry = ComponentRegistry::builtin(HttpConfig::default())
        .unwrap()
        .with_sandbox(common::sandbox())
        .with_externals(Arc::new(repo));
    for _ in 0..3 {
        assert!(registry.resolve("acme", None).await.unwrap().is_some());
    }
}
