//! `components` rows: the columns written and the conversion back to an `ExternalComponent`.

use super::{from_json, opt_text, parse_opt_id, to_json};
use crate::sql::{Arg, from_millis, millis};
use flow_domain::error::PortError;
use flow_domain::ids::TenantId;
use flow_domain::model::{ExternalComponent, ExternalFunction, Owner};
use serde::{Deserialize, Serialize};

/// Columns of `components` written on insert, in the order of [`component_values`].
pub(crate) const COMPONENT_WRITE_COLUMNS: [&str; 5] = ["name", "tenant", "owners", "doc", "created_at"];

/// Columns read into a [`ComponentRow`].
pub(crate) const COMPONENT_COLUMNS: &str = "name, tenant, owners, doc, created_at";

#[derive(Serialize)]
struct DocRef<'a> {
    url: &'a str,
    functions: &'a [ExternalFunction],
}

#[derive(Deserialize)]
struct Doc {
    url: String,
    #[serde(default)]
    functions: Vec<ExternalFunction>,
}

/// The values of [`COMPONENT_WRITE_COLUMNS`] for `component`.
pub(crate) fn component_values(c: &ExternalComponent) -> Result<Vec<Arg>, PortError> {
    let doc = DocRef { url: &c.url, functions: &c.functions };
    Ok(vec![
        Arg::Text(c.name.clone()),
        opt_text(c.tenant),
        Arg::Json(to_json(&c.owners, "owners")?),
        Arg::Json(to_json(&doc, "component document")?),
        Arg::Time(millis(c.created_at)),
    ])
}

/// A row of `components`.
#[derive(sqlx::FromRow)]
pub(crate) struct ComponentRow {
    name: String,
    tenant: Option<String>,
    owners: super::Jv,
    doc: super::Jv,
    created_at: chrono::DateTime<chrono::Utc>,
}

impl TryFrom<ComponentRow> for ExternalComponent {
    type Error = PortError;

    fn try_from(row: ComponentRow) -> Result<Self, PortError> {
        let doc: Doc = from_json(row.doc, "component document")?;
        let owners: Vec<Owner> = from_json(row.owners, "owners")?;
        Ok(ExternalComponent {
            name: row.name,
            url: doc.url,
            functions: doc.functions,
            tenant: parse_opt_id::<TenantId>(row.tenant.as_deref())?,
            owners,
            created_at: from_millis(row.created_at)?,
        })
    }
}
