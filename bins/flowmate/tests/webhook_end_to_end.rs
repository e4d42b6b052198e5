//! End-to-end on the real binary: a three-node flow (webhook -> jq -> http) started over the
//! API, its webhook called with a JSON body, the transformed body delivered to a local HTTP
//! receiver, and the execution read back `succeeded` with every step.

mod common;

use common::{PASSWORD, start_binary};
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use wiremock::matchers::{body_json, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

async fn get_json(client: &reqwest::Client, url: &str, token: &str) -> Value {
    client.get(url).bearer_auth(token).send().await.expect("get").json().await.expect("json")
}

/// Polls `url` until `field` of its `data` is one of `wanted` (deadline 20 s).
async fn poll(client: &reqwest::Client, url: &str, token: &str, wanted: &[&str]) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let body = get_json(client, url, token).await;
        if wanted.iter().any(|w| body["data"]["status"] == *w) {
            return body["data"].clone();
        }
        assert!(Instant::now() < deadline, "{url} never reached {wanted:?}: {body}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_webhook_runs_jq_and_http_to_a_local_receiver() {
    let receiver = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/orders"))
        .and(body_json(json!({"order": 7, "total": 30})))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"accepted": true})))
        .expect(1)
        .mount(&receiver)
        .await;
    let dir = tempfile::tempdir().expect("temp dir");
    let (mut child, base) = start_binary(dir.path(), &[("FLOWMATE_ALLOW_PRIVATE_NETWORKS", "true")]).await;
    let client = reqwest::Client::new();
    let login: Value = client
        .post(format!("{base}/login"))
        .json(&json!({"username": "admin", "password": PASSWORD}))
        .send()
        .await
        .expect("login")
        .json()
        .await
        .expect("json");
    let token = login["token"].as_str().expect("token").to_string();

    let created: Value = client
        .post(format!("{base}/flows"))
        .bearer_auth(&token)
        .json(&json!({
            "name": "orders",
            "graph": {
                "nodes": [
                    {"id": "in", "componentId": "webhook", "function": "receive"},
                    {"id": "total", "componentId": "jq", "function": "transform",
                     "fields": {"program": "{order: .data.id, total: (.data.qty * .data.price)}"}},
                    {"id": "post", "componentId": "http", "function": "request",
                     "fields": {"method": "POST", "url": format!("{}/orders", receiver.uri())}}
                ],
                "edges": [{"source": "in", "target": "total"}, {"source": "total", "target": "post"}]
            }
        }))
        .send()
        .await
        .expect("create")
        .json()
        .await
        .expect("json");
    let flow = created["data"]["id"].as_str().expect("flow id").to_string();
    let started =
        client.post(format!("{base}/flows/{flow}/start")).bearer_auth(&token).send().await.expect("start");
    assert_eq!(started.status(), 200);
    poll(&client, &format!("{base}/flows/{flow}"), &token, &["active"]).await;

    let accepted = client
        .post(format!("{base}/webhooks/{flow}"))
        .json(&json!({"id": 7, "qty": 3, "price": 10}))
        .send()
        .await
        .expect("webhook");
    assert_eq!(accepted.status(), 200);
    let accepted: Value = accepted.json().await.expect("json");
    assert_eq!(accepted["data"]["message"], "thank you");
    let execution = accepted["data"]["executionId"].as_str().expect("execution id").to_string();

    let record = poll(
        &client,
        &format!("{base}/executions/{execution}"),
        &token,
        &["succeeded", "failed", "cancelled"],
    )
    .await;
    assert_eq!(record["status"], "succeeded", "{record}");
    for step in ["in", "total", "post"] {
        assert_eq!(record["steps"][step]["status"], "succeeded", "{step}: {record}");
        assert_eq!(record["steps"][step]["in"], 1, "{step}");
    }
    assert_eq!(record["steps"]["post"]["sampleOutput"][0]["data"], json!({"accepted": true}));
    receiver.verify().await;

    let pid = child.id().expect("pid");
    let _ = std::process::Command::new("kill").args(["-TERM", &pid.to_string()]).status();
    let status =
        tokio::time::timeout(Duration::from_secs(30), child.wait()).await.expect("exits").expect("status");
    assert!(status.success(), "{status:?}");
}
