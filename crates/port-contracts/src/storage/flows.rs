//! `FlowRepository` contracts: round trip, compare-and-set writes, the lifecycle queries.
//! The list contracts are in [`super::flow_lists`].

use super::fixtures::{drain, events_of, flow, flow_event, long_ago, marker, ms, now};
use flow_domain::error::PortError;
use flow_domain::event::Consumed;
use flow_domain::ids::{EventId, FlowId, TemplateId, TenantId};
use flow_domain::model::{Flow, FlowStatus, FlowType, Owner};
use flow_domain::ports::{FlowRepository, Outbox};
use flow_domain::query::{FlowQuery, PageRequest, Sort, Visibility};
use serde_json::json;
use std::sync::Arc;
use uuid::Uuid;

/// A query with only `visibility` and `search`, one page of 100.
pub fn query(visibility: Visibility, search: &str) -> FlowQuery {
    FlowQuery {
        visibility,
        status: None,
        flow_type: None,
        from_template: None,
        owner: None,
        search: Some(search.into()),
        sort: Sort::default(),
        page: PageRequest { size: 100, number: 1 },
    }
}

pub(super) async fn ids(flows: &dyn FlowRepository, query: &FlowQuery) -> Vec<FlowId> {
    flows.list(query).await.expect("list flows").items.into_iter().map(|f| f.id).collect()
}

pub(super) async fn insert_all(flows: &dyn FlowRepository, all: &[Flow]) {
    for f in all {
        flows.insert(f, &[]).await.expect("insert flow");
    }
}

/// `insert` then `get` returns every field as stored (to the millisecond), and the events
/// given to `insert` are in the outbox; an unknown id is `None`.
pub async fn round_trip(flows: Arc<dyn FlowRepository>, outbox: Arc<dyn Outbox>) {
    let tenant = TenantId::new();
    let owner = Uuid::now_v7();
    let mut full =
        flow(&format!("Full {}", marker()), Some(tenant), vec![Owner::user(owner), Owner::tenant(tenant.0)]);
    full.spec.description = Some("Every field set".into());
    full.spec.flow_type = FlowType::Realtime;
    full.spec.cron = Some("*/5 * * * *".into());
    full.spec.flow_settings =
        json!({ "webhooks": { "auth": "hmac" }, "n": [1, 2] }).as_object().cloned().unwrap_or_default();
    full.status = FlowStatus::Stopping;
    full.status_reason = Some("engine refused: unknown component".into());
    full.from_template = Some(TemplateId::new());
    full.created_at = ms(long_ago(1));
    full.updated_at = ms(long_ago(2_000));
    full.status_changed_at = ms(long_ago(3_000_123));
    full.lifecycle_attempts = 2;
    let bare = flow(&format!("Bare {}", marker()), None, vec![]);
    let events = vec![flow_event(&full), flow_event(&full)];

    drain(outbox.as_ref()).await;
    flows.insert(&full, &events).await.expect("insert full flow");
    flows.insert(&bare, &[]).await.expect("insert bare flow");

    assert_eq!(flows.get(full.id).await.expect("get"), Some(full.clone()), "get returns every field");
    assert_eq!(
        flows.get(bare.id).await.expect("get"),
        Some(bare),
        "get returns a flow with no optional field"
    );
    assert_eq!(flows.get(FlowId::new()).await.expect("get"), None, "unknown id is None");
    assert_eq!(events_of(&drain(outbox.as_ref()).await), events, "insert appends its events in order");
    flows.ping().await.expect("ping");
}

/// `save` succeeds only on the stored revision (storing revision + 1, the owners replaced and
/// the events appended); a stale revision is `Conflict` and an unknown id `NotFound`, both
/// changing nothing and appending nothing.
pub async fn save_compare_and_set(flows: Arc<dyn FlowRepository>, outbox: Arc<dyn Outbox>) {
    let tenant = TenantId::new();
    let (old_owner, new_owner) = (Uuid::now_v7(), Uuid::now_v7());
    let original = flow(&marker(), Some(tenant), vec![Owner::user(old_owner)]);
    flows.insert(&original, &[]).await.expect("insert");
    drain(outbox.as_ref()).await;

    let mut changed = original.clone();
    changed.spec.name = format!("renamed {}", marker());
    changed.status = FlowStatus::Starting;
    changed.status_reason = Some("why".into());
    changed.lifecycle_attempts = 1;
    changed.owners = vec![Owner::user(new_owner), Owner::tenant(tenant.0)];
    changed.updated_at = now();
    let event = flow_event(&changed);
    flows.save(&changed, std::slice::from_ref(&event), None).await.expect("save on the stored revision");
    let stored = flows.get(original.id).await.expect("get").expect("still there");
    assert_eq!(
        stored,
        Flow { revision: original.revision + 1, ..changed.clone() },
        "save stores revision + 1"
    );
    assert_eq!(events_of(&drain(outbox.as_ref()).await), vec![event], "save appends its events");
    let owned_by_old = flows.list_owned_by(old_owner).await.expect("owned by");
    assert!(owned_by_old.is_empty(), "save replaces the owners");
    let owned_by_new: Vec<FlowId> =
        flows.list_owned_by(new_owner).await.expect("owned by").iter().map(|f| f.id).collect();
    assert_eq!(owned_by_new, vec![original.id], "the new owner is indexed");
    let visible = Visibility::Owners { tenant: Some(tenant), owner_ids: vec![new_owner] };
    assert_eq!(
        ids(flows.as_ref(), &query(visible, "renamed")).await,
        vec![original.id],
        "list sees new owners"
    );

    let mut stale = changed.clone();
    stale.spec.name = "stale".into();
    let result = flows.save(&stale, &[flow_event(&stale)], None).await;
    assert!(matches!(result, Err(PortError::Conflict)), "stale revision is Conflict, got {result:?}");
    assert_eq!(
        flows.get(original.id).await.expect("get").expect("present"),
        stored,
        "Conflict changes nothing"
    );

    let unknown = flow("unknown", None, vec![]);
    let result = flows.save(&unknown, &[flow_event(&unknown)], None).await;
    assert!(matches!(result, Err(PortError::NotFound)), "unknown id is NotFound, got {result:?}");
    assert_eq!(flows.get(unknown.id).await.expect("get"), None, "NotFound creates nothing");
    assert!(drain(outbox.as_ref()).await.is_empty(), "failed saves append no event");

    flows.save(&stored, &[], None).await.expect("save on the new revision");
    assert_eq!(flows.get(original.id).await.expect("get").map(|f| f.revision), Some(original.revision + 2));
}

/// A save with `consumed` records it with the change; the same `consumed` again is
/// `AlreadyProcessed` and changes and appends nothing; a save that fails records nothing.
pub async fn save_consumed_once(flows: Arc<dyn FlowRepository>, outbox: Arc<dyn Outbox>) {
    let original = flow(&marker(), None, vec![]);
    flows.insert(&original, &[]).await.expect("insert");
    drain(outbox.as_ref()).await;
    let consumed = Consumed { consumer: format!("contract-{}", marker()), event_id: EventId::new() };

    let mut active = original.clone();
    active.status = FlowStatus::Active;
    flows.save(&active, &[flow_event(&active)], Some(&consumed)).await.expect("first delivery");
    assert_eq!(drain(outbox.as_ref()).await.len(), 1, "first delivery appends its event");

    let mut again = Flow { revision: original.revision + 1, ..active.clone() };
    again.status = FlowStatus::Stopping;
    let result = flows.save(&again, &[flow_event(&again)], Some(&consumed)).await;
    assert!(
        matches!(result, Err(PortError::AlreadyProcessed)),
        "redelivery is AlreadyProcessed, got {result:?}"
    );
    let stored = flows.get(original.id).await.expect("get").expect("present");
    assert_eq!(
        stored,
        Flow { revision: original.revision + 1, ..active.clone() },
        "redelivery changes nothing"
    );
    assert!(drain(outbox.as_ref()).await.is_empty(), "redelivery appends nothing");

    let other_consumer = Consumed { consumer: format!("{}-other", consumed.consumer), ..consumed.clone() };
    flows.save(&again, &[], Some(&other_consumer)).await.expect("another consumer of the same event");

    let later = Consumed { consumer: consumed.consumer.clone(), event_id: EventId::new() };
    let result = flows.save(&again, &[], Some(&later)).await;
    assert!(matches!(result, Err(PortError::Conflict)), "stale revision with consumed is Conflict");
    let current = flows.get(original.id).await.expect("get").expect("present");
    flows.save(&current, &[], Some(&later)).await.expect("a failed save did not record consumed");
}

/// `delete` removes the flow only on the stored revision and appends its events; a stale
/// revision is `Conflict`, an unknown id `NotFound`, both changing nothing.
pub async fn delete_compare_and_set(flows: Arc<dyn FlowRepository>, outbox: Arc<dyn Outbox>) {
    let owner = Uuid::now_v7();
    let original = flow(&marker(), None, vec![Owner::user(owner)]);
    flows.insert(&original, &[]).await.expect("insert");
    flows.save(&original, &[], None).await.expect("save");
    drain(outbox.as_ref()).await;

    let result = flows.delete(&original, &[flow_event(&original)]).await;
    assert!(matches!(result, Err(PortError::Conflict)), "stale delete is Conflict, got {result:?}");
    assert!(flows.get(original.id).await.expect("get").is_some(), "Conflict deletes nothing");
    let unknown = flow("unknown", None, vec![]);
    let result = flows.delete(&unknown, &[flow_event(&unknown)]).await;
    assert!(matches!(result, Err(PortError::NotFound)), "unknown delete is NotFound, got {result:?}");
    assert!(drain(outbox.as_ref()).await.is_empty(), "failed deletes append nothing");

    let current = Flow { revision: original.revision + 1, ..original.clone() };
    let event = flow_event(&current);
    flows.delete(&current, std::slice::from_ref(&event)).await.expect("delete on the stored revision");
    assert_eq!(flows.get(original.id).await.expect("get"), None, "deleted");
    assert!(flows.list_owned_by(owner).await.expect("owned by").is_empty(), "owners go with the flow");
    assert_eq!(events_of(&drain(outbox.as_ref()).await), vec![event], "delete appends its events");
    let result = flows.delete(&current, &[]).await;
    assert!(matches!(result, Err(PortError::NotFound)), "second delete is NotFound, got {result:?}");
}

/// `list_stalled` returns flows in `starting`/`stopping` whose status changed strictly before
/// `before`, oldest first, at most `limit`.
pub async fn list_stalled(flows: Arc<dyn FlowRepository>) {
    let before = long_ago(3_600_000);
    let cases = [
        (FlowStatus::Starting, -600_000),
        (FlowStatus::Stopping, -1_200_000),
        (FlowStatus::Starting, 0),
        (FlowStatus::Stopping, 1),
        (FlowStatus::Active, -1_800_000),
        (FlowStatus::Inactive, -1_800_000),
    ];
    let all: Vec<Flow> = cases
        .iter()
        .map(|(status, offset)| {
            let mut f = flow(&marker(), None, vec![]);
            f.status = *status;
            f.status_changed_at = before + chrono::Duration::milliseconds(*offset);
            f
        })
        .collect();
    insert_all(flows.as_ref(), &all).await;
    let stalled = flows.list_stalled(before, 1000).await.expect("list stalled");
    assert!(stalled.windows(2).all(|w| w[0].status_changed_at <= w[1].status_changed_at), "oldest first");
    let mine: Vec<FlowId> =
        stalled.iter().map(|f| f.id).filter(|id| all.iter().any(|f| f.id == *id)).collect();
    assert_eq!(mine, vec![all[1].id, all[0].id], "only transitional flows changed before the deadline");
    assert!(stalled.iter().all(|f| f.status.is_transitional() && f.status_changed_at < before));
    assert_eq!(flows.list_stalled(before, 1).await.expect("list stalled").len(), 1, "limit");
}

/// `list_owned_by` returns every flow listing the owner, in any tenant, and no other.
pub async fn list_owned_by(flows: Arc<dyn FlowRepository>) {
    let owner = Uuid::now_v7();
    let all = vec![
        flow(&marker(), Some(TenantId::new()), vec![Owner::user(owner)]),
        flow(&marker(), Some(TenantId::new()), vec![Owner::tenant(Uuid::now_v7()), Owner::user(owner)]),
        flow(&marker(), None, vec![Owner::user(owner)]),
        flow(&marker(), None, vec![Owner::user(Uuid::now_v7())]),
    ];
    insert_all(flows.as_ref(), &all).await;
    let mut got: Vec<FlowId> =
        flows.list_owned_by(owner).await.expect("owned by").iter().map(|f| f.id).collect();
    got.sort();
    let mut expected = vec![all[0].id, all[1].id, all[2].id];
    expected.sort();
    assert_eq!(got, expected, "every flow of the owner, across tenants");
    assert!(flows.list_owned_by(Uuid::now_v7()).await.expect("owned by").is_empty(), "unknown owner");
}

/// `list_scheduled` returns every active flow with a non-empty `cron`, in any tenant, and no
/// other.
pub async fn list_scheduled(flows: Arc<dyn FlowRepository>) {
    let cases = [
        (FlowStatus::Active, Some("*/5 * * * *"), Some(TenantId::new())),
        (FlowStatus::Active, Some("0 0 * * *"), None),
        (FlowStatus::Active, None, None),
        (FlowStatus::Active, Some(""), None),
        (FlowStatus::Inactive, Some("* * * * *"), None),
        (FlowStatus::Starting, Some("* * * * *"), None),
        (FlowStatus::Stopping, Some("* * * * *"), None),
    ];
    let all: Vec<Flow> = cases
        .iter()
        .map(|(status, cron, tenant)| {
            let mut f = flow(&marker(), *tenant, vec![]);
            f.status = *status;
            f.spec.cron = cron.map(String::from);
            f
        })
        .collect();
    insert_all(flows.as_ref(), &all).await;
    let scheduled = flows.list_scheduled().await.expect("list scheduled");
    let active_with_cron =
        |f: &Flow| f.status == FlowStatus::Active && f.spec.cron.as_deref().is_some_and(|c| !c.is_empty());
    assert!(scheduled.iter().all(active_with_cron), "only active flows with a cron");
    let mut mine: Vec<&Flow> = scheduled.iter().filter(|f| all.iter().any(|a| a.id == f.id)).collect();
    mine.sort_by_key(|f| f.id);
    let mut expected = vec![&all[0], &all[1]];
    expected.sort_by_key(|f| f.id);
    assert_eq!(mine, expected, "every active flow with a cron, in any tenant, as stored");
}
