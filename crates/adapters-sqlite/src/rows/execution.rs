//! `executions` rows: the columns written and the conversion back to an `Execution`.
//! The JSON `doc` holds the trigger, input, counters, steps and the execution's error.

use super::{from_json, opt_text, parse_enum, parse_id, parse_opt_id, to_json};
use crate::sql::{Arg, from_millis, millis};
use flow_domain::error::PortError;
use flow_domain::ids::{ExecutionId, FlowId, TenantId};
use flow_domain::model::{Counters, Execution, Owner, StepRecord, TriggerInfo, TriggerType};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

/// Columns of `executions` that change after the insert, written by inserts and saves alike
/// in the order of [`execution_values`] (`id` and `revision` are handled by each statement).
pub(crate) const EXECUTION_WRITE_COLUMNS: [&str; 7] =
    ["status", "doc", "started_at", "finished_at", "lease_owner", "lease_until", "attempts"];

/// Columns of `executions` written by inserts only, after [`EXECUTION_WRITE_COLUMNS`] (see
/// [`execution_insert_values`]): what an execution keeps from its creation on, so that a save
/// touches neither their indexes nor the owners' rows; and the idempotency key, so that saving
/// an execution whose key was since taken over by a newer one (see `insert_idempotent`)
/// neither fails nor takes the key back.
pub(crate) const EXECUTION_INSERT_ONLY_COLUMNS: [&str; 6] =
    ["flow_id", "tenant", "trigger_type", "owners", "created_at", "idempotency_key"];

/// Columns read into an [`ExecutionRow`].
pub(crate) const EXECUTION_COLUMNS: &str = "id, flow_id, tenant, status, trigger_type, owners, doc, \
     created_at, started_at, finished_at, lease_owner, lease_until, attempts, idempotency_key, revision";

#[derive(Serialize)]
struct DocRef<'a> {
    trigger: &'a TriggerInfo,
    input: &'a Value,
    counters: &'a Counters,
    steps: &'a BTreeMap<String, StepRecord>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: &'a Option<String>,
}

#[derive(Deserialize)]
struct Doc {
    trigger: TriggerInfo,
    input: Value,
    #[serde(default)]
    counters: Counters,
    #[serde(default)]
    steps: BTreeMap<String, StepRecord>,
    /// Absent in rows written before executions had an error.
    #[serde(default)]
    error: Option<String>,
}

fn opt_millis(at: Option<chrono::DateTime<chrono::Utc>>) -> Arg {
    at.map_or(Arg::OptText(None), |at| Arg::Int(millis(at)))
}

/// The values of [`EXECUTION_WRITE_COLUMNS`] for `execution`.
pub(crate) fn execution_values(e: &Execution) -> Result<Vec<Arg>, PortError> {
    let doc = DocRef {
        trigger: &e.trigger,
        input: &e.input,
        counters: &e.counters,
        steps: &e.steps,
        error: &e.error,
    };
    Ok(vec![
        Arg::Text(e.status.as_str().into()),
        Arg::Text(to_json(&doc, "execution document")?),
        opt_millis(e.started_at),
        opt_millis(e.finished_at),
        Arg::OptText(e.lease_owner.clone()),
        opt_millis(e.lease_until),
        Arg::Int(i64::from(e.attempts)),
    ])
}

/// The values of [`EXECUTION_WRITE_COLUMNS`] then [`EXECUTION_INSERT_ONLY_COLUMNS`].
pub(crate) fn execution_insert_values(e: &Execution) -> Result<Vec<Arg>, PortError> {
    let mut values = execution_values(e)?;
    values.extend([
        Arg::Text(e.flow_id.to_string()),
        opt_text(e.tenant),
        Arg::Text(e.trigger.trigger_type.as_str().into()),
        Arg::Text(to_json(&e.owners, "owners")?),
        Arg::Int(millis(e.created_at)),
        Arg::OptText(e.idempotency_key.clone()),
    ]);
    Ok(values)
}

/// A row of `executions`.
#[derive(sqlx::FromRow)]
pub(crate) struct ExecutionRow {
    id: String,
    flow_id: String,
    tenant: Option<String>,
    status: String,
    trigger_type: String,
    owners: String,
    doc: String,
    created_at: i64,
    started_at: Option<i64>,
    finished_at: Option<i64>,
    lease_owner: Option<String>,
    lease_until: Option<i64>,
    attempts: i64,
    idempotency_key: Option<String>,
    revision: i64,
}

impl TryFrom<ExecutionRow> for Execution {
    type Error = PortError;

    /// The execution of `row`. A document or owners that cannot be read (nested too deep,
    /// corrupt) make it the execution's readable remains ([`Execution::mark_unreadable`]), not
    /// an error: only a row that cannot be addressed (id, flow, status, times) fails.
    fn try_from(row: ExecutionRow) -> Result<Self, PortError> {
        let doc: Result<Doc, PortError> = from_json(&row.doc, "execution document");
        let owners: Result<Vec<Owner>, PortError> = from_json(&row.owners, "owners");
        let unreadable = match (&doc, &owners) {
            (Err(_), _) => Some("its document"),
            (_, Err(_)) => Some("its owners"),
            _ => None,
        };
        let doc = doc.unwrap_or_else(|_| Doc::unreadable(&row.trigger_type));
        let mut execution = Execution {
            id: parse_id::<ExecutionId>(&row.id)?,
            flow_id: parse_id::<FlowId>(&row.flow_id)?,
            tenant: parse_opt_id::<TenantId>(row.tenant.as_deref())?,
            owners: owners.unwrap_or_default(),
            trigger: doc.trigger,
            status: parse_enum(&row.status, "execution status")?,
            input: doc.input,
            created_at: from_millis(row.created_at)?,
            started_at: row.started_at.map(from_millis).transpose()?,
            finished_at: row.finished_at.map(from_millis).transpose()?,
            counters: doc.counters,
            steps: doc.steps,
            error: doc.error,
            idempotency_key: row.idempotency_key,
            lease_owner: row.lease_owner,
            lease_until: row.lease_until.map(from_millis).transpose()?,
            attempts: u32::try_from(row.attempts).unwrap_or(0),
            unreadable: false,
            revision: row.revision,
        };
        if let Some(what) = unreadable {
            execution.mark_unreadable(what);
        }
        Ok(execution)
    }
}

impl Doc {
    /// Stands in for a document that cannot be read: the trigger type from its column.
    fn unreadable(trigger_type: &str) -> Self {
        Doc {
            trigger: TriggerInfo {
                trigger_type: trigger_type.parse().unwrap_or(TriggerType::Manual),
                request_id: None,
            },
            input: Value::Null,
            counters: Counters::default(),
            steps: BTreeMap::new(),
            error: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_document_written_before_the_error_field_reads_without_error() {
        let old = r#"{"trigger":{"type":"webhook","requestId":null},"input":{"n":1},"counters":{"started":0,"succeeded":0,"errors":0},"steps":{}}"#;
        let doc: Doc = from_json(old, "execution document").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(doc.error, None);
    }
}
