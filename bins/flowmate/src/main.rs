//! The `flowmate` binary: read the configuration, then serve, migrate or manage users.

use clap::Parser;
use std::process::ExitCode;

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
