//! End-to-end: the real `flowmate` binary on a free port, driven over HTTP: log in, create a
//! flow, start it, poll until `active`, stop it, poll until `inactive`, delete it; then SIGTERM
//! stops it cleanly.

use serde_json::{Value, json};
use std::time::{Duration, Instant};

mod common;

use common::{PASSWORD, start_binary};

async fn poll_status(client: &reqwest::Client, url: &str, token: &str, wanted: &str) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let body: Value =
            client.get(url).bearer_auth(token).send().await.expect("get flow").json().await.expect("json");
        if body["data"]["status"] == wanted {
            return;
        }
        assert!(Instant::now() < deadline, "flow never became {wanted}: {body}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn the_binary_runs_a_flow_lifecycle_end_to_end() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (mut child, base) = start_binary(dir.path(), &[]).await;
    let client = reqwest::Client::new();

    let health = client.get(format!("{base}/healthcheck")).send().await.expect("health");
    assert_eq!(health.status(), 200);

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

    let created = client
        .post(format!("{base}/flows"))
        .bearer_auth(&token)
        .json(&json!({
            "name": "e2e",
            "graph": {
                "nodes": [
                    {"id": "in", "componentId": "webhook", "function": "receive"},
                    {"id": "add", "componentId": "jq", "function": "transform", "fields": {"program": ".data"}}
                ],
                "edges": [{"source": "in", "target": "add"}]
            }
        }))
        .send()
        .await
        .expect("create");
    assert_eq!(created.status(), 201);
    let created: Value = created.json().await.expect("json");
    let id = created["data"]["id"].as_str().expect("flow id").to_string();
    let flow_url = format!("{base}/flows/{id}");

    let started = client.post(format!("{flow_url}/start")).bearer_auth(&token).send().await.expect("start");
    assert_eq!(started.status(), 200);
    poll_status(&client, &flow_url, &token, "active").await;

    let stopped = client.post(format!("{flow_url}/stop")).bearer_auth(&token).send().await.expect("stop");
    assert_eq!(stopped.status(), 200);
    poll_status(&client, &flow_url, &token, "inactive").await;

    let deleted = client.delete(&flow_url).bearer_auth(&token).send().await.expect("delete");
    assert_eq!(deleted.status(), 200);
    let gone = client.get(&flow_url).bearer_auth(&token).send().await.expect("get");
    assert_eq!(gone.status(), 404);

    // SIGTERM: graceful shutdown, exit code 0.
    let pid = child.id().expect("pid").to_string();
    let killed = std::process::Command::new("kill").args(["-TERM", &pid]).status().expect("kill");
    assert!(killed.success());
    let status =
        tokio::time::timeout(Duration::from_secs(30), child.wait()).await.expect("exits").expect("status");
    assert!(status.success(), "graceful shutdown exits 0, got {status}");
    assert!(
        dir.path().join("flowmate.db").exists(),
        "the embedded default stores flowmate.db in the working directory"
    );
}

#[test]
fn help_documents_every_variable() {
    let out =
        std::process::Command::new(env!("CARGO_BIN_EXE_flowmate")).arg("--help").output().expect("help");
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for var in [
        "FLOWMATE_LISTEN",
        "FLOWMATE_DATABASE_URL",
        "FLOWMATE_KAFKA_BROKERS",
        "FLOWMATE_KAFKA_REPLICATION",
        "FLOWMATE_KAFKA_PROPERTIES",
        "FLOWMATE_FLOW_CACHE_TTL_MS",
        "FLOWMATE_TOKEN_CACHE_TTL_MS",
        "FLOWMATE_MAX_QUEUED_EXECUTIONS",
        "FLOWMATE_EXECUTION_RETENTION",
        "FLOWMATE_ROLE",
        "FLOWMATE_ADMIN_USERNAME",
        "FLOWMATE_ADMIN_PASSWORD",
        "FLOWMATE_ALLOW_PRIVATE_NETWORKS",
        "FLOWMATE_LOG",
    ] {
        assert!(help.contains(&format!("[env: {var}")), "--help does not document {var}");
    }
}

#[test]
fn user_create_command_adds_a_user_who_can_log_in() {
    let dir = tempfile::tempdir().expect("temp dir");
    let run = |args: &[&str], password: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_flowmate"))
            .current_dir(dir.path())
            .env_clear()
            .env("FLOWMATE_NEW_USER_PASSWORD", password)
            .env("FLOWMATE_ARGON2_MEMORY_KIB", "64")
            .args(args)
            .output()
            .expect("flowmate runs")
    };
    let created = run(
        &["user", "create", "--username", "ops@example.com", "--permissions", "flows.read"],
        "ops-password-1",
    );
    assert!(created.status.success(), "{}", String::from_utf8_lossy(&created.stderr));
    let id = String::from_utf8_lossy(&created.stdout).trim().to_string();
    assert_eq!(id.len(), 36, "prints the new user's id: {id}");
    let duplicate = run(&["user", "create", "--username", "OPS@example.com"], "ops-password-1");
    assert!(!duplicate.status.success(), "usernames are unique case-insensitively");
    let short = run(&["user", "create", "--username", "x@example.com"], "short");
    assert!(!short.status.success());
}
