//! The [`ComponentRegistry`]: which implementation runs a node's component. Built-ins come
//! first; with a [`ComponentRepository`] plugged in, other ids resolve to the external
//! component of that name when the flow's tenant registered it.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use flow_domain::ids::TenantId;
use flow_domain::ports::ComponentRepository;

use crate::sandbox::Sandbox;

use super::{
    CodeComponent, Component, ComponentError, DelayComponent, FilterComponent, HttpComponent, HttpConfig,
    HttpTransport, JqComponent, LogComponent, PassThrough, RemoteComponent,
};

/// An external component built once, with the tenant that registered it.
#[derive(Clone)]
struct CachedExternal {
    tenant: Option<TenantId>,
    component: Arc<dyn Component>,
}

/// Component id -> implementation.
#[derive(Clone, Default)]
pub struct ComponentRegistry {
    components: BTreeMap<String, Arc<dyn Component>>,
    transport: Option<Arc<HttpTransport>>,
    externals: Option<Arc<dyn ComponentRepository>>,
    /// Registered components never change (no update or delete), so a hit stays valid.
    cache: Arc<Mutex<HashMap<String, CachedExternal>>>,
    /// Where user programs run (jq, Rhai), for components and edge programs.
    sandbox: Arc<Sandbox>,
}

impl std::fmt::Debug for ComponentRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ComponentRegistry")
            .field("ids", &self.ids())
            .field("externals", &self.externals.is_some())
            .finish()
    }
}

impl ComponentRegistry {
    /// The built-in components (`webhook`, `scheduler`, `http`, `jq`, `filter`, `code`, `log`,
    /// `delay`), with `http` (and external components, see [`Self::with_externals`])
    /// configured by `http`.
    ///
    /// # Errors
    /// When the HTTP client cannot be built.
    pub fn builtin(http: HttpConfig) -> Result<Self, ComponentError> {
        let transport = Arc::new(HttpTransport::new(http)?);
        let mut registry = Self { transport: Some(transport.clone()), ..Self::default() };
        registry.insert("webhook", Arc::new(PassThrough::new("receive")));
        registry.insert("scheduler", Arc::new(PassThrough::new("schedule")));
        registry.insert("http", Arc::new(HttpComponent::with_transport(transport)));
        registry.insert("jq", Arc::new(JqComponent));
        registry.insert("filter", Arc::new(FilterComponent));
        registry.insert("code", Arc::new(CodeComponent));
        registry.insert("log", Arc::new(LogComponent));
        registry.insert("delay", Arc::new(DelayComponent::default()));
        Ok(registry)
    }

    /// This registry, also resolving the external components stored in `repo` (called through
    /// the same HTTP transport as `http`).
    #[must_use]
    pub fn with_externals(self, repo: Arc<dyn ComponentRepository>) -> Self {
        Self { externals: Some(repo), ..self }
    }

    /// This registry, running user programs in `sandbox` (by default a pool with
    /// [`crate::sandbox::SandboxConfig::default`]).
    #[must_use]
    pub fn with_sandbox(self, sandbox: Arc<Sandbox>) -> Self {
        Self { sandbox, ..self }
    }

    /// Where user programs run.
    pub fn sandbox(&self) -> &Arc<Sandbox> {
        &self.sandbox
    }

    /// Adds (or replaces) the component `id`.
    pub fn insert(&mut self, id: impl Into<String>, component: Arc<dyn Component>) {
        self.components.insert(id.into(), component);
    }

    /// The component `id`, if registered (built-ins and inserted components only).
    pub fn get(&self, id: &str) -> Option<Arc<dyn Component>> {
        self.components.get(id).cloned()
    }

    /// The component a node of a flow of `tenant` names: a built-in, or an external component
    /// registered by that same tenant.
    ///
    /// # Errors
    /// When registered components cannot be read (retryable), or the external component's
    /// URL is invalid (permanent).
    pub async fn resolve(
        &self,
        id: &str,
        tenant: Option<TenantId>,
    ) -> Result<Option<Arc<dyn Component>>, ComponentError> {
        if let Some(component) = self.get(id) {
            return Ok(Some(component));
        }
        let Some(repo) = &self.externals else {
            return Ok(None);
        };
        if let Some(hit) = self.cached(id) {
            return Ok((hit.tenant == tenant).then_some(hit.component));
        }
        let stored = repo
            .get(id)
            .await
            .map_err(|e| ComponentError::transient(format!("cannot read component `{id}`: {e}")))?;
        let Some(stored) = stored else {
            return Ok(None);
        };
        let transport = match &self.transport {
            Some(transport) => transport.clone(),
            None => Arc::new(HttpTransport::new(HttpConfig::default())?),
        };
        let component: Arc<dyn Component> = Arc::new(RemoteComponent::new(&stored, transport)?);
        let entry = CachedExternal { tenant: stored.tenant, component };
        self.cache.lock().unwrap_or_else(|e| e.into_inner()).insert(id.to_owned(), entry.clone());
        Ok((entry.tenant == tenant).then_some(entry.component))
    }

    fn cached(&self, id: &str) -> Option<CachedExternal> {
        self.cache.lock().unwrap_or_else(|e| e.into_inner()).get(id).cloned()
    }

    /// The ids of the built-in (and inserted) components, sorted.
    pub fn ids(&self) -> Vec<&str> {
        self.components.keys().map(String::as_str).collect()
    }
}
