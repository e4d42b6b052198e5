//! The one rendering of a flow: every response carrying a flow goes through [`PublicFlow`],
//! which drops the write-only webhook secret (`flowSettings.webhooks.secret` and
//! `hmacAuthSecret`) so no answer ever returns it.

use flow_domain::model::Flow;
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
