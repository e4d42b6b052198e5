//! Scale-out on the production backends: one `api` and two `worker` processes of the real
//! binary on a fresh PostgreSQL database and the Kafka-protocol broker started by the test
//! command. Webhooks to many flows are shared by both workers, no execution runs to its end
//! twice, and after one worker is killed with SIGKILL the other finishes everything, including
//! the killed worker's in-flight executions. Cron fires once per due time with two workers.

mod common;

use common::{Logs, PASSWORD, start_logged};
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};
use tokio::process::Child;

/// The server the test command points at (a fresh database is created on it per test).
fn postgres_url() -> String {
    std::env::var("FLOWMATE_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

fn kafka_bootstrap() -> String {
    std::env::var("KAFKA_BOOTSTRAP").unwrap_or_else(|_| "127.0.0.1:9092".into())
}

/// A fresh database on the test server, dropped when the guard goes.
struct Database {
    name: String,
    url: String,
}

impl Database {
    fn create() -> Self {
        let name = format!("flowmate_e2e_{}", uuid::Uuid::new_v4().simple());
        let admin = postgres_url();
        psql(&admin, &format!("CREATE DATABASE {name}"));
        let base = admin.rsplit_once('/').map_or(admin.as_str(), |(base, _)| base).to_string();
        Self { url: format!("{base}/{name}"), name }
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        let _ = std::process::Command::new("psql")
            .arg(postgres_url())
            .args(["-q", "-c", &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name)])
            .status();
    }
}

fn psql(url: &str, sql: &str) {
    let status =
        std::process::Command::new("psql").arg(url).args(["-q", "-v", "ON_ERROR_STOP=1", "-c", sql]).status();
    assert!(status.is_ok_and(|s| s.success()), "psql {sql:?} failed");
}

fn ended(logs: &Logs) -> Vec<(String, String)> {
    let logs = logs.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    logs.iter()
        .filter(|e| e["message"] == "execution ended")
        .map(|e| {
            (
                e["execution_id"].as_str().unwrap_or_default().to_string(),
                e["status"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

async fn login(client: &reqwest::Client, base: &str) -> String {
    let login: Value = client
        .post(format!("{base}/login"))
        .json(&json!({"username": "admin", "password": PASSWORD}))
        .send()
        .await
        .expect("login")
        .json()
        .await
        .expect("json");
    login["token"].as_str().expect("token").to_string()
}

async fn get(client: &reqwest::Client, url: &str, token: &str) -> Value {
    client.get(url).bearer_auth(token).send().await.expect("get").json().await.expect("json")
}

/// Creates and starts `body` as a flow; returns its id once active.
async fn active_flow(client: &reqwest::Client, base: &str, token: &str, body: Value) -> String {
    let created: Value = client
        .post(format!("{base}/flows"))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .expect("create")
        .json()
        .await
        .expect("json");
    let id = created["data"]["id"].as_str().unwrap_or_else(|| panic!("no flow id: {created}")).to_string();
    let started =
        client.post(format!("{base}/flows/{id}/start")).bearer_auth(token).send().await.expect("start");
    assert_eq!(started.status(), 200);
    let deadline = Instant::now() + Duration::from_secs(30);
    while get(client, &format!("{base}/flows/{id}"), token).await["data"]["status"] != "active" {
        assert!(Instant::now() < deadline, "flow {id} never became active");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    id
}

struct Cluster {
    _dir: tempfile::TempDir,
    _db: Database,
    base: String,
    api: Child,
    /// Each worker with its logs and its base URL (`/healthcheck`).
    workers: Vec<(Child, Logs, String)>,
}

async fn cluster(workers: usize) -> Cluster {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = Database::create();
    let prefix = format!("e2e{}", uuid::Uuid::new_v4().simple());
    let bootstrap = kafka_bootstrap();
    let env = |role: &'static str| {
        vec![
            ("FLOWMATE_DATABASE_URL", db.url.clone()),
            ("FLOWMATE_KAFKA_BROKERS", bootstrap.clone()),
            ("FLOWMATE_KAFKA_TOPIC_PREFIX", prefix.clone()),
            ("FLOWMATE_KAFKA_PARTITIONS", "4".to_string()),
            ("FLOWMATE_EXECUTION_LEASE_SECS", "2".to_string()),
            ("FLOWMATE_SCHEDULER_TICK_MS", "100".to_string()),
            ("FLOWMATE_ROLE", role.to_string()),
        ]
    };
    let as_refs =
        |v: &Vec<(&'static str, String)>| v.iter().map(|(k, v)| (*k, v.clone())).collect::<Vec<_>>();
    let api_env = as_refs(&env("api"));
    let api_env: Vec<(&str, &str)> = api_env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (api, base, _api_logs) = start_logged(dir.path(), &api_env).await;
    let mut started = Vec::new();
    for _ in 0..workers {
        let worker_env = as_refs(&env("worker"));
        let worker_env: Vec<(&str, &str)> = worker_env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let (child, base, logs) = start_logged(dir.path(), &worker_env).await;
        started.push((child, logs, base));
    }
    Cluster { _dir: dir, _db: db, base, api, workers: started }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_workers_share_executions_and_survive_a_killed_worker() {
    let mut cluster = cluster(2).await;
    let client = reqwest::Client::new();
    let base = cluster.base.clone();
    let token = login(&client, &base).await;
    let mut flows = Vec::new();
    for n in 0..8 {
        let body = json!({
            "name": format!("scale {n}"),
            "graph": {
                "nodes": [
                    {"id": "in", "componentId": "webhook", "function": "receive"},
                    {"id": "wait", "componentId": "delay", "function": "wait", "fields": {"ms": 150}},
                    {"id": "shape", "componentId": "jq", "function": "transform", "fields": {"program": "{n: .data.n}"}}
                ],
                "edges": [{"source": "in", "target": "wait"}, {"source": "wait", "target": "shape"}]
            }
        });
        flows.push(active_flow(&client, &base, &token, body).await);
    }
    const CALLS: usize = 80;
    let mut executions = HashSet::new();
    for n in 0..CALLS {
        let flow = &flows[n % flows.len()];
        let reply = client
            .post(format!("{base}/webhooks/{flow}"))
            .json(&json!({"n": n}))
            .send()
            .await
            .expect("webhook");
        assert_eq!(reply.status(), 200);
        let body: Value = reply.json().await.expect("json");
        executions.insert(body["data"]["executionId"].as_str().expect("execution id").to_string());
    }
    // Both workers end some executions; then worker 0 is killed while work is in flight.
    let deadline = Instant::now() + Duration::from_secs(60);
    while cluster.workers.iter().any(|(_, logs, _)| ended(logs).len() < 3) {
        assert!(Instant::now() < deadline, "a worker never ran anything");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (killed, killed_logs, _) = &mut cluster.workers[0];
    killed.start_kill().expect("SIGKILL");
    killed.wait().await.expect("killed");
    let ended_by_killed = ended(killed_logs);
    // The survivor's executor member takes over every partition of `flow.execute` (4) once the
    // broker expires the killed member (session timeout 6 s, then one rebalance).
    let survivor = cluster.workers[1].2.clone();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let health: Value = client
            .get(format!("{survivor}/healthcheck"))
            .send()
            .await
            .expect("health")
            .json()
            .await
            .expect("json");
        let groups = health["details"]["eventBus"]["groups"].as_array().cloned().unwrap_or_default();
        let executor =
            groups.iter().find(|g| g["group"].as_str().is_some_and(|n| n.ends_with(".flow-executor")));
        if executor.is_some_and(|g| g["settled"] == true && g["assignedPartitions"] == 4) {
            break;
        }
        assert!(Instant::now() < deadline, "the survivor never took every partition: {health}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Everything accepted succeeds, the killed worker's in-flight executions included.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let done =
            get(&client, &format!("{base}/executions?filter[status]=succeeded&page[size]=1"), &token).await;
        if done["meta"]["total"].as_u64() == Some(CALLS as u64) {
            break;
        }
        assert!(Instant::now() < deadline, "not everything finished: {}", done["meta"]);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let ended_by_survivor = ended(&cluster.workers[1].1);
    assert!(!ended_by_killed.is_empty() && !ended_by_survivor.is_empty());
    let mut runs: HashMap<String, usize> = HashMap::new();
    for (id, status) in ended_by_killed.iter().chain(&ended_by_survivor) {
        if status == "succeeded" {
            *runs.entry(id.clone()).or_default() += 1;
        }
    }
    // Every execution succeeded (checked in the database above); the log lines of the ends
    // name only executions that were accepted, each at most once.
    assert!(runs.keys().all(|id| executions.contains(id)), "a worker ended an unknown execution");
    assert!(runs.values().all(|n| *n == 1), "an execution ran to its end twice: {runs:?}");
    let _ = cluster.api.start_kill();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cron_fires_once_per_due_time_with_two_workers() {
    let cluster = cluster(2).await;
    let client = reqwest::Client::new();
    let base = cluster.base.clone();
    let token = login(&client, &base).await;
    let flow = active_flow(
        &client,
        &base,
        &token,
        json!({"name": "every second", "cron": "* * * * * *",
               "graph": {"nodes": [{"id": "tick", "componentId": "scheduler", "function": "schedule"}]}}),
    )
    .await;
    let url = format!("{base}/executions?filter[flowId]={flow}&page[size]=100");
    let deadline = Instant::now() + Duration::from_secs(30);
    let listed = loop {
        let listed = get(&client, &url, &token).await;
        if listed["meta"]["total"].as_u64().unwrap_or(0) >= 4 {
            break listed;
        }
        assert!(Instant::now() < deadline, "cron did not fire: {listed}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let due_times: Vec<&str> = listed["data"]
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|e| e["trigger"]["requestId"].as_str())
        .collect();
    let distinct: HashSet<&str> = due_times.iter().copied().collect();
    assert_eq!(distinct.len(), due_times.len(), "a due time fired twice: {due_times:?}");
}
