//! `TemplateRepository` contracts.

use super::fixtures::{drain, event, events_of, long_ago, marker, now, template};
use super::visibility::{Actors, Sample};
use flow_domain::error::PortError;
use flow_domain::ids::{TemplateId, TenantId};
use flow_domain::model::{FlowType, Owner, Template, TemplateStatus};
use flow_domain::ports::{Outbox, TemplateRepository};
use flow_domain::query::{PageRequest, Sort, SortField, TemplateQuery, Visibility};
use serde_json::json;
use std::sync::Arc;
use uuid::Uuid;

/// A query with only `visibility` and `search`, one page of 100.
pub fn query(visibility: Visibility, search: &str) -> TemplateQuery {
    TemplateQuery {
        visibility,
        status: None,
        flow_type: None,
        owner: None,
        tags: vec![],
        search: Some(search.into()),
        sort: Sort::default(),
        page: PageRequest { size: 100, number: 1 },
    }
}

async fn ids(templates: &dyn TemplateRepository, query: &TemplateQuery) -> Vec<TemplateId> {
    templates.list(query).await.expect("list templates").items.into_iter().map(|t| t.id).collect()
}

async fn insert_all(templates: &dyn TemplateRepository, all: &[Template]) {
    for t in all {
        templates.insert(t, &[]).await.expect("insert template");
    }
}

fn in_order(mut all: Vec<Template>) -> Vec<Template> {
    for (i, t) in all.iter_mut().enumerate() {
        t.created_at = now() + chrono::Duration::milliseconds(i64::try_from(i).unwrap_or(0));
    }
    all
}

/// `insert` then `get` returns every field; the events are appended; unknown id is `None`.
pub async fn round_trip(templates: Arc<dyn TemplateRepository>, outbox: Arc<dyn Outbox>) {
    let tenant = TenantId::new();
    let mut full = template(
        &marker(),
        Some(tenant),
        vec![Owner::tenant(tenant.0), Owner::user(Uuid::now_v7())],
        &["crm", "sync"],
    );
    full.spec.description = Some("Every field".into());
    full.spec.flow_type = FlowType::Realtime;
    full.spec.cron = Some("0 * * * *".into());
    full.spec.graph =
        json!({ "nodes": [{ "id": "x", "fields": { "url": "{{url}}" } }], "edges": [], "extra": null });
    full.spec.flow_settings = json!({ "a": 1 }).as_object().cloned().unwrap_or_default();
    full.spec.status = TemplateStatus::Published;
    full.created_at = long_ago(5);
    full.updated_at = long_ago(6_789);
    let bare = template(&marker(), None, vec![], &[]);
    let events = vec![event(), event()];
    drain(outbox.as_ref()).await;
    templates.insert(&full, &events).await.expect("insert");
    templates.insert(&bare, &[]).await.expect("insert");
    assert_eq!(templates.get(full.id).await.expect("get"), Some(full), "every field round-trips");
    assert_eq!(templates.get(bare.id).await.expect("get"), Some(bare), "a bare template round-trips");
    assert_eq!(templates.get(TemplateId::new()).await.expect("get"), None, "unknown id");
    assert_eq!(events_of(&drain(outbox.as_ref()).await), events, "insert appends its events");
}

/// `list` applies each visibility exactly as `Actor::can_see`.
pub async fn list_visibility(templates: Arc<dyn TemplateRepository>) {
    let mark = marker();
    let actors = Actors::new();
    let all = in_order(
        Sample::new(&actors)
            .cases
            .into_iter()
            .enumerate()
            .map(|(i, (tenant, owners))| template(&format!("{mark} {i}"), tenant, owners, &[]))
            .collect(),
    );
    insert_all(templates.as_ref(), &all).await;
    for actor in actors.all() {
        let expected: Vec<TemplateId> =
            all.iter().filter(|t| actor.can_see(t.tenant, &t.owners)).map(|t| t.id).collect();
        let got = ids(templates.as_ref(), &query(actor.visibility(), &mark)).await;
        assert_eq!(got, expected, "visibility {:?} lists exactly what can_see allows", actor.visibility());
    }
}

/// `status`, `type` and owner filters; `tags` lists templates having any of the tags plus
/// untagged templates.
pub async fn list_filters_and_tags(templates: Arc<dyn TemplateRepository>) {
    let mark = marker();
    let owner = Uuid::now_v7();
    let mut all = in_order(vec![
        template(&format!("{mark} 0"), None, vec![Owner::user(owner)], &["a", "b"]),
        template(&format!("{mark} 1"), None, vec![], &["c"]),
        template(&format!("{mark} 2"), Some(TenantId::new()), vec![Owner::user(owner)], &[]),
        template(&format!("{mark} 3"), None, vec![], &["b", "d"]),
    ]);
    all[1].spec.status = TemplateStatus::Published;
    all[3].spec.status = TemplateStatus::Published;
    all[2].spec.flow_type = FlowType::Realtime;
    insert_all(templates.as_ref(), &all).await;
    let pick = |indices: &[usize]| -> Vec<TemplateId> { indices.iter().map(|&i| all[i].id).collect() };
    let base = || query(Visibility::All, &mark);

    let tag_cases: [(&[&str], &[usize]); 5] = [
        (&[], &[0, 1, 2, 3]),
        (&["a"], &[0, 2]),
        (&["b"], &[0, 2, 3]),
        (&["c", "zz"], &[1, 2]),
        (&["zz"], &[2]),
    ];
    for (tags, expected) in tag_cases {
        let q = TemplateQuery { tags: tags.iter().map(|t| t.to_string()).collect(), ..base() };
        assert_eq!(ids(templates.as_ref(), &q).await, pick(expected), "tags {tags:?}");
    }
    let q = TemplateQuery { status: Some(TemplateStatus::Published), ..base() };
    assert_eq!(ids(templates.as_ref(), &q).await, pick(&[1, 3]), "filter[status]=published");
    let q = TemplateQuery { status: Some(TemplateStatus::Draft), ..base() };
    assert_eq!(ids(templates.as_ref(), &q).await, pick(&[0, 2]), "filter[status]=draft");
    let q = TemplateQuery { flow_type: Some(FlowType::Realtime), ..base() };
    assert_eq!(ids(templates.as_ref(), &q).await, pick(&[2]), "filter[type]");
    let q = TemplateQuery { owner: Some(owner), ..base() };
    assert_eq!(ids(templates.as_ref(), &q).await, pick(&[0, 2]), "filter[user]");
    let q = TemplateQuery { owner: Some(owner), tags: vec!["zz".into()], ..base() };
    assert_eq!(ids(templates.as_ref(), &q).await, pick(&[2]), "filters combine with AND");
}

/// Literal, case-insensitive search; sort with id tie-break; paging with total.
pub async fn search_sort_and_paging(templates: Arc<dyn TemplateRepository>) {
    let tenant = TenantId::new();
    let all = in_order(
        ["d x_1 beta", "c xa1 alpha", "b 50% gamma", "a 500 alpha"]
            .iter()
            .map(|n| template(n, Some(tenant), vec![], &[]))
            .collect(),
    );
    insert_all(templates.as_ref(), &all).await;
    let visible = || query(Visibility::Tenant(tenant), "");
    let search = |s: &str| TemplateQuery { search: Some(s.into()), ..visible() };
    assert_eq!(ids(templates.as_ref(), &search("x_")).await, vec![all[0].id], "`_` is literal");
    assert_eq!(ids(templates.as_ref(), &search("0%")).await, vec![all[2].id], "`%` is literal");
    assert_eq!(
        ids(templates.as_ref(), &search("ALPHA")).await,
        vec![all[1].id, all[3].id],
        "case-insensitive"
    );

    let sort = Sort { field: SortField::Name, descending: true };
    let mut expected = all.clone();
    expected
        .sort_by(|a, b| (&a.spec.name, a.id.to_string()).cmp(&(&b.spec.name, b.id.to_string())).reverse());
    let expected: Vec<TemplateId> = expected.iter().map(|t| t.id).collect();
    let sorted = TemplateQuery { search: None, sort, ..visible() };
    assert_eq!(ids(templates.as_ref(), &sorted).await, expected, "sort by -name");
    let page = templates
        .list(&TemplateQuery { page: PageRequest { size: 3, number: 2 }, ..sorted.clone() })
        .await
        .expect("list");
    assert_eq!(page.total, 4, "total counts every match");
    assert_eq!(page.items.iter().map(|t| t.id).collect::<Vec<_>>(), expected[3..].to_vec(), "second page");
}

/// `save`/`delete` only on the stored revision (`Conflict` otherwise, `NotFound` for unknown
/// ids, changing and appending nothing); `list_owned_by` follows the owners.
pub async fn save_delete_compare_and_set(templates: Arc<dyn TemplateRepository>, outbox: Arc<dyn Outbox>) {
    let (old_owner, new_owner) = (Uuid::now_v7(), Uuid::now_v7());
    let original = template(&marker(), None, vec![Owner::user(old_owner)], &["t"]);
    templates.insert(&original, &[]).await.expect("insert");
    let ids_of = |list: Vec<Template>| list.into_iter().map(|t| t.id).collect::<Vec<_>>();
    assert_eq!(ids_of(templates.list_owned_by(old_owner).await.expect("owned")), vec![original.id]);
    drain(outbox.as_ref()).await;

    let mut changed = original.clone();
    changed.spec.status = TemplateStatus::Published;
    changed.spec.tags = vec!["u".into()];
    changed.owners = vec![Owner::user(new_owner)];
    let saved_event = event();
    templates.save(&changed, std::slice::from_ref(&saved_event)).await.expect("save on the stored revision");
    let stored = templates.get(original.id).await.expect("get").expect("present");
    assert_eq!(
        stored,
        Template { revision: original.revision + 1, ..changed.clone() },
        "save stores revision + 1"
    );
    assert!(templates.list_owned_by(old_owner).await.expect("owned").is_empty(), "owners replaced");
    assert_eq!(ids_of(templates.list_owned_by(new_owner).await.expect("owned")), vec![original.id]);

    let result = templates.save(&changed, &[event()]).await;
    assert!(matches!(result, Err(PortError::Conflict)), "stale save is Conflict, got {result:?}");
    let unknown = template("unknown", None, vec![], &[]);
    let result = templates.save(&unknown, &[event()]).await;
    assert!(matches!(result, Err(PortError::NotFound)), "unknown save is NotFound, got {result:?}");
    let result = templates.delete(&changed, &[event()]).await;
    assert!(matches!(result, Err(PortError::Conflict)), "stale delete is Conflict, got {result:?}");
    let result = templates.delete(&unknown, &[event()]).await;
    assert!(matches!(result, Err(PortError::NotFound)), "unknown delete is NotFound, got {result:?}");
    assert_eq!(
        templates.get(original.id).await.expect("get"),
        Some(stored.clone()),
        "failures change nothing"
    );
    assert_eq!(events_of(&drain(outbox.as_ref()).await), vec![saved_event], "only the save appended");

    let deleted_event = event();
    templates.delete(&stored, std::slice::from_ref(&deleted_event)).await.expect("delete");
    assert_eq!(templates.get(original.id).await.expect("get"), None, "deleted");
    assert!(templates.list_owned_by(new_owner).await.expect("owned").is_empty(), "owners go with it");
    assert_eq!(events_of(&drain(outbox.as_ref()).await), vec![deleted_event], "delete appends its events");
}
