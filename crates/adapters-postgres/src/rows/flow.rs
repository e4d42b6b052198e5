//! `flows` rows: the columns written and the conversion back to a `Flow`.

use super::{from_json, opt_text, parse_enum, parse_id, parse_opt_id, to_json};
use crate::error::corrupt;
use crate::sql::{Arg, fold, from_millis, millis};
use flow_domain::error::PortError;
use flow_domain::ids::{FlowId, TemplateId, TenantId};
use flow_domain::model::{Flow, FlowSpec, Graph, Owner};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Columns of `flows` written on insert and update, in the order of [`flow_values`]
/// (`id` and `revision` are handled by each statement).
pub(crate) const FLOW_WRITE_COLUMNS: [&str; 16] = [
    "tenant",
    "name",
    "name_key",
    "description",
    "description_key",
    "flow_type",
    "cron",
    "status",
    "status_reason",
    "from_template",
    "owners",
    "doc",
    "created_at",
    "updated_at",
    "status_changed_at",
    "lifecycle_attempts",
];

/// Columns read into a [`FlowRow`].
pub(crate) const FLOW_COLUMNS: &str = "id, tenant, name, description, flow_type, cron, status, status_reason, \
     from_template, owners, doc, created_at, updated_at, status_changed_at, lifecycle_attempts, revision";

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct FlowDocRef<'a> {
    graph: &'a Graph,
    flow_settings: &'a Map<String, Value>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct FlowDoc {
    graph: Graph,
    #[serde(default)]
    flow_settings: Map<String, Value>,
}

/// The values of [`FLOW_WRITE_COLUMNS`] for `flow`.
pub(crate) fn flow_values(flow: &Flow) -> Result<Vec<Arg>, PortError> {
    let spec = &flow.spec;
    let doc = to_json(&FlowDocRef { graph: &spec.graph, flow_settings: &spec.flow_settings }, "flow graph")?;
    Ok(vec![
        opt_text(flow.tenant),
        Arg::Text(spec.name.clone()),
        Arg::Text(fold(&spec.name)),
        Arg::OptText(spec.description.clone()),
        Arg::OptText(spec.description.as_deref().map(fold)),
        Arg::Text(spec.flow_type.as_str().into()),
        Arg::OptText(spec.cron.clone()),
        Arg::Text(flow.status.as_str().into()),
        Arg::OptText(flow.status_reason.clone()),
        opt_text(flow.from_template),
        Arg::Json(to_json(&flow.owners, "owners")?),
        Arg::Json(doc),
        Arg::Time(millis(flow.created_at)),
        Arg::Time(millis(flow.updated_at)),
        Arg::Time(millis(flow.status_changed_at)),
        Arg::Int(i64::from(flow.lifecycle_attempts)),
    ])
}

/// A row of `flows`.
#[derive(sqlx::FromRow)]
pub(crate) struct FlowRow {
    id: String,
    tenant: Option<String>,
    name: String,
    description: Option<String>,
    flow_type: String,
    cron: Option<String>,
    status: String,
    status_reason: Option<String>,
    from_template: Option<String>,
    owners: super::Jv,
    doc: super::Jv,
    created_at: chrono::DateTime<chrono::Utc>,
    updated_at: chrono::DateTime<chrono::Utc>,
    status_changed_at: chrono::DateTime<chrono::Utc>,
    lifecycle_attempts: i64,
    revision: i64,
}

impl TryFrom<FlowRow> for Flow {
    type Error = PortError;

    fn try_from(row: FlowRow) -> Result<Self, PortError> {
        let doc: FlowDoc = from_json(row.doc, "flow graph")?;
        Ok(Flow {
            id: parse_id::<FlowId>(&row.id)?,
            spec: FlowSpec {
                name: row.name,
                description: row.description,
                flow_type: parse_enum(&row.flow_type, "flow type")?,
                cron: row.cron,
                graph: doc.graph,
                flow_settings: doc.flow_settings,
            },
            tenant: parse_opt_id::<TenantId>(row.tenant.as_deref())?,
            owners: from_json::<Vec<Owner>>(row.owners, "owners")?,
            status: parse_enum(&row.status, "flow status")?,
            status_reason: row.status_reason,
            from_template: parse_opt_id::<TemplateId>(row.from_template.as_deref())?,
            created_at: from_millis(row.created_at)?,
            updated_at: from_millis(row.updated_at)?,
            status_changed_at: from_millis(row.status_changed_at)?,
            lifecycle_attempts: u32::try_from(row.lifecycle_attempts)
                .map_err(|_| corrupt("attempt count"))?,
            revision: row.revision,
        })
    }
}
