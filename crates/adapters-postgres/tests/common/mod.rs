//! A fresh PostgreSQL database per test: created from `template0` on the server named by
//! `FLOWMATE_TEST_POSTGRES_URL` (default: the local server), dropped (best effort, forcing
//! out remaining connections) when the guard is dropped.

use adapters_postgres::{PostgresConfig, PostgresStore};
use sqlx::{AssertSqlSafe, Connection, Executor, PgConnection};

/// The server's maintenance database, used to create and drop test databases.
pub fn admin_url() -> String {
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

/// A database that lives as long as this guard.
pub struct TestDb {
    /// Its URL.
    pub url: String,
    name: String,
}

impl TestDb {
    /// Creates `flowmate_test_<random>`.
    pub async fn create() -> Self {
        let name = format!("flowmate_test_{}", uuid::Uuid::new_v4().simple());
        let mut admin = PgConnection::connect(&admin_url()).await.expect("connect to the test server");
        admin
            .execute(AssertSqlSafe(format!("CREATE DATABASE {name} TEMPLATE template0")))
            .await
            .expect("create the test database");
        admin.close().await.expect("close the admin connection");
        Self { url: with_database(&admin_url(), &name), name }
    }

    /// The default configuration for this database.
    pub fn config(&self) -> PostgresConfig {
        PostgresConfig::new(self.url.clone())
    }

    /// A store on this database (migrated).
    pub async fn store(&self) -> PostgresStore {
        PostgresStore::connect(self.config()).await.expect("connect the store")
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let name = self.name.clone();
        // Dropping runs inside a test's runtime: use a thread with its own runtime.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().ok()?;
            runtime.block_on(async move {
                let mut admin = PgConnection::connect(&admin_url()).await.ok()?;
                admin
                    .execute(AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")))
                    .await
                    .ok()?;
                admin.close().await.ok()
            })
        })
        .join();
        if !matches!(dropped, Ok(Some(()))) {
            eprintln!("could not drop test database {}", self.name);
        }
    }
}
