//! An outage of the Kafka broker (issue acceptance: "with the broker stopped, the API keeps
//! accepting (the outbox grows), and everything is published once it is back").
//!
//! The test runs its own tansu broker (the binary of `scripts/kafka-broker.sh`) on a free port,
//! advertised behind a TCP proxy the test cuts and restores: every client connection, bootstrap
//! and advertised, goes through the proxy, while the broker keeps its topics, offsets and groups.

use axum::http::StatusCode;
use clap::Parser;
use flowmate::config::Cli;
use flowmate_tests::TestApp;
use flowmate_tests::proxy::Proxy;
use serde_json::{Value, json};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A tansu broker (in-memory storage) of this test, stopped when dropped.
struct Broker {
    child: Child,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Broker {
    /// The tansu binary: `TANSU_BIN`, else the one `scripts/kafka-broker.sh` installed.
    fn binary() -> PathBuf {
        if let Ok(bin) = std::env::var("TANSU_BIN") {
            return bin.into();
        }
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scripts/kafka-broker.sh");
        let out = Command::new(&script).arg("bin").output().expect("run scripts/kafka-broker.sh bin");
        assert!(
            out.status.success(),
            "tansu is missing: run `scripts/kafka-broker.sh install` ({})",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().into()
    }

    /// Starts a broker on `port`, advertising `advertised` (`host:port`) to clients.
    fn start(port: u16, advertised: &str) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let log = dir.path().join("tansu.log");
        let file = std::fs::File::create(&log).expect("log file");
        let child = Command::new(Self::binary())
            .current_dir(dir.path())
            .env("RUST_LOG", std::env::var("TANSU_LOG").unwrap_or_else(|_| "warn".into()))
            .args(["broker", "--listener-url", &format!("tcp://127.0.0.1:{port}")])
            .args(["--advertised-listener-url", &format!("tcp://{advertised}")])
            .args(["--storage-engine", "memory://tansu/"])
            .stdin(Stdio::null())
            .stdout(file.try_clone().expect("log file"))
            .stderr(file)
            .spawn()
            .expect("start tansu");
        let mut broker = Self { child, log, _dir: dir };
        let deadline = Instant::now() + Duration::from_secs(15);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = broker.child.try_wait() {
                panic!("tansu exited with {status}: {}", broker.log_text());
            }
            assert!(Instant::now() < deadline, "tansu not listening after 15 s: {}", broker.log_text());
            std::thread::sleep(Duration::from_millis(20));
        }
        broker
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

/// The value of the gauge or counter `name` in a Prometheus text, 0 when absent.
fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .find_map(|line| {
            let (key, value) = line.rsplit_once(' ')?;
            (key == name || key.starts_with(&format!("{name}{{"))).then(|| value.parse().ok())?
        })
        .unwrap_or(0.0)
}

/// Polls `probe` until it answers `Some`, panicking with `what` after `within`.
async fn eventually<T, F, Fut>(within: Duration, what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + within;
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        assert!(Instant::now() < deadline, "{what} within {within:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Logs of the application (and of librdkafka, target `librdkafka`) on standard error when
/// `FLOWMATE_TEST_LOG` holds a filter, e.g. `info,librdkafka=debug`.
fn init_logs() {
    if let Ok(filter) = std::env::var("FLOWMATE_TEST_LOG") {
        let cli = Cli::parse_from(["flowmate", "--log", &filter]);
        let _ = flowmate::telemetry::init(&cli.config);
    }
}

async fn status_of(app: &TestApp, path: &str) -> Value {
    app.get(path, &app.admin).await.body["data"]["status"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_outage_keeps_the_api_accepting_and_everything_is_published_once_it_is_back() {
    init_logs();
    let broker_port = free_port();
    let proxy = Proxy::start(format!("127.0.0.1:{broker_port}")).await;
    let address = format!("127.0.0.1:{}", proxy.port);
    let broker = Broker::start(broker_port, &address);
    let app = TestApp::spawn_on_kafka(&address, &[]).await;

    let echo = json!({"name": "echo", "graph": {"nodes": [{"id": "in", "componentId": "webhook", "function": "receive"}]}});
    let flow = app.post("/flows", &app.admin, echo.clone()).await.body["data"]["id"]
        .as_str()
        .expect("id")
        .to_string();
    assert_eq!(app.post_empty(&format!("/flows/{flow}/start"), &app.admin).await.status, StatusCode::OK);
    let path = format!("/flows/{flow}");
    eventually(Duration::from_secs(30), "the first flow becomes active", || async {
        (status_of(&app, &path).await == "active").then_some(())
    })
    .await;
    let second =
        app.post("/flows", &app.admin, echo).await.body["data"]["id"].as_str().expect("id").to_string();

    proxy.cut().await;
    let started = Instant::now();
    let mut executions = Vec::new();
    for n in 0..20 {
        let reply = app.hook(&format!("/webhooks/{flow}"), &[], &json!({"n": n})).await;
        assert_eq!(reply.status, StatusCode::OK, "accepted while the broker is down: {:?}", reply.body);
        executions.push(reply.body["data"]["executionId"].as_str().expect("execution id").to_string());
    }
    let start = app.post_empty(&format!("/flows/{second}/start"), &app.admin).await;
    assert_eq!(start.status, StatusCode::OK, "accepted while the broker is down: {:?}", start.body);
    assert!(started.elapsed() < Duration::from_secs(5), "accepting took {:?}", started.elapsed());
    eventually(Duration::from_secs(30), "the outbox holds the 21 events", || async {
        (metric(&app.metrics().await, "flowmate_outbox_pending") >= 21.0).then_some(())
    })
    .await;
    for id in &executions {
        assert_ne!(status_of(&app, &format!("/executions/{id}")).await, "succeeded", "ran without the bus");
    }

    proxy.restore();
    let second_path = format!("/flows/{second}");
    eventually(Duration::from_secs(45), "the second flow becomes active", || async {
        (status_of(&app, &second_path).await == "active").then_some(())
    })
    .await;
    for id in &executions {
        let path = format!("/executions/{id}");
        eventually(Duration::from_secs(30), &format!("execution {id} succeeds"), || async {
            (status_of(&app, &path).await == "succeeded").then_some(())
        })
        .await;
    }
    eventually(Duration::from_secs(10), "the outbox drains", || async {
        (metric(&app.metrics().await, "flowmate_outbox_pending") == 0.0).then_some(())
    })
    .await;
    app.shutdown().await;
    drop(broker);
}
