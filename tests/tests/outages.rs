//! Outages of the database (PostgreSQL behind a TCP proxy the test can cut): requests that need
//! it answer 503 quickly, `/healthcheck` answers 503, nothing is accepted while it is down, and
//! everything recovers by itself once it is back.

use axum::http::StatusCode;
use flowmate_tests::TestApp;
use flowmate_tests::proxy::Proxy;
use serde_json::json;
use std::time::{Duration, Instant};

fn host_port(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let rest = rest.split_once('@').map_or(rest, |(_, rest)| rest);
    rest.split_once('/').map_or(rest, |(hp, _)| hp).to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_outage_answers_503_fast_and_recovers_by_itself() {
    let server = std::env::var("FLOWMATE_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let proxy = Proxy::start(host_port(&server)).await;
    let port = proxy.port;
    let (app, _) = TestApp::spawn_on_postgres(
        |url| url.replacen(&host_port(url), &format!("127.0.0.1:{port}"), 1),
        &["--database-acquire-timeout-ms", "1000"],
    )
    .await;
    let flow = app
        .active_flow(
            &app.admin,
            json!({"name": "echo", "graph": {"nodes": [{"id": "in", "componentId": "webhook", "function": "receive"}]}}),
        )
        .await;
    assert_eq!(app.get("/healthcheck", &app.admin).await.status, StatusCode::OK);

    proxy.cut().await;
    let started = Instant::now();
    let flows = app.get("/flows", &app.admin).await;
    assert_eq!(flows.status, StatusCode::SERVICE_UNAVAILABLE, "{:?}", flows.body);
    assert!(!flows.body.to_string().to_lowercase().contains("sql"), "{:?}", flows.body);
    let health = app.get("/healthcheck", &app.admin).await;
    assert_eq!(health.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(health.body["details"]["database"]["status"], "fail");
    let hook = app.hook(&format!("/webhooks/{flow}"), &[], &json!({"lost": false})).await;
    assert_eq!(hook.status, StatusCode::SERVICE_UNAVAILABLE, "nothing is accepted without the database");
    assert!(started.elapsed() < Duration::from_secs(10), "503s took {:?}", started.elapsed());

    proxy.restore();
    let deadline = Instant::now() + Duration::from_secs(30);
    while app.get("/healthcheck", &app.admin).await.status != StatusCode::OK {
        assert!(Instant::now() < deadline, "the database never came back");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let reply = app.hook(&format!("/webhooks/{flow}"), &[], &json!({"after": true})).await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    let execution = reply.body["data"]["executionId"].as_str().expect("id").to_string();
    assert_eq!(app.wait_for_execution(&app.admin, &execution).await["status"], "succeeded");
    app.shutdown().await;
}

/// Requests abandoned at any point (a client that disconnects drops its request) run to their
/// end anyway, so they never leave a pooled PostgreSQL connection inside a transaction or lose
/// it from the pool: with two connections, every request after 1,280 abandoned ones (64 at a
/// time) succeeds. The abandoned requests are still being worked off when the first of those
/// arrives, so it may wait for a connection longer than the default acquire timeout (3 s) on a
/// slow machine: the timeout is raised, so that only a leaked or broken connection fails here.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abandoned_requests_never_poison_the_database_pool() {
    let (app, _) = TestApp::spawn_on_postgres(
        |url| url.to_string(),
        &["--database-max-connections", "2", "--database-acquire-timeout-ms", "60000"],
    )
    .await;
    for round in 0..20_u64 {
        let calls = (0..64_u64).map(|n| {
            let wait = Duration::from_micros(50 * ((round * 64 + n) % 60));
            let body = flowmate_tests::flow_body(&format!("abandoned {round}-{n}"));
            tokio::time::timeout(wait, app.post("/flows", &app.admin, body))
        });
        let _ = futures::future::join_all(calls).await;
    }
    for n in 0..20 {
        let created = app.post("/flows", &app.admin, flowmate_tests::flow_body(&format!("kept {n}"))).await;
        assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
        let id = created.body["data"]["id"].as_str().expect("id").to_string();
        assert_eq!(app.get(&format!("/flows/{id}"), &app.admin).await.status, StatusCode::OK);
    }
    app.shutdown().await;
}
