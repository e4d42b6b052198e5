//! `GET /healthcheck` (no authentication): whether the database and the event bus answer.

use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use flow_domain::ports::Health;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// `pass` or `fail`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum CheckStatus {
    /// The backend answers.
    Pass,
    /// It does not.
    Fail,
}

/// The state of one backend.
#[derive(Debug, Serialize, ToSchema)]
pub struct Check {
    /// Whether it answers.
    pub status: CheckStatus,
}

/// The backends checked.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct HealthDetails {
    /// The database.
    pub database: Check,
    /// The event bus.
    pub event_bus: Check,
}

/// The health report.
#[derive(Debug, Serialize, ToSchema)]
pub struct HealthReport {
    /// `pass` when every backend passes.
    pub status: CheckStatus,
    /// Per backend.
    pub details: HealthDetails,
}

/// The routes of this module.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(healthcheck))
}

fn check(name: &str, result: Result<(), String>) -> Check {
    match result {
        Ok(()) => Check { status: CheckStatus::Pass },
        Err(reason) => {
            tracing::warn!(backend = name, %reason, "health check failed");
            Check { status: CheckStatus::Fail }
        }
    }
}

/// Readiness: 200 when the database and the event bus answer, else 503.
#[utoipa::path(get, path = "/healthcheck", tag = "health",
    responses(
        (status = 200, description = "Everything answers", body = HealthReport),
        (status = 503, description = "A backend does not answer", body = HealthReport),
    ))]
pub async fn healthcheck(State(state): State<AppState>) -> (StatusCode, Json<HealthReport>) {
    report(state.database.as_ref(), state.event_bus.as_ref()).await
}

/// Checks both backends and renders the report.
pub(crate) async fn report(
    database: &dyn Health,
    event_bus: &dyn Health,
) -> (StatusCode, Json<HealthReport>) {
    let (database, event_bus) = tokio::join!(database.check(), event_bus.check());
    let details =
        HealthDetails { database: check("database", database), event_bus: check("eventBus", event_bus) };
    let pass = details.database.status == CheckStatus::Pass && details.event_bus.status == CheckStatus::Pass;
    let (code, status) = if pass {
        (StatusCode::OK, CheckStatus::Pass)
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, CheckStatus::Fail)
    };
    (code, Json(HealthReport { status, details }))
}
