//! The one rendering of a flow and of a template: every response carrying either goes through
//! [`PublicFlow`] or [`PublicTemplate`], which drop the write-only webhook secret
//! (`flowSettings.webhooks.secret` and `hmacAuthSecret`) so no answer ever returns it.

use flow_domain::model::{Flow, Template};
use flow_domain::query::Page;
use flow_domain::services::webhook_auth::redact_secret;
use serde::Serialize;

/// A flow as answered to clients: the stored flow without its webhook secret.
#[derive(Debug, Clone, Serialize)]
#[serde(transparent)]
pub struct PublicFlow(Flow);

impl From<Flow> for PublicFlow {
    fn from(mut flow: Flow) -> Self {
        redact_secret(&mut flow.spec.flow_settings);
        Self(flow)
    }
}

impl PublicFlow {
    /// A page of flows, each rendered publicly.
    pub fn page(page: Page<Flow>) -> Page<PublicFlow> {
        page.map(PublicFlow::from)
    }
}

/// A template as answered to clients: the stored template without the webhook secret of its
/// flow settings (the same redaction as [`PublicFlow`]).
#[derive(Debug, Clone, Serialize)]
#[serde(transparent)]
pub struct PublicTemplate(Template);

impl From<Template> for PublicTemplate {
    fn from(mut template: Template) -> Self {
        redact_secret(&mut template.spec.flow_settings);
        Self(template)
    }
}

impl PublicTemplate {
    /// A page of templates, each rendered publicly.
    pub fn page(page: Page<Template>) -> Page<PublicTemplate> {
        page.map(PublicTemplate::from)
    }
}
