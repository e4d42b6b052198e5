//! The `flowmate` binary: read the configuration, then serve, migrate or manage users.

use clap::Parser;
use std::process::ExitCode;

/// mimalloc instead of the system allocator: the request path allocates a lot of small JSON
/// values across threads, where glibc's malloc spent a quarter of the CPU time (profiled under
/// the W1 benchmark, docs/benchmarks.md) and kept freed memory in per-thread arenas.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = flowmate::config::Cli::parse();
    if let Err(err) = flowmate::telemetry::init(&cli.config) {
        eprintln!("error: {err:#}");
        return ExitCode::FAILURE;
    }
    match flowmate::run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!(error = format!("{err:#}"), "flowmate stopped with an error");
            ExitCode::FAILURE
        }
    }
}
