//! Template use cases, including generation of a flow from a published template. A template's
//! webhook secret (`flowSettings.webhooks.secret`) is write-only as a flow's: the HTTP adapter
//! never renders it, an update that omits it keeps it, and a generated flow inherits it.

use super::flows::FlowService;
use super::{body_object, ownership};
use crate::actor::Actor;
use crate::error::{PortError, ServiceError, ServiceResult};
use crate::event::{Event, names};
use crate::ids::TemplateId;
use crate::merge::deep_merge;
use crate::model::{Flow, Template, TemplateStatus};
use crate::permission::Permission;
use crate::ports::TemplateRepository;
use crate::query::{Page, Params, parse_id, parse_template_query};
use crate::time::Clock;
use crate::validate::template::{
    READ_ONLY_FIELDS, WRITABLE_FIELDS, check_template_keys, parse_template_document,
};
use crate::validate::{Errors, reject_unknown};
use serde_json::{Map, Value, json};
use std::sync::Arc;

/// The 404 message for templates.
pub const NO_TEMPLATE: &str = "Template not found";

/// Fields a generate body may fill in.
const GENERATE_FIELDS: &[&str] = &["name", "description", "type", "cron", "graph", "flowSettings"];

/// Template use cases.
pub struct TemplateService {
    templates: Arc<dyn TemplateRepository>,
    flows: Arc<FlowService>,
    clock: Arc<dyn Clock>,
}

impl TemplateService {
    /// A service over the template store; generated flows go through `flows`.
    pub fn new(
        templates: Arc<dyn TemplateRepository>,
        flows: Arc<FlowService>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self { templates, flows, clock }
    }

    /// `GET /templates`.
    ///
    /// # Errors
    /// `Forbidden`, `Validation` of the parameters.
    pub async fn list(&self, actor: &Actor, params: &Params) -> ServiceResult<Page<Template>> {
        actor.require(Permission::TemplatesRead)?;
        let query = parse_template_query(params, actor.visibility())?;
        Ok(self.templates.list(&query).await?)
    }

    /// `POST /templates`.
    ///
    /// # Errors
    /// `Forbidden`, `Validation`.
    pub async fn create(&self, actor: &Actor, body: &Value) -> ServiceResult<Template> {
        actor.require(Permission::TemplatesWrite)?;
        let doc = parse_template_document(body, self.flows.limits()).map_err(ServiceError::Validation)?;
        let (tenant, owners) =
            ownership::resolve(actor, doc.tenant, doc.owners, None).map_err(ServiceError::Validation)?;
        let now = self.clock.now();
        let template = Template {
            id: TemplateId::new(),
            spec: doc.spec,
            tenant,
            owners,
            created_at: now,
            updated_at: now,
            revision: 0,
        };
        let event = Event::template_repo(names::TEMPLATE_CREATED, template.id, tenant, actor.user_id, now);
        self.templates.insert(&template, &[event]).await?;
        Ok(template)
    }

    /// `GET /templates/{id}`.
    ///
    /// # Errors
    /// `Forbidden`, `InvalidId`, `NotFound`.
    pub async fn get(&self, actor: &Actor, id: &str) -> ServiceResult<Template> {
        actor.require(Permission::TemplatesRead)?;
        self.visible(actor, parse_id(id)?).await
    }

    async fn visible(&self, actor: &Actor, id: TemplateId) -> ServiceResult<Template> {
        match self.templates.get(id).await? {
            Some(t) if actor.can_see(t.tenant, &t.owners) => Ok(t),
            _ => Err(ServiceError::NotFound(NO_TEMPLATE.into())),
        }
    }

    /// `PATCH /templates/{id}`: top-level merge; a published template accepts only a change
    /// of `status`.
    ///
    /// # Errors
    /// `Forbidden`, `InvalidId`, `NotFound`, `Validation`, `Conflict`.
    pub async fn update(&self, actor: &Actor, id: &str, body: &Value) -> ServiceResult<Template> {
        actor.require(Permission::TemplatesWrite)?;
        let id = parse_id(id)?;
        let body = body_object(body, "template")?;
        let mut key_errors = Errors::default();
        check_template_keys(&body, &mut key_errors);
        key_errors.finish(()).map_err(ServiceError::Validation)?;
        let template = self.visible(actor, id).await?;
        if template.spec.status == TemplateStatus::Published
            && body.keys().any(|k| k != "status" && !READ_ONLY_FIELDS.contains(&k.as_str()))
        {
            return Err(ServiceError::Conflict(
                "Template is published. Only its status can be changed.".into(),
            ));
        }
        let mut merged = match serde_json::to_value(&template.spec) {
            Ok(Value::Object(m)) => m,
            _ => Map::new(),
        };
        merged.insert("owners".into(), json!(template.owners));
        merged.insert("tenant".into(), json!(template.tenant));
        for (key, value) in &body {
            if WRITABLE_FIELDS.contains(&key.as_str()) {
                merged.insert(key.clone(), value.clone());
            }
        }
        // The webhook secret is write-only, as for flows: an update that does not name it
        // keeps it.
        if let Some(Value::Object(settings)) = merged.get_mut("flowSettings") {
            super::webhook_auth::keep_secret(&template.spec.flow_settings, settings);
        }
        let doc = parse_template_document(&Value::Object(merged), self.flows.limits())
            .map_err(ServiceError::Validation)?;
        let (tenant, owners) = ownership::resolve(actor, doc.tenant, doc.owners, Some(template.tenant))
            .map_err(ServiceError::Validation)?;
        let now = self.clock.now();
        let mut next = template;
        next.spec = doc.spec;
        next.tenant = tenant;
        next.owners = owners;
        next.updated_at = now;
        let event = Event::template_repo(names::TEMPLATE_MODIFIED, next.id, next.tenant, actor.user_id, now);
        save_result(self.templates.save(&next, &[event]).await)?;
        next.revision += 1;
        Ok(next)
    }

    /// `DELETE /templates/{id}`: drafts only.
    ///
    /// # Errors
    /// `Forbidden`, `InvalidId`, `NotFound`, `Conflict` when published.
    pub async fn delete(&self, actor: &Actor, id: &str) -> ServiceResult<()> {
        actor.require(Permission::TemplatesWrite)?;
        let template = self.visible(actor, parse_id(id)?).await?;
        if template.spec.status == TemplateStatus::Published {
            return Err(ServiceError::Conflict(
                "Template is published. Only draft templates can be deleted.".into(),
            ));
        }
        let event = Event::template_repo(
            names::TEMPLATE_DELETED,
            template.id,
            template.tenant,
            actor.user_id,
            self.clock.now(),
        );
        save_result(self.templates.delete(&template, &[event]).await)
    }

    /// `POST /templates/{id}/generate`: deep-merges `body` into the published template,
    /// validates the result as a flow and creates it `inactive`, owned by the caller.
    ///
    /// # Errors
    /// `Forbidden` without `flows.write`; `InvalidId`; `NotFound`; `Conflict` unless
    /// published; `Validation` with every error of the resulting flow.
    pub async fn generate(&self, actor: &Actor, id: &str, body: &Value) -> ServiceResult<Flow> {
        actor.require(Permission::FlowsWrite)?;
        let id: TemplateId = parse_id(id)?;
        let patch = match body {
            Value::Null => Map::new(),
            other => body_object(other, "generate request")?,
        };
        let mut errors = Errors::default();
        reject_unknown(&patch, GENERATE_FIELDS, "", &mut errors);
        errors.finish(()).map_err(ServiceError::Validation)?;
        let template = self.visible(actor, id).await?;
        if template.spec.status != TemplateStatus::Published {
            return Err(ServiceError::Conflict(
                "Template is not published. Only published templates can generate flows.".into(),
            ));
        }
        let spec = &template.spec;
        let mut doc = json!({
            "name": spec.name,
            "description": spec.description,
            "type": spec.flow_type,
            "cron": spec.cron,
            "graph": spec.graph,
            "flowSettings": spec.flow_settings,
        });
        deep_merge(&mut doc, &Value::Object(patch));
        let mut flow = self.flows.build_new(actor, &doc)?;
        flow.from_template = Some(template.id);
        self.flows.insert(actor, &flow).await?;
        Ok(flow)
    }
}

fn save_result(result: Result<(), PortError>) -> ServiceResult<()> {
    match result {
        Ok(()) => Ok(()),
        Err(PortError::Conflict) => {
            Err(ServiceError::Conflict("The template was changed concurrently; retry.".into()))
        }
        Err(PortError::NotFound) => Err(ServiceError::NotFound(NO_TEMPLATE.into())),
        Err(e) => Err(e.into()),
    }
}
