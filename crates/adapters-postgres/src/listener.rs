//! The outbox listener: a task holding a `LISTEN` connection that wakes local relays when any
//! process commits outbox events. It reconnects on its own, and wakes the relays after a
//! reconnection (a notification may have been missed). And the notifier: the task that sends
//! those notifications after local commits, one at a time, however many commits asked.

use sqlx::PgPool;
use sqlx::postgres::PgListener;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Notify, watch};
use tokio::task::AbortHandle;

/// The channel notified after transactions that append outbox events.
pub(crate) const OUTBOX_CHANNEL: &str = "flowmate_outbox";

/// Pause before retrying after the listener could not connect.
const RETRY_PAUSE: Duration = Duration::from_secs(1);

/// Spawns the listener task; `listening` tells whether it currently listens.
pub(crate) fn spawn_listener(
    pool: PgPool,
    channel: &'static str,
    signal: Arc<Notify>,
    listening: watch::Sender<bool>,
) -> AbortHandle {
    tokio::spawn(async move {
        loop {
            listen(&pool, channel, &signal, &listening).await;
            listening.send_replace(false);
            // Events may have been committed while nobody listened.
            signal.notify_one();
            tokio::time::sleep(RETRY_PAUSE).await;
        }
    })
    .abort_handle()
}

/// Spawns the notifier: each time `request` is signalled (any number of times meanwhile), one
/// `NOTIFY channel` in its own statement. A failed notification is only logged: the other
/// relays also look at the outbox on their own every second.
pub(crate) fn spawn_notifier(pool: PgPool, channel: &'static str, request: Arc<Notify>) -> AbortHandle {
    tokio::spawn(async move {
        loop {
            request.notified().await;
            if let Err(err) = sqlx::query("SELECT pg_notify($1, '')").bind(channel).execute(&pool).await {
                tracing::debug!(error = %err, "outbox notification not sent");
            }
        }
    })
    .abort_handle()
}

/// Listens until the connection is lost or cannot be made.
async fn listen(pool: &PgPool, channel: &str, signal: &Notify, listening: &watch::Sender<bool>) {
    let mut listener = match PgListener::connect_with(pool).await {
        Ok(listener) => listener,
        Err(err) => {
            tracing::debug!(error = %err, "outbox listener cannot connect");
            return;
        }
    };
    if let Err(err) = listener.listen(channel).await {
        tracing::debug!(error = %err, "outbox listener cannot LISTEN");
        return;
    }
    listening.send_replace(true);
    loop {
        match listener.try_recv().await {
            Ok(Some(_)) => signal.notify_one(),
            Ok(None) => {
                tracing::debug!("outbox listener connection lost");
                return;
            }
            Err(err) => {
                tracing::debug!(error = %err, "outbox listener failed");
                return;
            }
        }
    }
}
