//! Structured logging: an env-filter from `FLOWMATE_LOG`, text or JSON lines, on standard error
//! (standard output stays free for command results such as `user create`'s id); and the
//! Prometheus recorder behind `GET /metrics`.

use crate::config::{Config, LogFormat};
use flow_engine::runtime::spawn_periodic;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use std::io::IsTerminal;
use std::sync::OnceLock;
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::Subscriber;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::util::SubscriberInitExt;

/// Installs the global subscriber.
///
/// # Errors
/// An invalid filter, or a subscriber already installed.
pub fn init(config: &Config) -> anyhow::Result<()> {
    let ansi = std::io::stderr().is_terminal();
    subscriber(&config.log, config.log_format, std::io::stderr, ansi)?
        .try_init()
        .map_err(|e| anyhow::anyhow!("cannot install the logger: {e}"))
}

/// The subscriber of the log filter `filter` writing `format` lines to `writer`. A field's
/// value is printed quoted with its control characters escaped (text) or as a JSON string
/// (JSON), so text that callers log as a field cannot start a line of its own.
///
/// # Errors
/// An invalid filter.
pub fn subscriber<W>(
    filter: &str,
    format: LogFormat,
    writer: W,
    ansi: bool,
) -> anyhow::Result<Box<dyn Subscriber + Send + Sync>>
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let builder = tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_new(filter)?)
        .with_target(true)
        .with_writer(writer)
        .with_ansi(ansi);
    Ok(match format {
        LogFormat::Text => Box::new(builder.finish()),
        LogFormat::Json => Box::new(builder.json().flatten_event(true).finish()),
    })
}

/// Upper bounds (seconds) of the latency histograms' buckets.
const LATENCY_BUCKETS: &[f64] =
    &[0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

/// How often recorded histogram samples are folded into their buckets when nobody scrapes
/// `/metrics` (they are kept until then).
const UPKEEP_EVERY: Duration = Duration::from_secs(5);

/// Folds recorded samples into the histograms every few seconds until `cancel`, so memory
/// stays flat under load whether or not `/metrics` is scraped.
pub fn spawn_metrics_upkeep(handle: PrometheusHandle, cancel: CancellationToken) -> JoinHandle<()> {
    spawn_periodic("metrics upkeep", UPKEEP_EVERY, cancel, move || {
        handle.run_upkeep();
        std::future::ready(())
    })
}

/// The process-wide Prometheus recorder, installed on first use (a process has one recorder,
/// however many applications it builds, as tests do).
pub fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            // Fixed buckets: a histogram is a few counters, not a summary over kept samples.
            let recorder = PrometheusBuilder::new()
                .set_buckets(LATENCY_BUCKETS)
                .unwrap_or_else(|_| PrometheusBuilder::new())
                .build_recorder();
            let handle = recorder.handle();
            if metrics::set_global_recorder(recorder).is_err() {
                tracing::warn!("a metrics recorder was already installed; /metrics may be empty");
            }
            handle
        })
        .clone()
}

#[cfg(test)]
mod tests {
    use super::*;
    use flow_engine::components::{CallContext, Component, LogComponent};
    use serde_json::{Value, json};
    use std::sync::Arc;

    const FORGED: &str = "hello\n2026-05-01T12:00:00.000000Z ERROR flowmate: forged\r\n\u{1b}[31mred\u{0}end";

    /// What a `log` node with `message` writes in `format`, at each level.
    async fn logged(format: LogFormat, message: &str) -> String {
        // `Arc<File>` writes through `&File`: every event goes to one temporary file.
        let log = tempfile::NamedTempFile::new().unwrap_or_else(|e| panic!("{e}"));
        let writer = Arc::new(log.reopen().unwrap_or_else(|e| panic!("{e}")));
        let subscriber = subscriber("debug", format, writer, false).unwrap_or_else(|e| panic!("{e}"));
        let _default = tracing::subscriber::set_default(subscriber);
        let ctx =
            CallContext { flow_id: "flow-1".into(), step_id: "step-1".into(), ..CallContext::default() };
        for level in ["debug", "info", "warn", "error"] {
            let fields = json!({"message": message, "level": level});
            let fields = fields.as_object().cloned().unwrap_or_default();
            let out = LogComponent.call("info", &fields, &json!({"data": {}}), &ctx).await;
            assert!(out.is_ok(), "{out:?}");
        }
        std::fs::read_to_string(log.path()).unwrap_or_else(|e| panic!("{e}"))
    }

    #[tokio::test]
    async fn a_log_node_writes_its_text_escaped_in_one_line_of_text() {
        let out = logged(LogFormat::Text, FORGED).await;
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 4, "one line per event: {out}");
        for line in &lines {
            assert!(line.contains("log node"), "{line}");
            assert!(line.contains(r#"text="hello\n2026-05-01T12:00:00.000000Z ERROR flowmate: forged\r\n\u{1b}[31mred\0end""#), "{line}");
            assert!(line.contains(r#"flow="flow-1""#) && line.contains(r#"step="step-1""#), "{line}");
        }
        assert!(!out.contains(['\r', '\u{1b}', '\u{0}']), "{out:?}");
    }

    #[tokio::test]
    async fn a_log_node_writes_its_text_as_a_json_string() {
        let out = logged(LogFormat::Json, FORGED).await;
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 4, "one line per event: {out}");
        for line in lines {
            let event: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
            assert_eq!(event["text"], FORGED, "the text round-trips: {line}");
            assert_eq!(event["message"], "log node");
        }
    }
}
