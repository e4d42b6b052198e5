//! Test harness for the cross-crate suites: the real application (SQLite file in a temp dir,
//! in-process bus, engine) built through `flowmate::wiring`, driven in-process with
//! `tower::ServiceExt::oneshot`, plus helpers to create tenants, users and flows.
//!
//! The same suites run on the production adapters when the test command sets
//! `FLOWMATE_TEST_STORAGE=postgres` (a fresh database per application on the server of
//! `FLOWMATE_TEST_POSTGRES_URL`) and `FLOWMATE_TEST_BUS=kafka` (topics with a fresh prefix on
//! the broker of `KAFKA_BOOTSTRAP`).

pub mod proxy;
pub mod real_binary;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use clap::Parser;
use flowmate::config::Cli;
use flowmate::wiring::{self, App};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use std::sync::Mutex;
use std::time::{Duration, Instant};
use tower::ServiceExt;

/// The first admin's password in every test application.
pub const ADMIN_PASSWORD: &str = "admin-password-for-tests";

/// The password of every user created by [`TestApp::user`].
pub const USER_PASSWORD: &str = "long-enough-password";

/// Every permission but `all` and `tenant.all`.
pub const NON_ADMIN_PERMISSIONS: [&str; 12] = [
    "flows.read",
    "flows.write",
    "flows.control",
    "flows.bulk",
    "templates.read",
    "templates.write",
    "executions.read",
    "webhooks.execute",
    "tenant.account.read",
    "tenant.account.create",
    "tenant.account.update",
    "iam.account.delete",
];

/// A response: status, headers, JSON body (`Value::Null` when empty or not JSON).
#[derive(Debug)]
pub struct Reply {
    /// Status code.
    pub status: StatusCode,
    /// Headers.
    pub headers: HeaderMap,
    /// Parsed body.
    pub body: Value,
}

impl Reply {
    /// The `errors[].message` strings of an error envelope.
    pub fn messages(&self) -> Vec<String> {
        self.body["errors"]
            .as_array()
            .map(|errs| errs.iter().filter_map(|e| e["message"].as_str().map(String::from)).collect())
            .unwrap_or_default()
    }
    /// The `errors[].field` paths of an error envelope.
    pub fn fields(&self) -> Vec<String> {
        self.body["errors"]
            .as_array()
            .map(|errs| errs.iter().filter_map(|e| e["field"].as_str().map(String::from)).collect())
            .unwrap_or_default()
    }
}

/// A running application with its own database.
pub struct TestApp {
    app: Option<App>,
    router: Router,
    _dir: tempfile::TempDir,
    _database: Option<PostgresDatabase>,
    transcript: Mutex<Vec<String>>,
    /// Bearer token of the first admin.
    pub admin: String,
}

impl TestApp {
    /// Starts a fresh application and logs the admin in.
    pub async fn spawn() -> Self {
        Self::spawn_with(&[]).await
    }

    /// Starts a fresh application with extra command-line settings.
    pub async fn spawn_with(extra: &[&str]) -> Self {
        let database = (std::env::var("FLOWMATE_TEST_STORAGE").as_deref() == Ok("postgres"))
            .then(PostgresDatabase::create);
        Self::spawn_on(database, None, extra).await
    }

    /// Starts an application (storage as [`TestApp::spawn_with`]) whose event bus is the Kafka
    /// broker at `bootstrap`, with topics of a fresh prefix.
    pub async fn spawn_on_kafka(bootstrap: &str, extra: &[&str]) -> Self {
        let prefix = format!("t{}", uuid::Uuid::new_v4().simple());
        let mut args = vec!["--kafka-brokers", bootstrap, "--kafka-topic-prefix", &prefix];
        args.extend_from_slice(&["--kafka-partitions", "2"]);
        args.extend_from_slice(extra);
        let database = (std::env::var("FLOWMATE_TEST_STORAGE").as_deref() == Ok("postgres"))
            .then(PostgresDatabase::create);
        Self::spawn_on(database, None, &args).await
    }

    /// The text of `GET /metrics`.
    pub async fn metrics(&self) -> String {
        let request = Request::builder().uri("/metrics").body(Body::empty()).expect("request");
        let (status, _, bytes) = self.send_raw(request).await;
        assert_eq!(status, StatusCode::OK);
        String::from_utf8_lossy(&bytes).into_owned()
    }

    /// Starts an application on a fresh PostgreSQL database whose address is rewritten by
    /// `route` (e.g. through a proxy that can cut the connection); returns it with the
    /// database's real URL.
    pub async fn spawn_on_postgres(route: impl FnOnce(&str) -> String, extra: &[&str]) -> (Self, String) {
        let database = PostgresDatabase::create();
        let url = database.url.clone();
        let routed = route(&url);
        (Self::spawn_on(Some(database), Some(routed), extra).await, url)
    }

    async fn spawn_on(database: Option<PostgresDatabase>, url: Option<String>, extra: &[&str]) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let db = match (&url, &database) {
            (Some(url), _) => url.clone(),
            (None, Some(database)) => database.url.clone(),
            (None, None) => format!("sqlite://{}", dir.path().join("flowmate.db").display()),
        };
        let mut args = vec![
            "flowmate",
            "--database-url",
            &db,
            "--admin-password",
            ADMIN_PASSWORD,
            "--argon2-memory-kib",
            "64",
            "--argon2-iterations",
            "1",
        ];
        let sandbox = sandbox_program();
        args.extend_from_slice(&["--sandbox-program", &sandbox]);
        let kafka = std::env::var("FLOWMATE_TEST_BUS").as_deref() == Ok("kafka")
            && !extra.contains(&"--kafka-brokers");
        let bootstrap = std::env::var("KAFKA_BOOTSTRAP").unwrap_or_else(|_| "127.0.0.1:9092".into());
        let prefix = format!("t{}", uuid::Uuid::new_v4().simple());
        if kafka {
            args.extend_from_slice(&["--kafka-brokers", &bootstrap, "--kafka-topic-prefix", &prefix]);
            args.extend_from_slice(&["--kafka-partitions", "2"]);
        }
        args.extend_from_slice(extra);
        let cli = Cli::parse_from(args);
        let app = wiring::start(&cli.config).await.expect("application starts");
        let router = app.router.clone();
        let mut test = Self {
            app: Some(app),
            router,
            _dir: dir,
            _database: database,
            transcript: Mutex::default(),
            admin: String::new(),
        };
        test.admin = test.login("admin", ADMIN_PASSWORD).await;
        test
    }

    /// Sends one request.
    pub async fn call(&self, method: Method, path: &str, token: Option<&str>, body: Option<Value>) -> Reply {
        let mut builder = Request::builder().method(method).uri(path);
        if let Some(token) = token {
            builder = builder.header("authorization", format!("Bearer {token}"));
        }
        let request = match body {
            Some(body) => builder
                .header("content-type", "application/json")
                .body(Body::from(body.to_string()))
                .expect("request"),
            None => builder.body(Body::empty()).expect("request"),
        };
        self.send(request).await
    }

    /// Sends a prepared request.
    pub async fn send(&self, request: Request<Body>) -> Reply {
        let (status, headers, bytes) = self.send_raw(request).await;
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Reply { status, headers, body }
    }

    /// Sends a prepared request; the body comes back as raw bytes. Every body is recorded for
    /// [`TestApp::assert_no_secrets`].
    pub async fn send_raw(&self, request: Request<Body>) -> (StatusCode, HeaderMap, Vec<u8>) {
        let response = self.router.clone().oneshot(request).await.expect("router answers");
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.into_body().collect().await.expect("body").to_bytes().to_vec();
        self.transcript
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(String::from_utf8_lossy(&bytes).into());
        (status, headers, bytes)
    }

    /// Sends a request with a raw body and extra headers (no `content-type` unless given).
    pub async fn call_raw(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        headers: &[(&str, &str)],
        body: impl Into<Body>,
    ) -> Reply {
        let mut builder = Request::builder().method(method).uri(path);
        if let Some(token) = token {
            builder = builder.header("authorization", format!("Bearer {token}"));
        }
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        self.send(builder.body(body.into()).expect("request")).await
    }

    /// Panics when any response body seen so far carries a password or a hash: a JSON key
    /// naming one (`password`, `passwordHash`, `hash`...), a PHC hash string, or one of the
    /// clear-text passwords of the harness (`extra` adds more).
    pub fn assert_no_secrets(&self, extra: &[&str]) {
        let transcript = self.transcript.lock().unwrap_or_else(|e| e.into_inner());
        assert!(!transcript.is_empty(), "no response recorded");
        for text in transcript.iter() {
            for secret in [ADMIN_PASSWORD, USER_PASSWORD, "$argon2"].iter().chain(extra) {
                assert!(!text.contains(secret), "a response contains {secret:?}: {text}");
            }
            if let Ok(value) = serde_json::from_str::<Value>(text)
                && let Some(key) = secret_key(&value)
            {
                panic!("a response has the key {key:?}: {text}");
            }
        }
    }

    /// `GET` with a token.
    pub async fn get(&self, path: &str, token: &str) -> Reply {
        self.call(Method::GET, path, Some(token), None).await
    }
    /// `POST` JSON with a token.
    pub async fn post(&self, path: &str, token: &str, body: Value) -> Reply {
        self.call(Method::POST, path, Some(token), Some(body)).await
    }
    /// `POST` without a body.
    pub async fn post_empty(&self, path: &str, token: &str) -> Reply {
        self.call(Method::POST, path, Some(token), None).await
    }
    /// `PATCH` JSON with a token.
    pub async fn patch(&self, path: &str, token: &str, body: Value) -> Reply {
        self.call(Method::PATCH, path, Some(token), Some(body)).await
    }
    /// `DELETE` with a token.
    pub async fn delete(&self, path: &str, token: &str) -> Reply {
        self.call(Method::DELETE, path, Some(token), None).await
    }

    /// Logs in and returns the token (panics unless 200).
    pub async fn login(&self, username: &str, password: &str) -> String {
        let reply = self
            .call(Method::POST, "/login", None, Some(json!({"username": username, "password": password})))
            .await;
        assert_eq!(reply.status, StatusCode::OK, "login of {username}: {:?}", reply.body);
        reply.body["token"].as_str().expect("token").to_string()
    }

    /// Creates a tenant as admin; returns its id.
    pub async fn tenant(&self, name: &str) -> String {
        let reply = self.post("/api/tenants", &self.admin, json!({"name": name})).await;
        assert_eq!(reply.status, StatusCode::CREATED, "{:?}", reply.body);
        reply.body["data"]["id"].as_str().expect("tenant id").to_string()
    }

    /// Creates a user of `tenant` with `permissions` as admin and logs it in: (id, token).
    pub async fn user(&self, tenant: Option<&str>, permissions: &[&str]) -> (String, String) {
        let username = format!("user-{}@example.com", uuid::Uuid::now_v7().simple());
        let body = json!({
            "username": username, "password": USER_PASSWORD,
            "tenant": tenant, "permissions": permissions,
        });
        let reply = self.post("/api/users", &self.admin, body).await;
        assert_eq!(reply.status, StatusCode::CREATED, "{:?}", reply.body);
        let id = reply.body["data"]["id"].as_str().expect("user id").to_string();
        let token = self.login(&username, USER_PASSWORD).await;
        (id, token)
    }

    /// Creates a valid flow as `token`; returns its id.
    pub async fn flow(&self, token: &str, name: &str) -> String {
        let reply = self.post("/flows", token, flow_body(name)).await;
        assert_eq!(reply.status, StatusCode::CREATED, "{:?}", reply.body);
        reply.body["data"]["id"].as_str().expect("flow id").to_string()
    }

    /// Polls `GET /flows/{id}` until its status is `status` (deadline 10 s).
    pub async fn wait_for_status(&self, token: &str, id: &str, status: &str) -> Value {
        self.wait_for_status_within(token, id, status, Duration::from_secs(10)).await
    }

    /// Polls `GET /flows/{id}` until its status is `status` or `within` has passed.
    pub async fn wait_for_status_within(
        &self,
        token: &str,
        id: &str,
        status: &str,
        within: Duration,
    ) -> Value {
        let deadline = Instant::now() + within;
        loop {
            let reply = self.get(&format!("/flows/{id}"), token).await;
            if reply.body["data"]["status"] == status {
                return reply.body["data"].clone();
            }
            assert!(Instant::now() < deadline, "flow {id} never became {status}: {:?}", reply.body);
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Creates `body` as a flow of `token`, starts it and waits until it is active; returns
    /// its id.
    pub async fn active_flow(&self, token: &str, body: Value) -> String {
        let reply = self.post("/flows", token, body).await;
        assert_eq!(reply.status, StatusCode::CREATED, "{:?}", reply.body);
        let id = reply.body["data"]["id"].as_str().expect("flow id").to_string();
        let started = self.post_empty(&format!("/flows/{id}/start"), token).await;
        assert_eq!(started.status, StatusCode::OK, "{:?}", started.body);
        self.wait_for_status(token, &id, "active").await;
        id
    }

    /// Posts JSON `body` to the flow's webhook with `headers` (no bearer unless given).
    pub async fn hook(&self, path: &str, headers: &[(&str, &str)], body: &Value) -> Reply {
        let mut all = vec![("content-type", "application/json")];
        all.extend_from_slice(headers);
        self.call_raw(Method::POST, path, None, &all, body.to_string()).await
    }

    /// Polls `GET /executions/{id}` until the execution has ended (deadline 20 s).
    pub async fn wait_for_execution(&self, token: &str, id: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let reply = self.get(&format!("/executions/{id}"), token).await;
            let status = reply.body["data"]["status"].as_str().unwrap_or_default().to_string();
            if ["succeeded", "failed", "cancelled"].contains(&status.as_str()) {
                return reply.body["data"].clone();
            }
            assert!(Instant::now() < deadline, "execution {id} never ended: {:?}", reply.body);
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Stops the background workers.
    pub async fn shutdown(mut self) {
        if let Some(app) = self.app.take() {
            app.shutdown().await;
        }
    }
}

/// A fresh PostgreSQL database for one application, dropped with it.
pub struct PostgresDatabase {
    name: String,
    url: String,
}

/// The `flowmate` binary next to this test executable (the test command builds it first): the
/// in-process application starts its sandbox processes from it, since a test executable cannot
/// be one.
pub fn flowmate_binary() -> std::path::PathBuf {
    let exe = std::env::current_exe().expect("the test executable's path");
    let dir = exe.parent().and_then(std::path::Path::parent).expect("target/<profile>/deps");
    let binary = dir.join("flowmate");
    assert!(binary.exists(), "{} is missing: build it first (cargo build -p flowmate)", binary.display());
    binary
}

fn sandbox_program() -> String {
    flowmate_binary().display().to_string()
}

fn postgres_server() -> String {
    std::env::var("FLOWMATE_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

impl PostgresDatabase {
    /// Creates `flowmate_suite_<random>` on the server of `FLOWMATE_TEST_POSTGRES_URL`.
    ///
    /// # Panics
    /// When the database cannot be created.
    pub fn create() -> Self {
        let name = format!("flowmate_suite_{}", uuid::Uuid::new_v4().simple());
        let server = postgres_server();
        let status = std::process::Command::new("psql")
            .arg(&server)
            .args(["-q", "-v", "ON_ERROR_STOP=1", "-c", &format!("CREATE DATABASE {name}")])
            .status();
        assert!(status.is_ok_and(|s| s.success()), "cannot create database {name} on {server}");
        let base = server.rsplit_once('/').map_or(server.as_str(), |(base, _)| base).to_string();
        Self { url: format!("{base}/{name}"), name }
    }
}

impl PostgresDatabase {
    /// Its URL.
    pub fn url(&self) -> &str {
        &self.url
    }
}

impl Drop for PostgresDatabase {
    fn drop(&mut self) {
        let _ = std::process::Command::new("psql")
            .arg(postgres_server())
            .args(["-q", "-c", &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name)])
            .status();
    }
}

/// The first JSON object key anywhere in `value` that names a password or a hash.
fn secret_key(value: &Value) -> Option<String> {
    match value {
        Value::Object(map) => map.iter().find_map(|(key, inner)| {
            let lower = key.to_lowercase();
            if lower.contains("password") || lower.contains("hash") {
                Some(key.clone())
            } else {
                secret_key(inner)
            }
        }),
        Value::Array(items) => items.iter().find_map(secret_key),
        _ => None,
    }
}

/// A valid two-node flow document (webhook -> jq).
pub fn flow_body(name: &str) -> Value {
    json!({
        "name": name,
        "description": format!("{name} description"),
        "graph": {
            "nodes": [
                {"id": "in", "componentId": "webhook", "function": "receive"},
                {"id": "add", "componentId": "jq", "function": "transform", "fields": {"program": ".data"}}
            ],
            "edges": [{"source": "in", "target": "add"}]
        }
    })
}

/// A valid template document.
pub fn template_body(name: &str) -> Value {
    let mut body = flow_body(name);
    body["tags"] = json!(["premium"]);
    body
}
