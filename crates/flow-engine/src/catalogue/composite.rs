//! The catalogue `GET /components` and the deployment check read: the built-ins, then the
//! external components registered over the API (when a [`ComponentRepository`] is plugged in).
//! An external component is found only for flows of the tenant that registered it.

use std::sync::Arc;

use async_trait::async_trait;
use flow_domain::ids::TenantId;
use flow_domain::ports::{ComponentCatalogue, ComponentRepository, ComponentSpec};
use flow_domain::query::Visibility;

use super::BuiltinCatalogue;

/// Built-in components plus, optionally, the external components of a repository.
#[derive(Clone, Default)]
pub struct Catalogue {
    builtin: BuiltinCatalogue,
    externals: Option<Arc<dyn ComponentRepository>>,
}

impl std::fmt::Debug for Catalogue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Catalogue").field("externals", &self.externals.is_some()).finish()
    }
}

impl Catalogue {
    /// The built-in components only.
    pub fn new() -> Self {
        Self::default()
    }

    /// This catalogue, also listing and finding the external components stored in `repo`.
    #[must_use]
    pub fn with_externals(self, repo: Arc<dyn ComponentRepository>) -> Self {
        Self { externals: Some(repo), ..self }
    }
}

#[async_trait]
impl ComponentCatalogue for Catalogue {
    async fn list(&self, visibility: &Visibility) -> anyhow::Result<Vec<ComponentSpec>> {
        let mut listed = self.builtin.list(visibility).await?;
        if let Some(repo) = &self.externals {
            let externals = repo.list(visibility).await?;
            listed.extend(externals.iter().map(ComponentSpec::from));
        }
        Ok(listed)
    }

    async fn find(&self, id: &str, tenant: Option<TenantId>) -> anyhow::Result<Option<ComponentSpec>> {
        if let Some(builtin) = self.builtin.find(id, tenant).await? {
            return Ok(Some(builtin));
        }
        let Some(repo) = &self.externals else {
            return Ok(None);
        };
        let found = repo.get(id).await?;
        Ok(found.filter(|c| c.tenant == tenant).as_ref().map(ComponentSpec::from))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;
    use flow_domain::model::{ExternalComponent, ExternalFunction};
    use flow_domain::ports::{ComponentKind, MockComponentRepository};

    fn external(name: &str, tenant: Option<TenantId>) -> ExternalComponent {
        ExternalComponent {
            name: name.into(),
            url: "https://example.com/run".into(),
            functions: vec![ExternalFunction { name: "run".into(), description: "Runs.".into() }],
            tenant,
            owners: Vec::new(),
            created_at: Utc::now(),
        }
    }

    #[tokio::test]
    async fn lists_builtins_then_visible_externals() {
        let mut repo = MockComponentRepository::new();
        repo.expect_list()
            .withf(|v| matches!(v, Visibility::All))
            .returning(|_| Ok(vec![external("acme", None), external("zeta", None)]));
        let catalogue = Catalogue::new().with_externals(Arc::new(repo));
        let listed = catalogue.list(&Visibility::All).await.expect("list");
        let ids: Vec<&str> = listed.iter().map(|c| c.id.as_str()).collect();
        assert_eq!(
            ids,
            ["webhook", "scheduler", "http", "jq", "filter", "code", "log", "delay", "acme", "zeta"]
        );
        let acme = &listed[8];
        assert!(!acme.builtin);
        assert_eq!(acme.kind, ComponentKind::Action);
        assert_eq!(acme.function("run").expect("run").config_schema, serde_json::json!({ "type": "object" }));
    }

    #[tokio::test]
    async fn finds_builtins_without_the_repository_and_externals_of_the_same_tenant_only() {
        let mine = TenantId::new();
        let theirs = TenantId::new();
        let mut repo = MockComponentRepository::new();
        repo.expect_get()
            .withf(|name| name == "acme")
            .returning(move |_| Ok(Some(external("acme", Some(mine)))));
        repo.expect_get().withf(|name| name == "nosuch").returning(|_| Ok(None));
        let catalogue = Catalogue::new().with_externals(Arc::new(repo));
        let http = catalogue.find("http", Some(theirs)).await.expect("find").expect("builtin");
        assert!(http.builtin);
        let acme = catalogue.find("acme", Some(mine)).await.expect("find").expect("own external");
        assert_eq!(acme.id, "acme");
        assert!(catalogue.find("acme", Some(theirs)).await.expect("find").is_none());
        assert!(catalogue.find("acme", None).await.expect("find").is_none());
        assert!(catalogue.find("nosuch", Some(mine)).await.expect("find").is_none());
    }

    #[tokio::test]
    async fn without_a_repository_only_builtins() {
        let catalogue = Catalogue::new();
        assert_eq!(catalogue.list(&Visibility::All).await.expect("list").len(), 8);
        assert!(catalogue.find("acme", None).await.expect("find").is_none());
    }

    #[tokio::test]
    async fn repository_errors_propagate() {
        let mut repo = MockComponentRepository::new();
        repo.expect_get().returning(|_| Err(flow_domain::error::PortError::Unavailable("down".into())));
        let catalogue = Catalogue::new().with_externals(Arc::new(repo));
        assert!(catalogue.find("acme", None).await.is_err());
        assert!(catalogue.find("http", None).await.expect("builtin needs no repository").is_some());
    }
}
