//! `ComponentRepository` contracts: round trip, names unique over every tenant, and listing
//! by name with visibility exactly as `Actor::can_see`.
//!
//! Names carry a unique marker, so these contracts may share a database with other runs.

use super::fixtures::{marker, now};
use super::visibility::{Actors, Sample};
use flow_domain::error::PortError;
use flow_domain::ids::TenantId;
use flow_domain::model::{ExternalComponent, ExternalFunction, Owner};
use flow_domain::ports::ComponentRepository;
use flow_domain::query::Visibility;
use std::sync::Arc;
use uuid::Uuid;

/// A component named `name` of `tenant` owned by `owners`, with two functions.
pub fn component(name: &str, tenant: Option<TenantId>, owners: Vec<Owner>) -> ExternalComponent {
    ExternalComponent {
        name: name.into(),
        url: "https://components.example.com/run".into(),
        functions: vec![
            ExternalFunction { name: "lookup".into(), description: "Looks \"it\" up".into() },
            ExternalFunction { name: "store".into(), description: String::new() },
        ],
        tenant,
        owners,
        created_at: now(),
    }
}

/// `insert` then `get` returns every field; an unknown name is `None`; a name taken (in any
/// tenant) is `Duplicate("component name")` and changes nothing.
pub async fn round_trip_and_duplicates(components: Arc<dyn ComponentRepository>) {
    let tenant = TenantId::new();
    let name = format!("{}-crm", marker());
    let stored = component(&name, Some(tenant), vec![Owner::user(Uuid::now_v7()), Owner::tenant(tenant.0)]);
    components.insert(&stored).await.expect("insert");
    assert_eq!(components.get(&name).await.expect("get"), Some(stored.clone()), "get returns every field");
    assert_eq!(components.get(&marker()).await.expect("get"), None, "unknown name is None");
    assert_eq!(components.get(&name.to_uppercase()).await.expect("get"), None, "names are exact");
    for other_tenant in [Some(tenant), Some(TenantId::new()), None] {
        let mut again = component(&name, other_tenant, vec![]);
        again.url = "https://elsewhere.example.com".into();
        let result = components.insert(&again).await;
        assert!(
            matches!(result, Err(PortError::Duplicate("component name"))),
            "a taken name is Duplicate(\"component name\") in any tenant, got {result:?}"
        );
    }
    assert_eq!(components.get(&name).await.expect("get"), Some(stored), "a duplicate changes nothing");
}

/// `list` applies each visibility exactly as `Actor::can_see` on the component's tenant and
/// owners, never across tenants, ordered by name.
pub async fn list_visibility(components: Arc<dyn ComponentRepository>) {
    let actors = Actors::new();
    let m = marker();
    let cases = Sample::new(&actors).cases;
    let count = cases.len();
    // Names in the reverse order of insertion, so the order by name is not the insertion order.
    let all: Vec<ExternalComponent> = cases
        .into_iter()
        .enumerate()
        .map(|(i, (tenant, owners))| component(&format!("{m}-{:02}", count - i), tenant, owners))
        .collect();
    for c in &all {
        components.insert(c).await.expect("insert");
    }
    let mut by_name: Vec<&ExternalComponent> = all.iter().collect();
    by_name.sort_by(|a, b| a.name.cmp(&b.name));
    for actor in actors.all() {
        let listed = components.list(&actor.visibility()).await.expect("list components");
        assert!(listed.windows(2).all(|w| w[0].name <= w[1].name), "ordered by name");
        let mine: Vec<&ExternalComponent> = listed.iter().filter(|c| c.name.starts_with(&m)).collect();
        let expected: Vec<&ExternalComponent> =
            by_name.iter().copied().filter(|c| actor.can_see(c.tenant, &c.owners)).collect();
        assert_eq!(mine, expected, "visibility {:?}", actor.visibility());
    }
    let nobody = Visibility::Owners { tenant: Some(actors.t1), owner_ids: vec![] };
    let listed = components.list(&nobody).await.expect("list components");
    assert!(listed.iter().all(|c| !c.name.starts_with(&m)), "no owner ids: nothing visible");
}
