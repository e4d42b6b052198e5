//! Event bus ports. Adapters: `adapters-inprocess` (embedded) and `adapters-kafka` (production).

use crate::error::PortError;
use crate::event::Event;
use async_trait::async_trait;
use chrono::{DateTime, Utc};

/// Publishes events. Events with the same key MUST be delivered in publication order.
#[cfg_attr(any(test, feature = "mock"), mockall::automock)]
#[async_trait]
pub trait EventPublisher: Send + Sync {
    /// Publishes `events` in order; returns once the bus has accepted all of them.
    ///
    /// # Errors
    /// `Unavailable` when the bus cannot take them now (the relay retries later).
    async fn publish(&self, events: &[Event]) -> Result<(), PortError>;
}

/// A subscription of one consumer group.
#[async_trait]
pub trait EventStream: Send {
    /// The next event of the subscribed names; `None` when the bus shuts down.
    async fn next(&mut self) -> Option<Event>;

    /// Acknowledges `event` after it was handled; unacknowledged events may be redelivered.
    ///
    /// # Errors
    /// `Unavailable`.
    async fn ack(&mut self, event: &Event) -> Result<(), PortError>;
}

/// Creates subscriptions. Within one `group`, each event is delivered to one member; every
/// group receives every event of the names it subscribed to (at least once).
#[cfg_attr(any(test, feature = "mock"), mockall::automock)]
#[async_trait]
pub trait EventSubscriber: Send + Sync {
    /// Subscribes `group` to the events named in `names`.
    ///
    /// # Errors
    /// `Unavailable`.
    async fn subscribe(&self, group: &str, names: &[&'static str])
    -> Result<Box<dyn EventStream>, PortError>;
}

/// Why a consumer group member makes no progress (`noAssignment`, `lagWithoutProgress`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Stall {
    /// It has not settled in its group (joining or rebalancing): it is assigned nothing.
    NoAssignment,
    /// Events wait on its partitions, it asks for them, and none arrives.
    LagWithoutProgress,
}

/// How one consumer group member of this process fares, as its bus adapter sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberStatus {
    /// The group's name on the bus (e.g. `flowmate.flow-engine`).
    pub group: String,
    /// Partitions assigned to this member now.
    pub assigned_partitions: u32,
    /// Whether the member has settled in its group (joined and assigned, possibly nothing).
    pub settled: bool,
    /// The last time it received an event or found itself at the end of its partitions.
    pub last_progress: Option<DateTime<Utc>>,
    /// Events published to its partitions and not yet received, when the bus knows.
    pub lag: Option<u64>,
    /// Rebalances this process has seen in the group.
    pub rebalances: u64,
    /// Events received.
    pub received: u64,
    /// Times the member was closed and replaced because it stalled.
    pub replaced: u64,
    /// What keeps it from progressing, and since when (`None` while it progresses).
    pub stall: Option<(Stall, DateTime<Utc>)>,
    /// Whether the stall has lasted longer than the configured limit (the bus then warns).
    pub stalled_too_long: bool,
}

impl MemberStatus {
    /// One sentence an operator can act on, when the member stalls: "consumer group
    /// flowmate.flow-engine has no assignment since 12:00:03 UTC".
    pub fn stall_reason(&self) -> Option<String> {
        let (stall, since) = self.stall?;
        let since = since.format("%H:%M:%S UTC");
        Some(match stall {
            Stall::NoAssignment => format!("consumer group {} has no assignment since {since}", self.group),
            Stall::LagWithoutProgress => format!(
                "consumer group {} has {} event(s) waiting and has received none since {since}",
                self.group,
                self.lag.unwrap_or(0)
            ),
        })
    }
}

/// What the bus knows about the consumer group members of this process (for `/healthcheck`,
/// and for the watchdog to say why a flow was never confirmed).
pub trait BusMonitor: Send + Sync {
    /// Every live member of this process; empty for a bus without consumer groups.
    fn members(&self) -> Vec<MemberStatus>;

    /// Why the members stalled past the limit do not progress (`; `-separated), if any does.
    fn stall_reason(&self) -> Option<String> {
        let reasons: Vec<String> = self
            .members()
            .iter()
            .filter(|m| m.stalled_too_long)
            .filter_map(MemberStatus::stall_reason)
            .collect();
        (!reasons.is_empty()).then(|| reasons.join("; "))
    }
}
