//! Benchmark ceiling 1: the cheapest possible answer to FlowMate's anchor workload.
//!
//! `POST /webhook` with a JSON object body answers `200 {"data": {...body, "processed": true}}`
//! and does nothing else: no storage, no logging, no middleware. Whatever FlowMate does on top
//! of parsing and answering JSON over HTTP costs the difference to this program's figures.
//! `GET /healthcheck` answers 200 so that scripts can wait for it to be ready.
//!
//! Usage: `bare-axum [PORT]` (or `BENCH_PORT`, default 8080); listens on 127.0.0.1 only.

use axum::Router;
use axum::body::Bytes;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Map, Value, json};

/// Parses the body as a JSON object and answers it with `processed: true` added, inside `data`.
async fn webhook(body: Bytes) -> Response {
    match serde_json::from_slice::<Map<String, Value>>(&body) {
        Ok(mut object) => {
            object.insert("processed".into(), Value::Bool(true));
            axum::Json(json!({ "data": object })).into_response()
        }
        Err(e) => (StatusCode::BAD_REQUEST, e.to_string()).into_response(),
    }
}

/// The port from the first argument, else `BENCH_PORT`, else 8080.
fn port() -> Result<u16, String> {
    let raw = std::env::args().nth(1).or_else(|| std::env::var("BENCH_PORT").ok());
    raw.map_or(Ok(8080), |p| p.parse().map_err(|e| format!("bad port {p:?}: {e}")))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let port = port()?;
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    eprintln!("bare-axum listening on {}", listener.local_addr()?);
    let app = Router::new()
        .route("/webhook", post(webhook))
        .route("/healthcheck", axum::routing::get(|| async { "ok" }));
    axum::serve(listener, app).await?;
    Ok(())
}
