//! Flow use cases: create (single and bulk), list, get, update (single and bulk), delete, and
//! start/stop (single and multiple).

use super::lifecycle::drive;
use super::{MAX_BULK_ITEMS, body_object, ownership};
use crate::actor::Actor;
use crate::error::{FieldError, PortError, ServiceError, ServiceResult};
use crate::event::{Event, names};
use crate::ids::FlowId;
use crate::lifecycle::{LifecycleInput, transition};
use crate::limits::Limits;
use crate::model::{Flow, FlowStatus};
use crate::permission::Permission;
use crate::ports::FlowRepository;
use crate::query::{Page, Params, parse_flow_query, parse_id};
use crate::time::Clock;
use crate::validate::Errors;
use crate::validate::flow::{STATUS_IS_READ_ONLY, check_flow_keys, parse_flow_document, status_matches};
use serde_json::{Map, Value};
use std::sync::Arc;

/// The 404 message for flows.
pub const NO_FLOW: &str = "No flow found";

/// The result of one id of a multiple start/stop: the raw id and its outcome.
pub type MultipleOutcome = (String, ServiceResult<Flow>);

/// Flow use cases.
pub struct FlowService {
    flows: Arc<dyn FlowRepository>,
    /// Where `GET /flows/{id}` reads: the store itself, or a cache in front of it.
    reads: Arc<dyn FlowRepository>,
    clock: Arc<dyn Clock>,
    limits: Limits,
}

impl FlowService {
    /// A service over the flow store, with the default [`Limits`].
    pub fn new(flows: Arc<dyn FlowRepository>, clock: Arc<dyn Clock>) -> Self {
        Self { reads: flows.clone(), flows, clock, limits: Limits::default() }
    }

    /// Validates flow documents within `limits` (nesting depth, node count).
    #[must_use]
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// The limits flow (and template) documents are validated within.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// `GET /flows/{id}` reads through `reads` (a [`crate::cache::FlowCache`] reader whose
    /// writer is this service's store); every other use case reads the store itself.
    #[must_use]
    pub fn with_cached_reads(mut self, reads: Arc<dyn FlowRepository>) -> Self {
        self.reads = reads;
        self
    }

    /// `POST /flows` with one object.
    ///
    /// # Errors
    /// `Forbidden` without `flows.write`; `Validation` with every problem.
    pub async fn create(&self, actor: &Actor, body: &Value) -> ServiceResult<Flow> {
        actor.require(Permission::FlowsWrite)?;
        self.create_one(actor, body).await
    }

    /// `POST /flows` with an array: one result per item, in order.
    ///
    /// # Errors
    /// `Forbidden` without `flows.write` and `flows.bulk`; `Validation` for an empty or
    /// oversized array.
    pub async fn create_many(
        &self,
        actor: &Actor,
        items: &[Value],
    ) -> ServiceResult<Vec<ServiceResult<Flow>>> {
        actor.require(Permission::FlowsWrite)?;
        actor.require(Permission::FlowsBulk)?;
        check_bulk_size(items.len())?;
        let mut out = Vec::with_capacity(items.len());
        for item in items {
            out.push(self.create_one(actor, item).await);
        }
        Ok(out)
    }

    async fn create_one(&self, actor: &Actor, body: &Value) -> ServiceResult<Flow> {
        let flow = self.build_new(actor, body)?;
        let event =
            Event::flow_repo(names::FLOW_CREATED, flow.id, flow.tenant, actor.user_id, flow.created_at);
        self.flows.insert(&flow, &[event]).await?;
        Ok(flow)
    }

    /// Validates `body` as a new flow owned by `actor`; used by create and template generation.
    pub(crate) fn build_new(&self, actor: &Actor, body: &Value) -> ServiceResult<Flow> {
        let mut errors: Vec<FieldError> = Vec::new();
        let doc = parse_flow_document(body, &self.limits);
        let doc = match doc {
            Ok(doc) => Some(doc),
            Err(e) => {
                errors.extend(e);
                None
            }
        };
        let Some(doc) = doc else { return Err(ServiceError::Validation(errors)) };
        if let Some(status) = &doc.status
            && !status_matches(status, FlowStatus::Inactive)
        {
            errors.push(FieldError::at("status", STATUS_IS_READ_ONLY));
        }
        let ownership = ownership::resolve(actor, doc.tenant, doc.owners, None);
        let (tenant, owners) = match ownership {
            Ok(v) => v,
            Err(e) => {
                errors.extend(e);
                return Err(ServiceError::Validation(errors));
            }
        };
        if !errors.is_empty() {
            return Err(ServiceError::Validation(errors));
        }
        let now = self.clock.now();
        Ok(Flow::new(doc.spec, tenant, owners, now))
    }

    /// Stores a flow built by [`FlowService::build_new`].
    pub(crate) async fn insert(&self, actor: &Actor, flow: &Flow) -> ServiceResult<()> {
        let event =
            Event::flow_repo(names::FLOW_CREATED, flow.id, flow.tenant, actor.user_id, flow.created_at);
        Ok(self.flows.insert(flow, &[event]).await?)
    }

    /// `GET /flows`.
    ///
    /// # Errors
    /// `Forbidden`, `Validation` of the parameters.
    pub async fn list(&self, actor: &Actor, params: &Params) -> ServiceResult<Page<Flow>> {
        actor.require(Permission::FlowsRead)?;
        let query = parse_flow_query(params, actor.visibility())?;
        Ok(self.flows.list(&query).await?)
    }

    /// `GET /flows/{id}`.
    ///
    /// # Errors
    /// `Forbidden`, `InvalidId`, `NotFound` (also for flows the caller may not see).
    pub async fn get(&self, actor: &Actor, id: &str) -> ServiceResult<Flow> {
        actor.require(Permission::FlowsRead)?;
        visible_in(self.reads.as_ref(), actor, parse_id(id)?).await
    }

    async fn visible(&self, actor: &Actor, id: FlowId) -> ServiceResult<Flow> {
        visible_in(self.flows.as_ref(), actor, id).await
    }

    /// `PATCH /flows/{id}`: top-level merge, full re-validation, inactive flows only.
    ///
    /// # Errors
    /// `Forbidden`, `InvalidId`, `NotFound`, `Validation`, `Conflict` unless inactive.
    pub async fn update(&self, actor: &Actor, id: &str, body: &Value) -> ServiceResult<Flow> {
        actor.require(Permission::FlowsWrite)?;
        let id = parse_id(id)?;
        let body = body_object(body, "flow")?;
        self.update_one(actor, id, &body, NO_FLOW.to_string()).await
    }

    async fn update_one(
        &self,
        actor: &Actor,
        id: FlowId,
        body: &Map<String, Value>,
        not_found: String,
    ) -> ServiceResult<Flow> {
        let mut key_errors = Errors::default();
        check_flow_keys(body, &mut key_errors);
        if let Err(errors) = key_errors.finish(()) {
            return Err(ServiceError::Validation(errors));
        }
        let flow = match self.flows.get(id).await? {
            Some(flow) if actor.can_see(flow.tenant, &flow.owners) => flow,
            _ => return Err(ServiceError::NotFound(not_found)),
        };
        transition(flow.status, &LifecycleInput::Edit).map_err(|r| ServiceError::Conflict(r.to_string()))?;
        let mut errors = Vec::new();
        if let Some(status) = body.get("status")
            && !status_matches(status, flow.status)
        {
            errors.push(FieldError::at("status", STATUS_IS_READ_ONLY));
        }
        let mut merged = editable_document(&flow);
        for (key, value) in body {
            if crate::validate::flow::WRITABLE_FIELDS.contains(&key.as_str()) && key != "status" {
                merged.insert(key.clone(), value.clone());
            }
        }
        // The webhook secret is write-only: an update that does not name it keeps it.
        if let Some(Value::Object(settings)) = merged.get_mut("flowSettings") {
            super::webhook_auth::keep_secret(&flow.spec.flow_settings, settings);
        }
        let doc = match parse_flow_document(&Value::Object(merged), &self.limits) {
            Ok(doc) => Some(doc),
            Err(e) => {
                errors.extend(e);
                None
            }
        };
        let Some(doc) = doc else { return Err(ServiceError::Validation(errors)) };
        let ownership = ownership::resolve(actor, doc.tenant, doc.owners, Some(flow.tenant));
        let (tenant, owners) = ownership.map_err(|e| {
            errors.extend(e);
            ServiceError::Validation(errors.clone())
        })?;
        if !errors.is_empty() {
            return Err(ServiceError::Validation(errors));
        }
        let now = self.clock.now();
        let mut next = flow;
        next.spec = doc.spec;
        next.tenant = tenant;
        next.owners = owners;
        next.updated_at = now;
        let event = Event::flow_repo(names::FLOW_MODIFIED, next.id, next.tenant, actor.user_id, now);
        match self.flows.save(&next, &[event], None).await {
            Ok(()) => {
                next.revision += 1;
                Ok(next)
            }
            Err(PortError::Conflict) => {
                Err(ServiceError::Conflict("The flow was changed concurrently; retry.".into()))
            }
            Err(PortError::NotFound) => Err(ServiceError::NotFound(NO_FLOW.into())),
            Err(e) => Err(e.into()),
        }
    }

    /// `PATCH /flows/bulk`: one result per item (`404`/`409`/`400` inside the results).
    ///
    /// # Errors
    /// `Forbidden` without `flows.bulk`; `Validation` when the body is not 1..=100 objects.
    pub async fn bulk_update(&self, actor: &Actor, body: &Value) -> ServiceResult<Vec<ServiceResult<Flow>>> {
        actor.require(Permission::FlowsBulk)?;
        let items: Vec<Value> = match body {
            Value::Array(items) => items.clone(),
            Value::Object(_) => vec![body.clone()],
            _ => {
                return Err(ServiceError::invalid(
                    "body",
                    "Expecting an array of partial flows, each with an id.",
                ));
            }
        };
        check_bulk_size(items.len())?;
        let mut out = Vec::with_capacity(items.len());
        for item in &items {
            out.push(self.bulk_item(actor, item).await);
        }
        Ok(out)
    }

    async fn bulk_item(&self, actor: &Actor, item: &Value) -> ServiceResult<Flow> {
        let mut body = body_object(item, "flow")?;
        let id = match body.remove("id") {
            Some(Value::String(raw)) => parse_id::<FlowId>(&raw)?,
            _ => return Err(ServiceError::invalid("id", "Each flow in a bulk update requires an id.")),
        };
        self.update_one(actor, id, &body, format!("Flow {id} not found")).await
    }

    /// `DELETE /flows/{id}`: inactive flows only.
    ///
    /// # Errors
    /// `Forbidden`, `InvalidId`, `NotFound`, `Conflict` unless inactive.
    pub async fn delete(&self, actor: &Actor, id: &str) -> ServiceResult<()> {
        actor.require(Permission::FlowsWrite)?;
        let flow = self.visible(actor, parse_id(id)?).await?;
        transition(flow.status, &LifecycleInput::Edit).map_err(|r| ServiceError::Conflict(r.to_string()))?;
        let event =
            Event::flow_repo(names::FLOW_DELETED, flow.id, flow.tenant, actor.user_id, self.clock.now());
        match self.flows.delete(&flow, &[event]).await {
            Ok(()) => Ok(()),
            Err(PortError::Conflict) => {
                Err(ServiceError::Conflict("The flow was changed concurrently; retry.".into()))
            }
            Err(PortError::NotFound) => Err(ServiceError::NotFound(NO_FLOW.into())),
            Err(e) => Err(e.into()),
        }
    }

    /// `POST /flows/{id}/start`: `inactive` -> `starting`, publishing `flow.starting`.
    ///
    /// # Errors
    /// `Forbidden`, `InvalidId`, `NotFound`, `Conflict` unless inactive.
    pub async fn start(&self, actor: &Actor, id: &str) -> ServiceResult<Flow> {
        actor.require(Permission::FlowsControl)?;
        self.control(actor, parse_id(id)?, &LifecycleInput::Start).await
    }

    /// `POST /flows/{id}/stop`: `active`/`starting` -> `stopping`, publishing `flow.stopping`.
    ///
    /// # Errors
    /// `Forbidden`, `InvalidId`, `NotFound`, `Conflict` from `inactive` or `stopping`.
    pub async fn stop(&self, actor: &Actor, id: &str) -> ServiceResult<Flow> {
        actor.require(Permission::FlowsControl)?;
        self.control(actor, parse_id(id)?, &LifecycleInput::Stop).await
    }

    async fn control(&self, actor: &Actor, id: FlowId, input: &LifecycleInput) -> ServiceResult<Flow> {
        let flow = self.visible(actor, id).await?;
        let started_by = matches!(input, LifecycleInput::Start).then_some(actor.user_id);
        drive(self.flows.as_ref(), self.clock.as_ref(), flow, input, started_by, None).await
    }

    /// `POST /flows/multiple/start`: one outcome per id, same order.
    ///
    /// # Errors
    /// `Forbidden`; `Validation` unless the body is an array of 1..=100 strings.
    pub async fn start_many(&self, actor: &Actor, body: &Value) -> ServiceResult<Vec<MultipleOutcome>> {
        self.control_many(actor, body, LifecycleInput::Start).await
    }

    /// `POST /flows/multiple/stop`: one outcome per id, same order.
    ///
    /// # Errors
    /// As [`FlowService::start_many`].
    pub async fn stop_many(&self, actor: &Actor, body: &Value) -> ServiceResult<Vec<MultipleOutcome>> {
        self.control_many(actor, body, LifecycleInput::Stop).await
    }

    async fn control_many(
        &self,
        actor: &Actor,
        body: &Value,
        input: LifecycleInput,
    ) -> ServiceResult<Vec<MultipleOutcome>> {
        actor.require(Permission::FlowsControl)?;
        let ids: Vec<String> = match body.as_array() {
            Some(items)
                if (1..=MAX_BULK_ITEMS).contains(&items.len()) && items.iter().all(Value::is_string) =>
            {
                items.iter().filter_map(|v| v.as_str().map(String::from)).collect()
            }
            _ => {
                return Err(ServiceError::invalid(
                    "body",
                    format!("Expecting an array of 1 to {MAX_BULK_ITEMS} flow ids."),
                ));
            }
        };
        let mut out = Vec::with_capacity(ids.len());
        for raw in ids {
            let outcome = match parse_id::<FlowId>(&raw) {
                Ok(id) => self.control(actor, id, &input).await,
                Err(e) => Err(e),
            };
            out.push((raw, outcome));
        }
        Ok(out)
    }
}

/// The flow `id` read from `flows`, if `actor` may see it.
async fn visible_in(flows: &dyn FlowRepository, actor: &Actor, id: FlowId) -> ServiceResult<Flow> {
    match flows.get(id).await? {
        Some(flow) if actor.can_see(flow.tenant, &flow.owners) => Ok(flow),
        _ => Err(ServiceError::NotFound(NO_FLOW.into())),
    }
}

fn check_bulk_size(len: usize) -> ServiceResult<()> {
    if (1..=MAX_BULK_ITEMS).contains(&len) {
        Ok(())
    } else {
        Err(ServiceError::invalid("body", format!("A bulk request takes 1 to {MAX_BULK_ITEMS} items.")))
    }
}

/// The writable fields of a stored flow as a document, the base of a PATCH merge.
fn editable_document(flow: &Flow) -> Map<String, Value> {
    let mut doc = match serde_json::to_value(&flow.spec) {
        Ok(Value::Object(m)) => m,
        _ => Map::new(),
    };
    doc.insert("owners".into(), serde_json::to_value(&flow.owners).unwrap_or(Value::Null));
    doc.insert("tenant".into(), serde_json::to_value(flow.tenant).unwrap_or(Value::Null));
    doc
}
