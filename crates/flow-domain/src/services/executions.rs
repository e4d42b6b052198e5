//! Execution use cases (SPEC §7): list, get, cancel, retry, the usage report
//! (`/icenter/executions`) and a step's log. Workers use the repository and
//! [`crate::execution_lifecycle`] directly; these are the user-facing commands.

use crate::actor::Actor;
use crate::error::{PortError, ServiceError, ServiceResult};
use crate::event::Event;
use crate::execution_lifecycle::{ExecutionEffect, ExecutionInput, transition};
use crate::ids::{ExecutionId, FlowId};
use crate::model::{Execution, TriggerInfo, TriggerType};
use crate::permission::Permission;
use crate::ports::{ExecutionRepository, FlowRepository, StepUsage};
use crate::query::{Page, ParamErrors, Params, parse_execution_query, parse_id};
use crate::time::Clock;
use chrono::{DateTime, Duration, NaiveDate, Utc};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;

/// The 404 message for executions.
pub const NO_EXECUTION: &str = "No execution found";
/// The 404 message for a node id the flow does not have.
pub const NO_STEP: &str = "No step found";

/// How many times a user command re-reads after losing a race with a worker.
const RACE_RETRIES: usize = 8;

/// Execution use cases.
pub struct ExecutionService {
    executions: Arc<dyn ExecutionRepository>,
    flows: Arc<dyn FlowRepository>,
    clock: Arc<dyn Clock>,
}

/// `groupby` of the usage report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UsageGroup {
    /// Per flow owner (user).
    User,
    /// Per flow.
    Flow,
    /// Per component.
    Component,
}

impl UsageGroup {
    fn key(self) -> &'static str {
        match self {
            UsageGroup::User => "user",
            UsageGroup::Flow => "flow",
            UsageGroup::Component => "component",
        }
    }
}

fn read_permission(actor: &Actor) -> ServiceResult<()> {
    actor.require(Permission::ExecutionsRead).or_else(|_| actor.require(Permission::FlowsRead))
}

impl ExecutionService {
    /// A service over the execution and flow stores.
    pub fn new(
        executions: Arc<dyn ExecutionRepository>,
        flows: Arc<dyn FlowRepository>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self { executions, flows, clock }
    }

    /// `GET /executions`: newest first, filtered, paged, only what the caller may see.
    ///
    /// # Errors
    /// `Forbidden` without `executions.read` or `flows.read`; `Validation` for bad filters.
    pub async fn list(&self, actor: &Actor, params: &Params) -> ServiceResult<Page<Execution>> {
        read_permission(actor)?;
        let query = parse_execution_query(params, actor.visibility())?;
        Ok(self.executions.list(&query).await?)
    }

    /// `GET /executions/{id}`.
    ///
    /// # Errors
    /// `Forbidden`, `InvalidId`, `NotFound` (also for executions the caller may not see).
    pub async fn get(&self, actor: &Actor, id: &str) -> ServiceResult<Execution> {
        read_permission(actor)?;
        self.visible(actor, parse_id(id)?).await
    }

    /// The execution with `id`, unchecked: for the webhook's own `?sync=true` wait only.
    ///
    /// # Errors
    /// `NotFound`, `Unavailable`.
    pub async fn status_of(&self, id: ExecutionId) -> ServiceResult<Execution> {
        self.executions.get(id).await?.ok_or_else(|| ServiceError::NotFound(NO_EXECUTION.into()))
    }

    async fn visible(&self, actor: &Actor, id: ExecutionId) -> ServiceResult<Execution> {
        match self.executions.get(id).await? {
            Some(e) if actor.can_see(e.tenant, &e.owners) => Ok(e),
            _ => Err(ServiceError::NotFound(NO_EXECUTION.into())),
        }
    }

    /// `POST /executions/{id}/cancel`: a queued or running execution becomes `cancelled`; the
    /// worker stops before its next step.
    ///
    /// # Errors
    /// `Forbidden` without `flows.control`; `InvalidId`, `NotFound`; `Conflict` once finished.
    pub async fn cancel(&self, actor: &Actor, id: &str) -> ServiceResult<Execution> {
        actor.require(Permission::FlowsControl)?;
        let id = parse_id(id)?;
        for _ in 0..RACE_RETRIES {
            let mut execution = self.visible(actor, id).await?;
            let step = transition(execution.status, &ExecutionInput::Cancel)
                .map_err(|rejection| ServiceError::Conflict(rejection.to_string()))?;
            execution.status = step.status;
            apply_effects(&mut execution, &step.effects, self.clock.now());
            match self.executions.save(&execution, &[]).await {
                Ok(()) => {
                    execution.revision += 1;
                    return Ok(execution);
                }
                Err(PortError::Conflict) => continue,
                Err(err) => return Err(err.into()),
            }
        }
        Err(ServiceError::Conflict("The execution is changing; try again.".into()))
    }

    /// `POST /executions/{id}/retry`: a new queued execution of the same flow with the same
    /// input (trigger `manual`).
    ///
    /// # Errors
    /// `Forbidden` without `flows.control`; `InvalidId`, `NotFound`; `Conflict` while the
    /// execution has not finished, when its flow was deleted, or when its stored input could
    /// not be read back.
    pub async fn retry(&self, actor: &Actor, id: &str) -> ServiceResult<Execution> {
        actor.require(Permission::FlowsControl)?;
        let original = self.visible(actor, parse_id(id)?).await?;
        transition(original.status, &ExecutionInput::Retry)
            .map_err(|rejection| ServiceError::Conflict(rejection.to_string()))?;
        if original.unreadable || original.input.is_null() {
            return Err(ServiceError::Conflict(
                "The input of this execution could not be read back; it cannot be retried.".into(),
            ));
        }
        if self.flows.get(original.flow_id).await?.is_none() {
            return Err(ServiceError::Conflict("The flow of this execution was deleted.".into()));
        }
        let now = self.clock.now();
        let trigger = TriggerInfo { trigger_type: TriggerType::Manual, request_id: None };
        let retry = Execution::queued(
            original.flow_id,
            original.tenant,
            original.owners.clone(),
            trigger,
            original.input.clone(),
            now,
        );
        let event = Event::flow_execute(retry.flow_id, retry.id, now);
        self.executions.insert(&retry, &[event]).await?;
        Ok(retry)
    }

    /// `GET /flows/{id}/steps/{stepId}/logs`: the step's record in each execution of the
    /// flow that ran it, newest first.
    ///
    /// # Errors
    /// `Forbidden` without `flows.read`; `InvalidId`; `NotFound` for an invisible flow or a
    /// node id the flow does not have; `Validation` for bad paging.
    pub async fn step_logs(
        &self,
        actor: &Actor,
        flow_id: &str,
        step_id: &str,
        params: &Params,
    ) -> ServiceResult<Page<Value>> {
        actor.require(Permission::FlowsRead)?;
        let flow_id: FlowId = parse_id(flow_id)?;
        let flow = match self.flows.get(flow_id).await? {
            Some(flow) if actor.can_see(flow.tenant, &flow.owners) => flow,
            _ => return Err(ServiceError::NotFound(super::flows::NO_FLOW.into())),
        };
        if flow.spec.graph.node(step_id).is_none() {
            return Err(ServiceError::NotFound(NO_STEP.into()));
        }
        let page_params: Params = params
            .iter()
            .filter(|(k, _)| k.starts_with("page["))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let mut query = parse_execution_query(&page_params, actor.visibility())?;
        query.flow_id = Some(flow_id);
        query.step = Some(step_id.to_string());
        let page = self.executions.list(&query).await?;
        Ok(page.map(|execution| {
            let step = execution.steps.get(step_id);
            json!({
                "executionId": execution.id,
                "executionStatus": execution.status,
                "stepId": step_id,
                "step": step,
            })
        }))
    }

    /// `GET /icenter/executions?start&end&groupby`: executed steps in the caller's tenant
    /// (every tenant for a tenant-less administrator), grouped by user, flow or component.
    ///
    /// # Errors
    /// `Forbidden` without `executions.read` or `flows.read`; `Validation` for bad dates or
    /// an unknown `groupby`.
    pub async fn usage(&self, actor: &Actor, params: &Params) -> ServiceResult<Vec<Value>> {
        read_permission(actor)?;
        let (from, to, group) = parse_usage_params(params, self.clock.now())?;
        let tenant = actor.tenant;
        let mut rows = self.executions.usage(tenant, from, to).await?;
        if !actor.is_admin() && !actor.is_tenant_admin() {
            // Plain users count only what they may see: the flows they own.
            let mut visible = BTreeMap::new();
            for row in &rows {
                if let std::collections::btree_map::Entry::Vacant(slot) = visible.entry(row.flow_id) {
                    let flow = self.flows.get(row.flow_id).await?;
                    slot.insert(flow.is_some_and(|f| actor.can_see(f.tenant, &f.owners)));
                }
            }
            rows.retain(|row| visible.get(&row.flow_id).copied().unwrap_or(false));
        }
        Ok(group_usage(&rows, group))
    }
}

/// Applies the bookkeeping effects of a transition (the ones a user command can cause).
pub fn apply_effects(execution: &mut Execution, effects: &[ExecutionEffect], now: DateTime<Utc>) {
    for effect in effects {
        match effect {
            ExecutionEffect::RecordFinish => execution.finished_at = Some(now),
            ExecutionEffect::ReleaseLease => {
                execution.lease_owner = None;
                execution.lease_until = None;
            }
            ExecutionEffect::RecordError(reason) => execution.error = Some(reason.clone()),
            ExecutionEffect::CountAttempt => execution.attempts += 1,
            ExecutionEffect::TakeLease | ExecutionEffect::SpawnRetry => {}
        }
    }
}

fn parse_usage_params(
    params: &Params,
    now: DateTime<Utc>,
) -> ServiceResult<(DateTime<Utc>, DateTime<Utc>, UsageGroup)> {
    let mut errors = ParamErrors::default();
    let mut date = |name: &str| -> Option<NaiveDate> {
        let raw = params.get(name)?;
        NaiveDate::parse_from_str(raw, "%Y-%m-%d")
            .map_err(|_| errors.push_public(name, "Must be a date YYYY-MM-DD."))
            .ok()
    };
    let start = date("start");
    let end = date("end");
    let group = match params.get("groupby").map(String::as_str) {
        None | Some("user") => UsageGroup::User,
        Some("flow") => UsageGroup::Flow,
        Some("component") => UsageGroup::Component,
        Some(_) => {
            errors.push_public("groupby", "Must be user, flow or component.");
            UsageGroup::User
        }
    };
    let midnight = |d: NaiveDate| d.and_hms_opt(0, 0, 0).map(|t| t.and_utc());
    let to = end.and_then(|d| midnight(d + Duration::days(1))).unwrap_or(now);
    let from = start.and_then(midnight).unwrap_or(to - Duration::days(30));
    if from >= to {
        errors.push_public("start", "Must be on or before end.");
    }
    errors.into_result((from, to, group))
}

fn group_usage(rows: &[StepUsage], group: UsageGroup) -> Vec<Value> {
    struct Bucket {
        tenant: Option<String>,
        total: u64,
        flows: BTreeMap<String, u64>,
    }
    let mut buckets: BTreeMap<String, Bucket> = BTreeMap::new();
    for row in rows {
        let key = match group {
            UsageGroup::User => row.user.map(|u| u.to_string()).unwrap_or_default(),
            UsageGroup::Flow => row.flow_id.to_string(),
            UsageGroup::Component => row.component_id.clone(),
        };
        let bucket = buckets.entry(key).or_insert_with(|| Bucket {
            tenant: row.tenant.map(|t| t.to_string()),
            total: 0,
            flows: BTreeMap::new(),
        });
        bucket.total += row.count;
        *bucket.flows.entry(row.flow_id.to_string()).or_default() += row.count;
    }
    buckets
        .into_iter()
        .map(|(key, bucket)| {
            let flows: Vec<Value> =
                bucket.flows.into_iter().map(|(id, count)| json!({ "id": id, "count": count })).collect();
            let mut row =
                json!({ "id": key, "tenant": bucket.tenant, "total": bucket.total, "flows": flows });
            row[group.key()] = Value::String(key);
            row
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::TenantId;

    #[test]
    fn usage_groups_by_each_dimension() {
        let (f1, f2) = (FlowId::new(), FlowId::new());
        let user = uuid::Uuid::now_v7();
        let tenant = Some(TenantId::new());
        let row = |flow_id, component: &str, count| StepUsage {
            flow_id,
            tenant,
            user: Some(user),
            component_id: component.into(),
            count,
        };
        let rows = vec![row(f1, "http", 2), row(f1, "jq", 3), row(f2, "http", 4)];
        let by_user = group_usage(&rows, UsageGroup::User);
        assert_eq!(by_user.len(), 1);
        assert_eq!(by_user[0]["total"], 9);
        assert_eq!(by_user[0]["user"], user.to_string());
        assert_eq!(by_user[0]["flows"].as_array().map(Vec::len), Some(2));
        let by_component = group_usage(&rows, UsageGroup::Component);
        assert_eq!(by_component.len(), 2);
        assert_eq!(by_component[0]["component"], "http");
        assert_eq!(by_component[0]["total"], 6);
        let by_flow = group_usage(&rows, UsageGroup::Flow);
        assert_eq!(by_flow.len(), 2);
    }

    #[test]
    fn usage_params_default_to_the_last_month() {
        let now = DateTime::from_timestamp(1_800_000_000, 0).unwrap_or_default();
        let (from, to, group) = parse_usage_params(&Params::new(), now).unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!((to - from).num_days(), 30);
        assert_eq!(group, UsageGroup::User);
        let mut params = Params::new();
        params.insert("start".into(), "2026-05-01".into());
        params.insert("end".into(), "2026-05-31".into());
        params.insert("groupby".into(), "component".into());
        let (from, to, group) = parse_usage_params(&params, now).unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(from.to_rfc3339(), "2026-05-01T00:00:00+00:00");
        assert_eq!(to.to_rfc3339(), "2026-06-01T00:00:00+00:00");
        assert_eq!(group, UsageGroup::Component);
        params.insert("groupby".into(), "planet".into());
        params.insert("end".into(), "May".into());
        assert!(matches!(parse_usage_params(&params, now), Err(ServiceError::Validation(e)) if e.len() == 2));
    }
}
