//! The loop every periodic background task shares (watchdog, execution recovery, retention,
//! metrics upkeep): one pass right away, then one every period, until cancelled.

use std::future::Future;
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;

/// Spawns a task running `pass` every `every` (the first pass right away; a late pass delays
/// the next ones rather than bunching them) until `cancel` fires, then logs `"{name} stopped"`.
/// A pass in progress when `cancel` fires is finished first; a pass that must stop sooner
/// watches `cancel` itself. Each pass handles (logs) its own failures.
pub fn spawn_periodic<F, Fut>(
    name: &'static str,
    every: Duration,
    cancel: CancellationToken,
    mut pass: F,
) -> JoinHandle<()>
where
    F: FnMut() -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send,
{
    tokio::spawn(async move {
        let mut interval = tokio::time::interval(every.max(Duration::from_millis(1)));
        interval.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                biased;
                () = cancel.cancelled() => break,
                _ = interval.tick() => {}
            }
            pass().await;
        }
        tracing::info!("{name} stopped");
    })
}
