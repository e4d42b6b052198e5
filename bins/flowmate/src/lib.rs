//! The FlowMate service as a library: configuration, wiring of adapters and services, and the
//! commands of the `flowmate` binary. Tests build the same application through [`wiring`].

pub mod backends;
pub mod backlog;
pub mod commands;
pub mod config;
pub mod retention;
pub mod telemetry;
pub mod wiring;

use config::{Cli, Command};

/// Runs the command chosen on the command line (default: serve).
///
/// # Errors
/// Configuration, storage and I/O failures, with their cause chain.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => commands::serve(&cli.config).await,
        Command::Migrate => commands::migrate(&cli.config).await,
        Command::User(user) => commands::user(&cli.config, user).await,
        Command::Sandbox => Ok(tokio::task::spawn_blocking(flow_engine::sandbox::serve_stdio).await??),
    }
}
