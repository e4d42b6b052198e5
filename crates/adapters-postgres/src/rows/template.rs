//! `templates` rows: the columns written and the conversion back to a `Template`.

use super::{from_json, opt_text, parse_enum, parse_id, parse_opt_id, to_json};
use crate::sql::{Arg, fold, from_millis, millis};
use flow_domain::error::PortError;
use flow_domain::ids::{TemplateId, TenantId};
use flow_domain::model::{Owner, Template, TemplateSpec};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Columns of `templates` written on insert and update, in the order of [`template_values`].
pub(crate) const TEMPLATE_WRITE_COLUMNS: [&str; 13] = [
    "tenant",
    "name",
    "name_key",
    "description",
    "description_key",
    "flow_type",
    "cron",
    "status",
    "tags",
    "owners",
    "doc",
    "created_at",
    "updated_at",
];

/// Columns read into a [`TemplateRow`].
pub(crate) const TEMPLATE_COLUMNS: &str = "id, tenant, name, description, flow_type, cron, status, tags, owners, doc, created_at, updated_at, revision";

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct TemplateDocRef<'a> {
    graph: &'a Value,
    flow_settings: &'a Map<String, Value>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TemplateDoc {
    graph: Value,
    #[serde(default)]
    flow_settings: Map<String, Value>,
}

/// The values of [`TEMPLATE_WRITE_COLUMNS`] for `template`.
pub(crate) fn template_values(template: &Template) -> Result<Vec<Arg>, PortError> {
    let spec = &template.spec;
    let doc = to_json(
        &TemplateDocRef { graph: &spec.graph, flow_settings: &spec.flow_settings },
        "template graph",
    )?;
    Ok(vec![
        opt_text(template.tenant),
        Arg::Text(spec.name.clone()),
        Arg::Text(fold(&spec.name)),
        Arg::OptText(spec.description.clone()),
        Arg::OptText(spec.description.as_deref().map(fold)),
        Arg::Text(spec.flow_type.as_str().into()),
        Arg::OptText(spec.cron.clone()),
        Arg::Text(spec.status.as_str().into()),
        Arg::Json(to_json(&spec.tags, "tags")?),
        Arg::Json(to_json(&template.owners, "owners")?),
        Arg::Json(doc),
        Arg::Time(millis(template.created_at)),
        Arg::Time(millis(template.updated_at)),
    ])
}

/// A row of `templates`.
#[derive(sqlx::FromRow)]
pub(crate) struct TemplateRow {
    id: String,
    tenant: Option<String>,
    name: String,
    description: Option<String>,
    flow_type: String,
    cron: Option<String>,
    status: String,
    tags: super::Jv,
    owners: super::Jv,
    doc: super::Jv,
    created_at: chrono::DateTime<chrono::Utc>,
    updated_at: chrono::DateTime<chrono::Utc>,
    revision: i64,
}

impl TryFrom<TemplateRow> for Template {
    type Error = PortError;

    fn try_from(row: TemplateRow) -> Result<Self, PortError> {
        let doc: TemplateDoc = from_json(row.doc, "template graph")?;
        Ok(Template {
            id: parse_id::<TemplateId>(&row.id)?,
            spec: TemplateSpec {
                name: row.name,
                description: row.description,
                flow_type: parse_enum(&row.flow_type, "flow type")?,
                cron: row.cron,
                graph: doc.graph,
                flow_settings: doc.flow_settings,
                tags: from_json(row.tags, "tags")?,
                status: parse_enum(&row.status, "template status")?,
            },
            tenant: parse_opt_id::<TenantId>(row.tenant.as_deref())?,
            owners: from_json::<Vec<Owner>>(row.owners, "owners")?,
            created_at: from_millis(row.created_at)?,
            updated_at: from_millis(row.updated_at)?,
            revision: row.revision,
        })
    }
}
