//! The step-usage report (`GET /icenter/executions`): messages received by the steps of the
//! executions created in a period, summed per flow, tenant, first user owner and component, by
//! one aggregate query over the JSON step records.

use crate::error::port_error;
use crate::rows::parse_id;
use crate::sql::{Arg, Filter, bind_args, millis, q};
use chrono::{DateTime, Utc};
use flow_domain::error::PortError;
use flow_domain::ids::{FlowId, TenantId};
use flow_domain::ports::StepUsage;
use sqlx::PgPool;

/// One group of the aggregate.
#[derive(sqlx::FromRow)]
struct UsageRow {
    flow_id: String,
    tenant: Option<String>,
    user_id: Option<String>,
    component_id: String,
    count: i64,
}

impl TryFrom<UsageRow> for StepUsage {
    type Error = PortError;

    fn try_from(row: UsageRow) -> Result<Self, PortError> {
        Ok(StepUsage {
            flow_id: parse_id::<FlowId>(&row.flow_id)?,
            tenant: row.tenant.as_deref().map(parse_id::<TenantId>).transpose()?,
            user: row.user_id.as_deref().map(parse_id).transpose()?,
            component_id: row.component_id,
            count: u64::try_from(row.count).unwrap_or(0),
        })
    }
}

/// Step usage of the executions of `tenant` (every tenant when `None`) created in `[from, to)`.
/// Groups whose steps received no message are left out; ordered by flow, tenant, user and
/// component.
pub(crate) async fn step_usage(
    pool: &PgPool,
    tenant: Option<TenantId>,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<StepUsage>, PortError> {
    let mut filter = Filter::default();
    filter.and("e.created_at >= ? AND e.created_at < ?", [Arg::Time(millis(from)), Arg::Time(millis(to))]);
    if let Some(tenant) = tenant {
        filter.and("e.tenant = ?", [Arg::Text(tenant.to_string())]);
    }
    // `owners` is a JSON array in the order given; its first user entry is the user.
    let sql = format!(
        "SELECT e.flow_id AS flow_id, e.tenant AS tenant, \
           (SELECT o.value ->> 'id' FROM jsonb_array_elements(e.owners) WITH ORDINALITY o(value, idx) \
             WHERE o.value ->> 'type' = 'user' ORDER BY o.idx LIMIT 1) AS user_id, \
           COALESCE(s.value ->> 'componentId', '') AS component_id, \
           SUM((s.value ->> 'in')::bigint)::bigint AS count \
         FROM executions e CROSS JOIN LATERAL jsonb_each(e.step_summary) s{} \
         GROUP BY 1, 2, 3, 4 HAVING SUM((s.value ->> 'in')::bigint) > 0 \
         ORDER BY 1, 2 NULLS FIRST, 3 NULLS FIRST, COALESCE(s.value ->> 'componentId', '') COLLATE \"C\"",
        filter.where_sql()
    );
    let rows = bind_args!(sqlx::query_as::<_, UsageRow>(q(&sql)), &filter.args)
        .fetch_all(pool)
        .await
        .map_err(port_error)?;
    rows.into_iter().map(StepUsage::try_from).collect()
}
