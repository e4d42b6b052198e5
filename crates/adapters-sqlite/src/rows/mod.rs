//! Mapping between the model and table rows: the column lists, the values written, and the
//! conversion of rows read back (with malformed data reported, never panicking).

mod component;
mod event;
mod execution;
mod flow;
mod identity;
mod template;

pub(crate) use component::{COMPONENT_COLUMNS, COMPONENT_WRITE_COLUMNS, ComponentRow, component_values};
pub(crate) use event::OutboxRow;
pub(crate) use execution::{
    EXECUTION_COLUMNS, EXECUTION_INSERT_ONLY_COLUMNS, EXECUTION_WRITE_COLUMNS, ExecutionRow,
    execution_insert_values, execution_values,
};
pub(crate) use flow::{FLOW_COLUMNS, FLOW_WRITE_COLUMNS, FlowRow, flow_values};
pub(crate) use identity::{TENANT_COLUMNS, TenantRow, TokenUserRow, USER_COLUMNS, UserRow, permissions_json};
pub(crate) use template::{TEMPLATE_COLUMNS, TEMPLATE_WRITE_COLUMNS, TemplateRow, template_values};

use crate::error::{corrupt, unserializable};
use crate::sql::Arg;
use flow_domain::error::PortError;
use flow_domain::model::OwnerType;
use flow_domain::ports::ReportedOnce;
use serde::{Deserialize, Serialize};
use sqlx::sqlite::SqliteRow;
use sqlx::{FromRow, Row};
use std::str::FromStr;
use uuid::Uuid;

/// Decodes the raw `rows` of `table` one by one, through `R` and `convert`: a row that cannot
/// be read is left out and reported once per process (by its `key` column when that reads),
/// so one bad row never fails a whole listing or background pass.
pub(crate) fn decode_each<R, T>(
    rows: Vec<SqliteRow>,
    table: &str,
    key: &str,
    unreadable: &ReportedOnce,
    mut convert: impl FnMut(R) -> Result<T, PortError>,
) -> Vec<T>
where
    R: for<'r> FromRow<'r, SqliteRow>,
{
    rows.into_iter()
        .filter_map(|row| {
            let decoded = R::from_row(&row).map_err(|e| corrupt(&format!("{table} row ({e})")));
            match decoded.and_then(&mut convert) {
                Ok(item) => Some(item),
                Err(err) => {
                    let id = row.try_get::<String, _>(key).unwrap_or_else(|_| "?".into());
                    if unreadable.first_report(&format!("{table}:{id}")) {
                        tracing::error!(table, key = %id, error = %err, "a stored row cannot be read; it is left out");
                    }
                    None
                }
            }
        })
        .collect()
}

/// Parses a stored id.
pub(crate) fn parse_id<T: From<Uuid>>(raw: &str) -> Result<T, PortError> {
    Uuid::parse_str(raw).map(T::from).map_err(|_| corrupt("id"))
}

pub(super) fn parse_opt_id<T: From<Uuid>>(raw: Option<&str>) -> Result<Option<T>, PortError> {
    raw.map(parse_id).transpose()
}

pub(super) fn parse_enum<T: FromStr>(raw: &str, what: &str) -> Result<T, PortError> {
    raw.parse().map_err(|_| corrupt(what))
}

pub(super) fn from_json<T: for<'de> Deserialize<'de>>(raw: &str, what: &str) -> Result<T, PortError> {
    serde_json::from_str(raw).map_err(|_| corrupt(what))
}

pub(super) fn to_json<T: Serialize>(value: &T, what: &str) -> Result<String, PortError> {
    serde_json::to_string(value).map_err(|e| unserializable(what, e))
}

pub(super) fn opt_text<T: ToString>(value: Option<T>) -> Arg {
    Arg::OptText(value.map(|v| v.to_string()))
}

/// The wire name of an owner type, as stored in the owners tables.
pub(crate) fn owner_type_name(owner_type: OwnerType) -> &'static str {
    match owner_type {
        OwnerType::User => "user",
        OwnerType::Tenant => "tenant",
    }
}
