//! The `flowmate` binary: read the configuration, then serve, migrate, manage users, or run as
//! a sandbox process.

use clap::Parser;
use std::process::ExitCode;

/// mimalloc instead of the system allocator: the request path allocates a lot of small JSON
/// values across threads, where glibc's malloc spent a quarter of the CPU time (profiled under
/// the W1 benchmark, docs/benchmarks.md) and kept freed memory in per-thread arenas.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = flowmate::config::Cli::parse();
    if matches!(cli.command, Some(flowmate::config::Command::Sandbox)) {
        // A sandbox process: no runtime, no logging; jobs on standard input and output.
        return match flow_engine::sandbox::serve_stdio() {
            Ok(()) => ExitCode::SUCCESS,
            Err(err) => {
                eprintln!("sandbox: {err}");
                ExitCode::FAILURE
            }
        };
    }
    match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime.block_on(serve(cli)),
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(cli: flowmate::config::Cli) -> ExitCode {
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
