//! Executions: one run of a flow, its trigger, input message, status, per-step records and the
//! worker lease that lets a dead worker's run be detected (SPEC §7).

use super::Owner;
use crate::ids::{ExecutionId, FlowId, TenantId};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

/// Where an execution is (see [`crate::execution_lifecycle`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ExecutionStatus {
    /// Recorded, waiting for a worker.
    Queued,
    /// A worker holds the lease and runs it.
    Running,
    /// Every step ended without error.
    Succeeded,
    /// A step failed, or the run was given up.
    Failed,
    /// Cancelled by a user.
    Cancelled,
}

impl ExecutionStatus {
    /// Every status.
    pub const ALL: [ExecutionStatus; 5] = [
        ExecutionStatus::Queued,
        ExecutionStatus::Running,
        ExecutionStatus::Succeeded,
        ExecutionStatus::Failed,
        ExecutionStatus::Cancelled,
    ];

    /// The wire name.
    pub fn as_str(&self) -> &'static str {
        match self {
            ExecutionStatus::Queued => "queued",
            ExecutionStatus::Running => "running",
            ExecutionStatus::Succeeded => "succeeded",
            ExecutionStatus::Failed => "failed",
            ExecutionStatus::Cancelled => "cancelled",
        }
    }

    /// `succeeded`, `failed` or `cancelled`: nothing more will happen.
    pub fn is_terminal(&self) -> bool {
        matches!(self, ExecutionStatus::Succeeded | ExecutionStatus::Failed | ExecutionStatus::Cancelled)
    }
}

impl fmt::Display for ExecutionStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ExecutionStatus {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        ExecutionStatus::ALL.into_iter().find(|st| st.as_str() == s).ok_or(())
    }
}

/// What started an execution.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TriggerType {
    /// A call of `/webhooks/{flowId}` (or `/hook/{flowId}`).
    Webhook,
    /// The flow's cron.
    Scheduler,
    /// A user (e.g. `POST /executions/{id}/retry`).
    Manual,
}

impl TriggerType {
    /// The wire name.
    pub fn as_str(&self) -> &'static str {
        match self {
            TriggerType::Webhook => "webhook",
            TriggerType::Scheduler => "scheduler",
            TriggerType::Manual => "manual",
        }
    }
}

impl FromStr for TriggerType {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        [TriggerType::Webhook, TriggerType::Scheduler, TriggerType::Manual]
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or(())
    }
}

/// `trigger: {type, requestId}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TriggerInfo {
    /// What started the execution.
    #[serde(rename = "type")]
    pub trigger_type: TriggerType,
    /// The caller's request id (webhooks), if any.
    pub request_id: Option<String>,
}

/// Where one step (node) of an execution is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StepStatus {
    /// The node is processing messages.
    Running,
    /// Every message the node received was processed without error.
    Succeeded,
    /// The node failed on at least one message.
    Failed,
}

/// How many sample output messages a step keeps.
pub const SAMPLE_OUTPUT_LIMIT: usize = 5;

/// One step's record: `{status, in, out, errors, startedAt, finishedAt, lastError, sampleOutput}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StepRecord {
    /// The node's component (`http`, `jq`, ...), for usage reports.
    #[serde(default)]
    pub component_id: String,
    /// Its status.
    pub status: StepStatus,
    /// Messages received.
    #[serde(rename = "in")]
    pub in_count: u64,
    /// Messages emitted.
    #[serde(rename = "out")]
    pub out_count: u64,
    /// Messages whose processing failed.
    pub errors: u64,
    /// When the node received its first message.
    #[serde(with = "super::millis")]
    pub started_at: DateTime<Utc>,
    /// When the node finished its last message.
    #[serde(with = "super::millis_opt")]
    pub finished_at: Option<DateTime<Utc>>,
    /// The last error message.
    pub last_error: Option<String>,
    /// The first [`SAMPLE_OUTPUT_LIMIT`] output messages.
    pub sample_output: Vec<Value>,
}

impl StepRecord {
    /// A running step started at `at`, with nothing counted yet.
    pub fn started(component_id: &str, at: DateTime<Utc>) -> Self {
        Self {
            component_id: component_id.into(),
            status: StepStatus::Running,
            in_count: 0,
            out_count: 0,
            errors: 0,
            started_at: at,
            finished_at: None,
            last_error: None,
            sample_output: Vec::new(),
        }
    }

    /// Counts one output message, keeping it as a sample while fewer than the limit are kept.
    /// A sample keeps what a step produces, the message's `data` and (non-empty)
    /// `attachments`; the envelope every message of a run repeats (headers, query, URL,
    /// metadata) is kept once, in the execution's `input`.
    pub fn record_output(&mut self, message: &Value) {
        self.out_count += 1;
        if self.sample_output.len() < SAMPLE_OUTPUT_LIMIT {
            self.sample_output.push(sample_of(message));
        }
    }
}

/// The part of `message` kept as a sample (see [`StepRecord::record_output`]); a message that
/// is not an object is kept whole.
fn sample_of(message: &Value) -> Value {
    let Value::Object(fields) = message else { return message.clone() };
    let mut sample = serde_json::Map::new();
    if let Some(data) = fields.get("data") {
        sample.insert("data".into(), data.clone());
    }
    match fields.get("attachments") {
        Some(Value::Object(attachments)) if attachments.is_empty() => {}
        Some(attachments) => {
            sample.insert("attachments".into(), attachments.clone());
        }
        None => {}
    }
    Value::Object(sample)
}

/// `counters: {started, succeeded, errors}` over all steps.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counters {
    /// Step runs started.
    pub started: u64,
    /// Step runs that succeeded.
    pub succeeded: u64,
    /// Step runs that failed.
    pub errors: u64,
}

/// One run of a flow.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Execution {
    /// Its id.
    pub id: ExecutionId,
    /// The flow run.
    pub flow_id: FlowId,
    /// The flow's tenant.
    pub tenant: Option<TenantId>,
    /// The flow's owners when the execution was created (who may see it).
    pub owners: Vec<Owner>,
    /// What started it.
    pub trigger: TriggerInfo,
    /// Its status.
    pub status: ExecutionStatus,
    /// The message given to the trigger node.
    pub input: Value,
    /// When it was recorded.
    #[serde(with = "super::millis")]
    pub created_at: DateTime<Utc>,
    /// When a worker first claimed it.
    #[serde(with = "super::millis_opt")]
    pub started_at: Option<DateTime<Utc>>,
    /// When it reached a terminal status.
    #[serde(with = "super::millis_opt")]
    pub finished_at: Option<DateTime<Utc>>,
    /// Totals over the steps.
    pub counters: Counters,
    /// One record per node id that ran.
    pub steps: BTreeMap<String, StepRecord>,
    /// Why the execution failed as a whole (a lost worker, a deleted flow), if it did.
    pub error: Option<String>,
    /// The caller's idempotency key (webhooks) or the due time (cron); internal.
    #[serde(skip)]
    pub idempotency_key: Option<String>,
    /// The worker holding the lease, while running.
    #[serde(skip)]
    pub lease_owner: Option<String>,
    /// When the lease runs out; a running execution past it was left by a dead worker.
    #[serde(skip)]
    pub lease_until: Option<DateTime<Utc>>,
    /// Runs started so far, each counted durably before it began (by the claim, or by the
    /// insert of an inline run): a run whose process died stays counted, so an execution that
    /// kills its process cannot be run more often than the attempt limit allows.
    #[serde(default)]
    pub attempts: u32,
    /// Set when the stored record could not be read back (a document too deep or corrupt):
    /// what could be read is kept, `input` is null, the steps are empty and `error` says why
    /// (see [`Execution::mark_unreadable`]). Such an execution is never run; recovery fails it.
    #[serde(skip)]
    pub unreadable: bool,
    /// Optimistic-concurrency revision, incremented by every save and claim; internal.
    #[serde(skip)]
    pub revision: i64,
}

impl Execution {
    /// A queued execution of `flow_id` with `input`, created at `at`.
    pub fn queued(
        flow_id: FlowId,
        tenant: Option<TenantId>,
        owners: Vec<Owner>,
        trigger: TriggerInfo,
        input: Value,
        at: DateTime<Utc>,
    ) -> Self {
        Self {
            id: ExecutionId::new(),
            flow_id,
            tenant,
            owners,
            trigger,
            status: ExecutionStatus::Queued,
            input,
            created_at: at,
            started_at: None,
            finished_at: None,
            counters: Counters::default(),
            steps: BTreeMap::new(),
            error: None,
            idempotency_key: None,
            lease_owner: None,
            lease_until: None,
            attempts: 0,
            unreadable: false,
            revision: 0,
        }
    }

    /// Turns an execution whose stored document (or owners) could not be read into its
    /// readable remains: no input, no steps, zero counters, and an `error` naming `what` could
    /// not be read. Its id, flow, status, times, lease and revision stay as stored, so it is
    /// listed like any other and can still be addressed (failed, cancelled).
    pub fn mark_unreadable(&mut self, what: &str) {
        self.unreadable = true;
        self.input = Value::Null;
        self.steps.clear();
        self.counters = Counters::default();
        self.error = Some(unreadable_message(what));
    }
}

/// The `error` of an execution whose stored record could not be read.
pub fn unreadable_message(what: &str) -> String {
    format!(
        "The stored record of this execution could not be read ({what}); its input and steps are not shown."
    )
}

impl Execution {
    /// What a `?sync=true` webhook answers once the execution ended: the `data` of the first
    /// output message of the step that finished last (`{}` when it emitted none), or the
    /// error of the failed step (or of the execution).
    ///
    /// # Errors
    /// The error message when the execution failed.
    pub fn reply(&self) -> Result<Value, String> {
        let last = self.last_finished_step()?;
        Ok(last
            .and_then(|id| self.steps[id].sample_output.first())
            .map_or_else(no_reply, |message| message.get("data").cloned().unwrap_or_else(|| message.clone())))
    }

    /// [`Execution::reply`], taken out of the execution instead of copied.
    ///
    /// # Errors
    /// The error message when the execution failed.
    pub fn into_reply(mut self) -> Result<Value, String> {
        let Some(last) = self.last_finished_step()?.cloned() else { return Ok(no_reply()) };
        let message = self.steps.remove(&last).and_then(|step| step.sample_output.into_iter().next());
        Ok(match message {
            Some(Value::Object(mut fields)) => fields.remove("data").unwrap_or(Value::Object(fields)),
            Some(message) => message,
            None => no_reply(),
        })
    }

    /// The id of the step that finished last (ties: the smallest id), or the error of a failed
    /// execution.
    fn last_finished_step(&self) -> Result<Option<&String>, String> {
        if self.status == ExecutionStatus::Failed {
            let failed = self
                .steps
                .values()
                .filter(|s| s.status == StepStatus::Failed)
                .find_map(|s| s.last_error.clone());
            return Err(failed
                .or_else(|| self.error.clone())
                .unwrap_or_else(|| "The execution failed.".into()));
        }
        Ok(self
            .steps
            .iter()
            .filter(|(_, s)| s.finished_at.is_some())
            .max_by(|(a_id, a), (b_id, b)| a.finished_at.cmp(&b.finished_at).then(b_id.cmp(a_id)))
            .map(|(id, _)| id))
    }
}

/// The reply of an execution whose last step emitted nothing: `{}`.
fn no_reply() -> Value {
    Value::Object(serde_json::Map::new())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn serializes_in_camel_case_with_in_and_out() {
        let at = DateTime::from_timestamp_millis(1_700_000_000_000).unwrap_or_default();
        let trigger = TriggerInfo { trigger_type: TriggerType::Webhook, request_id: Some("r1".into()) };
        let mut exec = Execution::queued(FlowId::new(), None, vec![], trigger, json!({"data": 1}), at);
        let mut step = StepRecord::started("jq", at);
        for i in 0..7 {
            step.record_output(&json!(i));
        }
        exec.steps.insert("a".into(), step);
        exec.lease_owner = Some("w1".into());
        let v = serde_json::to_value(&exec).unwrap_or_default();
        assert_eq!(v["trigger"], json!({"type": "webhook", "requestId": "r1"}));
        assert_eq!(v["status"], "queued");
        assert_eq!(v["startedAt"], Value::Null);
        assert_eq!(v["steps"]["a"]["out"], 7);
        assert_eq!(v["steps"]["a"]["in"], 0);
        assert_eq!(v["steps"]["a"]["sampleOutput"], json!([0, 1, 2, 3, 4]));
        assert!(v.get("leaseOwner").is_none() && v.get("revision").is_none());
        let back: Execution = serde_json::from_value(v).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(back.steps, exec.steps);
    }

    #[test]
    fn a_sample_keeps_data_and_attachments_not_the_envelope() {
        let mut step = StepRecord::started("jq", Utc::now());
        step.record_output(&json!({
            "id": "m1", "data": {"a": 1}, "attachments": {}, "headers": {"host": "x"},
            "query": {"sync": "true"}, "url": "/webhooks/f", "metadata": {"source": {}}
        }));
        step.record_output(&json!({"data": 2, "attachments": {"f.txt": {"size": 3}}}));
        assert_eq!(
            step.sample_output,
            vec![json!({"data": {"a": 1}}), json!({"data": 2, "attachments": {"f.txt": {"size": 3}}})]
        );
        assert_eq!(step.out_count, 2);
    }

    #[test]
    fn into_reply_answers_what_reply_answers() {
        let at = DateTime::from_timestamp_millis(1_700_000_000_000).unwrap_or_default();
        let trigger = TriggerInfo { trigger_type: TriggerType::Webhook, request_id: None };
        let base = Execution::queued(FlowId::new(), None, vec![], trigger, json!({"data": 1}), at);
        let step = |finished_ms: i64, outputs: &[Value], failed: bool| {
            let mut step = StepRecord::started("jq", at);
            for output in outputs {
                step.record_output(output);
            }
            step.finished_at = DateTime::from_timestamp_millis(1_700_000_000_000 + finished_ms);
            if failed {
                step.status = StepStatus::Failed;
                step.last_error = Some("boom".into());
            }
            step
        };
        let mut cases = Vec::new();
        let mut data = base.clone();
        data.status = ExecutionStatus::Succeeded;
        data.steps.insert("in".into(), step(1, &[json!({"data": "first"})], false));
        data.steps.insert("out".into(), step(2, &[json!({"data": {"x": 1}}), json!({"data": 2})], false));
        cases.push((data.clone(), Ok(json!({"x": 1}))));
        let mut tie = data.clone();
        tie.steps.insert("a".into(), step(2, &[json!({"data": "a"})], false));
        cases.push((tie, Ok(json!("a"))));
        let mut bare = data.clone();
        bare.steps.insert("out".into(), step(2, &[json!(7)], false));
        cases.push((bare, Ok(json!(7))));
        let mut silent = data.clone();
        silent.steps.insert("out".into(), step(2, &[], false));
        cases.push((silent, Ok(json!({}))));
        let mut failed = data;
        failed.status = ExecutionStatus::Failed;
        failed.steps.insert("out".into(), step(2, &[], true));
        cases.push((failed, Err("boom".to_string())));
        for (execution, expected) in cases {
            assert_eq!(execution.reply(), expected);
            assert_eq!(execution.into_reply(), expected);
        }
    }
}
