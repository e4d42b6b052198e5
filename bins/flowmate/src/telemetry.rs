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
use tracing_subscriber::EnvFilter;

/// Installs the global subscriber.
///
/// # Errors
/// An invalid filter, or a subscriber already installed.
pub fn init(config: &Config) -> anyhow::Result<()> {
    let filter = EnvFilter::try_new(&config.log)?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(true)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    match config.log_format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    }
    .map_err(|e| anyhow::anyhow!("cannot install the logger: {e}"))
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
