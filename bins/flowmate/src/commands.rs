//! The commands: `serve` (with graceful shutdown), `migrate`, `user create`.

use crate::config::{Config, UserCommand};
use crate::wiring;
use anyhow::{Context, bail};
use flow_domain::services::FirstAdmin;
use std::io::BufRead;
use std::net::SocketAddr;
use std::time::Duration;

/// Serves until SIGTERM or Ctrl-C, then lets in-flight requests finish (bounded by the grace
/// period) and stops the background workers between batches.
///
/// # Errors
/// Start-up failures (bad configuration, storage, port in use).
pub async fn serve(config: &Config) -> anyhow::Result<()> {
    let app = wiring::start(config).await?;
    report_first_admin(&app.first_admin);
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    tracing::info!(address = %listener.local_addr()?, "FlowMate is listening");
    let service = app.router.clone().into_make_service_with_connect_info::<SocketAddr>();
    let (signalled_tx, signalled_rx) = tokio::sync::oneshot::channel::<()>();
    let server = axum::serve(listener, service).with_graceful_shutdown(async move {
        shutdown_signal().await;
        tracing::info!("shutdown requested; finishing in-flight requests");
        let _ = signalled_tx.send(());
    });
    let grace = Duration::from_secs(config.shutdown_grace_secs);
    let server = tokio::spawn(async move { server.await });
    tokio::select! {
        result = &mut Box::pin(wait_server(server)) => result?,
        () = async { let _ = signalled_rx.await; tokio::time::sleep(grace).await } => {
            tracing::warn!("grace period over; closing remaining connections");
        }
    }
    app.shutdown().await;
    tracing::info!("FlowMate stopped");
    Ok(())
}

async fn wait_server(handle: tokio::task::JoinHandle<std::io::Result<()>>) -> anyhow::Result<()> {
    handle.await.context("server task failed")?.context("server failed")
}

fn report_first_admin(first: &FirstAdmin) {
    match first {
        FirstAdmin::AlreadyPresent => {}
        FirstAdmin::Created { username } => {
            tracing::info!(username = %username, "created the first admin with the configured password");
        }
        FirstAdmin::CreatedWithPassword { username, password } => {
            tracing::warn!(
                username = %username,
                password = %password,
                "created the first admin with a generated password; it is shown only this once"
            );
        }
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}

/// Applies the migrations and exits.
///
/// # Errors
/// Storage failures.
pub async fn migrate(config: &Config) -> anyhow::Result<()> {
    wiring::migrate(config).await?;
    tracing::info!("migrations applied");
    Ok(())
}

/// `user create`.
///
/// # Errors
/// Validation failures (printed with their fields), duplicates, storage failures.
pub async fn user(config: &Config, command: UserCommand) -> anyhow::Result<()> {
    match command {
        UserCommand::Create { username, permissions, tenant } => {
            let password = match std::env::var("FLOWMATE_NEW_USER_PASSWORD") {
                Ok(p) => p,
                Err(_) => {
                    let mut line = String::new();
                    std::io::stdin()
                        .lock()
                        .read_line(&mut line)
                        .context("cannot read the password from stdin")?;
                    line.trim_end_matches(['\r', '\n']).to_string()
                }
            };
            if password.is_empty() {
                bail!("no password given (FLOWMATE_NEW_USER_PASSWORD or stdin)");
            }
            let id =
                wiring::create_user(config, &username, &password, &permissions, tenant.as_deref()).await?;
            println!("{id}");
            Ok(())
        }
    }
}
