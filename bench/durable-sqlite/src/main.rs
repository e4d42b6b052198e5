//! Benchmark ceiling 2: the bare handler of `bare-axum`, but every request is first recorded
//! durably in SQLite before it is answered.
//!
//! Durability is the cost FlowMate cannot avoid (an execution must be committed before the
//! webhook answers), so this program measures what one machine can do when that cost is paid
//! as cheaply as known: a WAL database, one writer task that owns the only connection, and
//! group commit. Handlers send `(record, oneshot)` over an mpsc channel; the writer takes the
//! first pending record, drains up to `--batch` more without waiting, inserts them all in one
//! transaction, commits, and only then answers each request of the batch. Under load many
//! requests share one commit (one fsync with `--synchronous full`).
//!
//! Usage: `durable-sqlite [--port N] [--db PATH] [--synchronous normal|full] [--batch N]`
//! (environment: `BENCH_PORT`, `BENCH_DB`, `BENCH_SYNCHRONOUS`, `BENCH_BATCH`; defaults 8081,
//! `durable-sqlite.db`, `normal`, 1024). Listens on 127.0.0.1 only; `GET /healthcheck` answers
//! 200 once the database is open.

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Map, Value, json};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
use sqlx::{ConnectOptions, Connection, SqliteConnection};
use std::time::{SystemTime, UNIX_EPOCH};
use tokio::sync::{mpsc, oneshot};

/// One request to record: its raw body and when it arrived, plus where to say it is durable.
struct Pending {
    body: String,
    received_at_us: i64,
    done: oneshot::Sender<Result<(), String>>,
}

/// Settings from flags or environment.
struct Settings {
    port: u16,
    db: String,
    synchronous: SqliteSynchronous,
    batch: usize,
}

impl Settings {
    /// Reads `--name value` flags, falling back to `BENCH_*` variables, then defaults.
    fn read() -> Result<Self, String> {
        let args: Vec<String> = std::env::args().skip(1).collect();
        let get = |flag: &str, var: &str, default: &str| -> String {
            args.iter()
                .position(|a| a == flag)
                .and_then(|i| args.get(i + 1).cloned())
                .or_else(|| std::env::var(var).ok())
                .unwrap_or_else(|| default.to_owned())
        };
        for arg in args.iter().filter(|a| a.starts_with("--")) {
            if !["--port", "--db", "--synchronous", "--batch"].contains(&arg.as_str()) {
                return Err(format!("unknown flag {arg}"));
            }
        }
        let port = get("--port", "BENCH_PORT", "8081");
        let batch = get("--batch", "BENCH_BATCH", "1024");
        let synchronous = match get("--synchronous", "BENCH_SYNCHRONOUS", "normal").to_lowercase().as_str() {
            "normal" => SqliteSynchronous::Normal,
            "full" => SqliteSynchronous::Full,
            other => return Err(format!("--synchronous must be normal or full, not {other:?}")),
        };
        Ok(Self {
            port: port.parse().map_err(|e| format!("bad port {port:?}: {e}"))?,
            db: get("--db", "BENCH_DB", "durable-sqlite.db"),
            synchronous,
            batch: batch.parse::<usize>().map_err(|e| format!("bad batch {batch:?}: {e}"))?.max(1),
        })
    }
}

/// Microseconds since the Unix epoch (0 if the clock is before it).
fn now_us() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
}

/// Inserts one batch in one transaction and commits it.
async fn commit_batch(conn: &mut SqliteConnection, batch: &[Pending]) -> Result<(), sqlx::Error> {
    let mut tx = conn.begin().await?;
    for pending in batch {
        sqlx::query("INSERT INTO requests (received_at_us, body) VALUES (?, ?)")
            .bind(pending.received_at_us)
            .bind(&pending.body)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await
}

/// The only writer: group-commits whatever is pending, then answers each request of the batch.
async fn writer(mut conn: SqliteConnection, mut rx: mpsc::Receiver<Pending>, max_batch: usize) {
    let mut batch = Vec::with_capacity(max_batch);
    while let Some(first) = rx.recv().await {
        batch.push(first);
        while batch.len() < max_batch {
            match rx.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
        let outcome = commit_batch(&mut conn, &batch).await.map_err(|e| e.to_string());
        for pending in batch.drain(..) {
            // A request whose client went away has dropped its receiver; nothing to tell it.
            let _ = pending.done.send(outcome.clone());
        }
    }
}

/// Parses the body, has it recorded durably, then answers `{"data": {...body, "processed": true}}`.
async fn webhook(State(tx): State<mpsc::Sender<Pending>>, body: Bytes) -> Response {
    let received_at_us = now_us();
    let mut object = match serde_json::from_slice::<Map<String, Value>>(&body) {
        Ok(object) => object,
        Err(e) => return (StatusCode::BAD_REQUEST, e.to_string()).into_response(),
    };
    let (done, durable) = oneshot::channel();
    let record = Pending { body: String::from_utf8_lossy(&body).into_owned(), received_at_us, done };
    if tx.send(record).await.is_err() {
        return (StatusCode::SERVICE_UNAVAILABLE, "writer stopped").into_response();
    }
    match durable.await {
        Ok(Ok(())) => {
            object.insert("processed".into(), Value::Bool(true));
            axum::Json(json!({ "data": object })).into_response()
        }
        Ok(Err(e)) => (StatusCode::INTERNAL_SERVER_ERROR, e).into_response(),
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, "writer stopped").into_response(),
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let settings = Settings::read()?;
    let mut conn = SqliteConnectOptions::new()
        .filename(&settings.db)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(settings.synchronous)
        .connect()
        .await?;
    sqlx::query(
        "CREATE TABLE IF NOT EXISTS requests \
         (id INTEGER PRIMARY KEY, received_at_us INTEGER NOT NULL, body TEXT NOT NULL)",
    )
    .execute(&mut conn)
    .await?;
    let (tx, rx) = mpsc::channel(settings.batch * 4);
    tokio::spawn(writer(conn, rx, settings.batch));
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", settings.port)).await?;
    eprintln!(
        "durable-sqlite listening on {} (db {}, synchronous {:?}, batch <= {})",
        listener.local_addr()?,
        settings.db,
        settings.synchronous,
        settings.batch
    );
    let app = Router::new()
        .route("/webhook", post(webhook))
        .route("/healthcheck", get(|| async { "ok" }))
        .with_state(tx);
    axum::serve(listener, app).await?;
    Ok(())
}
