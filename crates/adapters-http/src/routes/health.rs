//! `GET /healthcheck` (no authentication): whether the database and the event bus answer, and
//! how this process's consumer group members fare (`warn` when one has stalled too long).

use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use flow_domain::ports::{BusMonitor, Health, MemberStatus, Stall};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// `pass`, `warn` or `fail`, worst last.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum CheckStatus {
    /// The backend answers.
    Pass,
    /// It answers, but part of it does not progress (still 200).
    Warn,
    /// It does not answer (503).
    Fail,
}

/// The state of one backend.
#[derive(Debug, Serialize, ToSchema)]
pub struct Check {
    /// Whether it answers.
    pub status: CheckStatus,
}

/// One consumer group member of this process.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct GroupCheck {
    /// The group's name on the bus.
    pub group: String,
    /// `warn` when it has stalled longer than the limit.
    pub status: CheckStatus,
    /// Whether it has settled in its group (joined and assigned, possibly nothing).
    pub settled: bool,
    /// Partitions assigned to it.
    pub assigned_partitions: u32,
    /// Events waiting on its partitions, when known.
    pub lag: Option<u64>,
    /// The last time it received an event or was idle at the end of its partitions.
    pub last_progress_at: Option<DateTime<Utc>>,
    /// What keeps it from progressing, if anything.
    pub stall: Option<Stall>,
    /// Since when.
    pub stalled_since: Option<DateTime<Utc>>,
    /// The stall in words.
    pub reason: Option<String>,
    /// Rebalances seen.
    pub rebalances: u64,
    /// Events received.
    pub received: u64,
    /// Times it was replaced by a new member because it stalled.
    pub replaced: u64,
}

/// The event bus: whether it takes publications, and its consumer group members here.
#[derive(Debug, Serialize, ToSchema)]
pub struct BusCheck {
    /// `fail` when publishing fails, `warn` when a member stalled too long.
    pub status: CheckStatus,
    /// The consumer group members of this process (none on the embedded bus).
    pub groups: Vec<GroupCheck>,
}

/// The backends checked.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct HealthDetails {
    /// The database.
    pub database: Check,
    /// The event bus.
    pub event_bus: BusCheck,
}

/// The health report.
#[derive(Debug, Serialize, ToSchema)]
pub struct HealthReport {
    /// The worst status of the backends.
    pub status: CheckStatus,
    /// Per backend.
    pub details: HealthDetails,
}

/// The routes of this module.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(healthcheck))
}

fn check(name: &str, result: Result<(), String>) -> CheckStatus {
    match result {
        Ok(()) => CheckStatus::Pass,
        Err(reason) => {
            tracing::warn!(backend = name, %reason, "health check failed");
            CheckStatus::Fail
        }
    }
}

fn group_check(member: MemberStatus) -> GroupCheck {
    let reason = member.stall_reason();
    GroupCheck {
        status: if member.stalled_too_long { CheckStatus::Warn } else { CheckStatus::Pass },
        settled: member.settled,
        assigned_partitions: member.assigned_partitions,
        lag: member.lag,
        last_progress_at: member.last_progress,
        stall: member.stall.map(|(stall, _)| stall),
        stalled_since: member.stall.map(|(_, since)| since),
        reason,
        rebalances: member.rebalances,
        received: member.received,
        replaced: member.replaced,
        group: member.group,
    }
}

/// Readiness: 200 when the database and the event bus answer (`warn` when a consumer group
/// member stalled too long), 503 when one of them does not answer.
#[utoipa::path(get, path = "/healthcheck", tag = "health",
    responses(
        (status = 200, description = "Everything answers (status `pass` or `warn`)", body = HealthReport),
        (status = 503, description = "A backend does not answer", body = HealthReport),
    ))]
pub async fn healthcheck(State(state): State<AppState>) -> (StatusCode, Json<HealthReport>) {
    report(state.database.as_ref(), state.event_bus.as_ref(), state.bus_monitor.as_ref()).await
}

/// Checks both backends and this process's group members, and renders the report.
pub(crate) async fn report(
    database: &dyn Health,
    event_bus: &dyn Health,
    members: &dyn BusMonitor,
) -> (StatusCode, Json<HealthReport>) {
    let (database, event_bus) = tokio::join!(database.check(), event_bus.check());
    let groups: Vec<GroupCheck> = members.members().into_iter().map(group_check).collect();
    let bus_status = groups.iter().map(|g| g.status).fold(check("eventBus", event_bus), CheckStatus::max);
    let details = HealthDetails {
        database: Check { status: check("database", database) },
        event_bus: BusCheck { status: bus_status, groups },
    };
    let status = details.database.status.max(details.event_bus.status);
    let code = if status == CheckStatus::Fail { StatusCode::SERVICE_UNAVAILABLE } else { StatusCode::OK };
    (code, Json(HealthReport { status, details }))
}
