//! Hostile cases: recovery ("no crash loop, ever"). An execution that kills the process running
//! it is simulated by SIGKILLing the real binary while the execution runs (a `delay` step), then
//! starting it again on the same database with the same `FLOWMATE_WORKER_ID`: the interrupted
//! execution resumes within 5 s of the restart, every run is counted (`attempts`), and once
//! `FLOWMATE_EXECUTION_MAX_ATTEMPTS` runs died it ends `failed` with the reason and nothing runs
//! it again. On SQLite (default) or PostgreSQL with `FLOWMATE_TEST_STORAGE=postgres`.

use flowmate_tests::PostgresDatabase;
use flowmate_tests::real_binary::{PASSWORD, RealBinary};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// How soon after a restart the interrupted execution must run again.
const RESUME_WITHIN: Duration = Duration::from_secs(5);

/// One deployment (database and settings) started again and again.
struct Deployment {
    dir: tempfile::TempDir,
    envs: Vec<(String, String)>,
    _database: Option<PostgresDatabase>,
}

impl Deployment {
    fn new(max_attempts: u32) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let worker = format!("hostile-recovery-{}", uuid::Uuid::new_v4().simple());
        let mut envs = vec![
            ("FLOWMATE_WORKER_ID".to_string(), worker),
            ("FLOWMATE_EXECUTION_MAX_ATTEMPTS".to_string(), max_attempts.to_string()),
        ];
        let database = (std::env::var("FLOWMATE_TEST_STORAGE").as_deref() == Ok("postgres"))
            .then(PostgresDatabase::create);
        if let Some(database) = &database {
            envs.push(("FLOWMATE_DATABASE_URL".to_string(), database.url().to_string()));
        }
        Self { dir, envs, _database: database }
    }

    async fn start(&self) -> RealBinary {
        let envs: Vec<(&str, &str)> = self.envs.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        RealBinary::start(self.dir.path(), &envs).await
    }
}

/// An HTTP client logged in as the first admin of `binary`.
struct Client {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl Client {
    async fn login(binary: &RealBinary) -> Self {
        let http = reqwest::Client::new();
        let login: Value = http
            .post(format!("{}/login", binary.base))
            .json(&json!({ "username": "admin", "password": PASSWORD }))
            .send()
            .await
            .expect("login")
            .json()
            .await
            .expect("login json");
        let token = login["token"].as_str().expect("token").to_string();
        Self { http, base: binary.base.clone(), token }
    }

    async fn json(&self, request: reqwest::RequestBuilder) -> (u16, Value) {
        let response = request.bearer_auth(&self.token).send().await.expect("request");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// An active flow of `nodes` in a chain.
    async fn active_flow(&self, nodes: Value) -> String {
        let ids: Vec<&str> =
            nodes.as_array().expect("nodes").iter().map(|n| n["id"].as_str().expect("id")).collect();
        let edges: Vec<Value> = ids.windows(2).map(|w| json!({ "source": w[0], "target": w[1] })).collect();
        let body = json!({ "name": "hostile recovery", "graph": { "nodes": nodes, "edges": edges } });
        let (status, created) = self.json(self.http.post(format!("{}/flows", self.base)).json(&body)).await;
        assert_eq!(status, 201, "{created}");
        let id = created["data"]["id"].as_str().expect("flow id").to_string();
        let (status, _) = self.json(self.http.post(format!("{}/flows/{id}/start", self.base))).await;
        assert_eq!(status, 200);
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let (_, flow) = self.json(self.http.get(format!("{}/flows/{id}", self.base))).await;
            if flow["data"]["status"] == "active" {
                return id;
            }
            assert!(Instant::now() < deadline, "the flow never became active: {flow}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Calls the flow's webhook (asynchronously): the execution's id.
    async fn call(&self, flow: &str) -> String {
        let (status, accepted) = self
            .json(self.http.post(format!("{}/webhooks/{flow}", self.base)).json(&json!({ "n": 1 })))
            .await;
        assert_eq!(status, 200, "{accepted}");
        accepted["data"]["executionId"].as_str().expect("execution id").to_string()
    }

    async fn execution(&self, id: &str) -> Value {
        let (status, execution) = self.json(self.http.get(format!("{}/executions/{id}", self.base))).await;
        assert_eq!(status, 200, "{execution}");
        execution["data"].clone()
    }

    /// Polls the execution `id` until `wanted` holds (at most `within`); returns it and how
    /// long that took.
    async fn until(&self, id: &str, within: Duration, wanted: impl Fn(&Value) -> bool) -> (Value, Duration) {
        let started = Instant::now();
        loop {
            let execution = self.execution(id).await;
            if wanted(&execution) {
                return (execution, started.elapsed());
            }
            assert!(started.elapsed() < within, "not reached within {within:?}: {execution}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// Whether `execution` is in its run number `attempt`, waiting in its `delay` step.
fn waiting_in_run(execution: &Value, attempt: u64) -> bool {
    execution["status"] == "running"
        && execution["attempts"] == attempt
        && execution["steps"]["wait"]["status"] == "running"
}

fn delay_flow(ms: u64) -> Value {
    json!([
        { "id": "in", "componentId": "webhook", "function": "receive" },
        { "id": "wait", "componentId": "delay", "function": "wait", "fields": { "ms": ms } },
        { "id": "done", "componentId": "log", "function": "info" }
    ])
}

#[tokio::test]
async fn a_process_killed_during_an_execution_resumes_it_within_5_s_of_its_restart() {
    let deployment = Deployment::new(3);
    let binary = deployment.start().await;
    let client = Client::login(&binary).await;
    let flow = client.active_flow(delay_flow(1_500)).await;
    let id = client.call(&flow).await;
    client.until(&id, Duration::from_secs(10), |e| waiting_in_run(e, 1)).await;

    binary.kill().await;
    let restart = Instant::now();
    let binary = deployment.start().await;
    let listening = restart.elapsed();
    let client = Client::login(&binary).await;
    let (_, resumed) = client.until(&id, RESUME_WITHIN, |e| e["attempts"] == 2).await;
    let (done, ended) =
        client.until(&id, RESUME_WITHIN + Duration::from_secs(10), |e| e["status"] == "succeeded").await;
    let (resumed, ended) = (listening + resumed, listening + resumed + ended);
    eprintln!("restart to listening {listening:?}, to resumed {resumed:?}, to ended {ended:?}");

    assert!(resumed <= RESUME_WITHIN, "resumed {resumed:?} after the restart");
    assert_eq!(done["attempts"], 2, "the killed run and the one that ended: {done}");
    assert_eq!(done["steps"]["done"]["in"], 1, "run again from the trigger to the end: {done}");
    binary.kill().await;
}

#[tokio::test]
async fn an_execution_whose_process_dies_at_every_run_ends_failed_after_the_attempt_limit() {
    let deployment = Deployment::new(3);
    let mut binary = deployment.start().await;
    let client = Client::login(&binary).await;
    let flow = client.active_flow(delay_flow(600_000)).await;
    let id = client.call(&flow).await;

    for run in 1..=3u64 {
        let client = Client::login(&binary).await;
        let within = if run == 1 { Duration::from_secs(10) } else { RESUME_WITHIN };
        let (_, took) = client.until(&id, within, |e| waiting_in_run(e, run)).await;
        eprintln!("run {run} running {took:?} after its process listened");
        // The run "crashes the process".
        binary.kill().await;
        binary = deployment.start().await;
    }

    let client = Client::login(&binary).await;
    let (failed, took) = client.until(&id, RESUME_WITHIN, |e| e["status"] == "failed").await;
    eprintln!("failed {took:?} after the last restart listened");
    assert_eq!(failed["attempts"], 3, "{failed}");
    assert_eq!(
        failed["error"],
        "The process running this execution died 3 times (attempt limit FLOWMATE_EXECUTION_MAX_ATTEMPTS reached).",
        "{failed}"
    );
    assert!(failed["finishedAt"].is_string(), "{failed}");

    // Nothing runs it again: after one more restart, once a new execution has run through the
    // same engine, the failed one is as it was.
    binary.kill().await;
    let binary = deployment.start().await;
    let client = Client::login(&binary).await;
    let quick = client
        .active_flow(json!([
            { "id": "in", "componentId": "webhook", "function": "receive" },
            { "id": "done", "componentId": "log", "function": "info" }
        ]))
        .await;
    let probe = client.call(&quick).await;
    client.until(&probe, Duration::from_secs(10), |e| e["status"] == "succeeded").await;
    let after = client.execution(&id).await;
    assert_eq!((&after["status"], &after["attempts"]), (&json!("failed"), &json!(3)), "{after}");
    binary.kill().await;
}
