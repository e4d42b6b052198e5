//! The storage the engine suites run on: SQLite in a temporary directory (the default), or a
//! fresh PostgreSQL database when `FLOWMATE_TEST_STORAGE=postgres`, created from `template0` on
//! the server named by `FLOWMATE_TEST_POSTGRES_URL` (default: the local server) and dropped
//! (best effort, forcing out remaining connections) with the [`TestDb`] guard.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use adapters_postgres::{PostgresConfig, PostgresStore};
use adapters_sqlite::{SqliteConfig, SqliteStore};
use flow_domain::ports::{ExecutionRepository, FlowRepository, Outbox};
use flow_engine::sandbox::{Sandbox, SandboxConfig};
use sqlx::{AssertSqlSafe, Connection, Executor, PgConnection};
use tempfile::TempDir;

/// One connection (pool) to the test database, as the ports the engine uses.
#[derive(Clone)]
pub struct Store {
    pub flows: Arc<dyn FlowRepository>,
    pub executions: Arc<dyn ExecutionRepository>,
    pub outbox: Arc<dyn Outbox>,
}

impl Store {
    fn of<S: FlowRepository + ExecutionRepository + Outbox + 'static>(store: S) -> Self {
        let store = Arc::new(store);
        Self { flows: store.clone(), executions: store.clone(), outbox: store }
    }
}

/// A database that lives as long as this guard (drop it after every store on it).
pub struct TestDb {
    backend: Backend,
}

enum Backend {
    Sqlite(TempDir),
    Postgres { name: String, url: String },
}

/// Whether this run is on PostgreSQL.
pub fn on_postgres() -> bool {
    std::env::var("FLOWMATE_TEST_STORAGE").as_deref() == Ok("postgres")
}

/// The PostgreSQL server's maintenance database, used to create and drop test databases.
fn admin_url() -> String {
    std::env::var("FLOWMATE_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_string())
}

/// `url` with its database replaced by `database`.
fn with_database(url: &str, database: &str) -> String {
    let (base, query) = url.split_once('?').map_or((url, None), |(b, q)| (b, Some(q)));
    let authority_end = base.find("://").map_or(0, |i| i + 3);
    let server = match base[authority_end..].find('/') {
        Some(slash) => &base[..authority_end + slash],
        None => base,
    };
    match query {
        Some(query) => format!("{server}/{database}?{query}"),
        None => format!("{server}/{database}"),
    }
}

impl TestDb {
    /// A fresh, empty database of the kind this run uses.
    pub async fn create() -> Self {
        if !on_postgres() {
            return Self { backend: Backend::Sqlite(tempfile::tempdir().unwrap()) };
        }
        let name = format!("flowmate_engine_{}", uuid::Uuid::new_v4().simple());
        let server = admin_url();
        let mut admin = PgConnection::connect(&server)
            .await
            .unwrap_or_else(|e| panic!("connect to the test server {server}: {e}"));
        admin
            .execute(AssertSqlSafe(format!("CREATE DATABASE {name} TEMPLATE template0")))
            .await
            .expect("create the test database");
        admin.close().await.expect("close the admin connection");
        let url = with_database(&server, &name);
        Self { backend: Backend::Postgres { name, url } }
    }

    /// A new connection to this database (migrated); several stores share the same data.
    pub async fn store(&self) -> Store {
        match &self.backend {
            Backend::Sqlite(dir) => Store::of(
                SqliteStore::connect(SqliteConfig::new(dir.path().join("flowmate.db"))).await.unwrap(),
            ),
            Backend::Postgres { url, .. } => {
                Store::of(PostgresStore::connect(PostgresConfig::new(url.clone())).await.unwrap())
            }
        }
    }
}

/// A JSON array nested 200 levels: valid JSON, deeper than any reader of FlowMate accepts (as a
/// bug or a hand edit could leave in a stored document).
pub fn too_deep_json() -> String {
    format!("{}{}", "[".repeat(200), "]".repeat(200))
}

impl TestDb {
    /// Replaces the stored document of execution `id` with [`too_deep_json`], in plain SQL.
    pub async fn corrupt_execution_document(&self, id: flow_domain::ids::ExecutionId) {
        self.execute_on_row("UPDATE executions SET doc = $1 WHERE id = $2", id.to_string()).await;
    }

    /// Replaces the stored document (graph) of flow `id` with [`too_deep_json`], in plain SQL.
    pub async fn corrupt_flow_document(&self, id: flow_domain::ids::FlowId) {
        let sql = if on_postgres() {
            "UPDATE flows SET doc = $1::jsonb WHERE id = $2"
        } else {
            "UPDATE flows SET doc = $1 WHERE id = $2"
        };
        self.execute_on_row(sql, id.to_string()).await;
    }

    /// Runs `sql` binding [`too_deep_json`] and `key`; it must change one row.
    async fn execute_on_row(&self, sql: &'static str, key: String) {
        let changed = match &self.backend {
            Backend::Sqlite(dir) => {
                let url = format!("sqlite://{}", dir.path().join("flowmate.db").display());
                let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
                let done = sqlx::query(sql).bind(too_deep_json()).bind(key).execute(&pool).await.unwrap();
                pool.close().await;
                done.rows_affected()
            }
            Backend::Postgres { url, .. } => {
                let pool = sqlx::PgPool::connect(url).await.unwrap();
                let done = sqlx::query(sql).bind(too_deep_json()).bind(key).execute(&pool).await.unwrap();
                pool.close().await;
                done.rows_affected()
            }
        };
        assert_eq!(changed, 1, "one row corrupted");
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let Backend::Postgres { name, .. } = &self.backend else { return };
        let statement = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
        // Dropping runs inside a test's runtime: use a thread with its own runtime.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().ok()?;
            runtime.block_on(async move {
                let mut admin = PgConnection::connect(&admin_url()).await.ok()?;
                admin.execute(AssertSqlSafe(statement)).await.ok()?;
                admin.close().await.ok()
            })
        })
        .join();
        if !matches!(dropped, Ok(Some(()))) {
            eprintln!("could not drop test database {name}");
        }
    }
}

/// A node of a test flow: `component`'s `function` with `fields`.
pub fn node(
    id: &str,
    component: &str,
    function: &str,
    fields: serde_json::Value,
) -> flow_domain::model::Node {
    flow_domain::model::Node::new(id, component, function, fields.as_object().cloned().unwrap_or_default())
}

/// A sandbox pool whose processes are this crate's `flowmate-sandbox` binary (a test binary
/// cannot be its own sandbox process).
pub fn sandbox() -> Arc<Sandbox> {
    Arc::new(Sandbox::new(SandboxConfig {
        program: env!("CARGO_BIN_EXE_flowmate-sandbox").into(),
        args: Vec::new(),
        ..SandboxConfig::default()
    }))
}
