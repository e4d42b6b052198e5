//! `FlowRepository::list` contracts: visibility, filters, search, sort and paging.

use super::fixtures::{flow, marker, now};
use super::flows::{ids, insert_all, query};
use super::visibility::{Actors, Sample};
use flow_domain::ids::{FlowId, TemplateId, TenantId};
use flow_domain::model::{Flow, FlowStatus, FlowType, Owner};
use flow_domain::ports::FlowRepository;
use flow_domain::query::{FlowQuery, PageRequest, Sort, SortField, Visibility};
use std::sync::Arc;
use uuid::Uuid;

/// `list` applies each visibility exactly as `Actor::can_see`, never across tenants.
pub async fn list_visibility(flows: Arc<dyn FlowRepository>) {
    let mark = marker();
    let actors = Actors::new();
    let sample = Sample::new(&actors);
    let all: Vec<Flow> = sample
        .cases
        .iter()
        .enumerate()
        .map(|(i, (tenant, owners))| {
            let mut f = flow(&format!("{mark} {i}"), *tenant, owners.clone());
            f.created_at = now() + chrono::Duration::milliseconds(i64::try_from(i).unwrap_or(0));
            f
        })
        .collect();
    insert_all(flows.as_ref(), &all).await;
    for actor in actors.all() {
        let expected: Vec<FlowId> =
            all.iter().filter(|f| actor.can_see(f.tenant, &f.owners)).map(|f| f.id).collect();
        let got = ids(flows.as_ref(), &query(actor.visibility(), &mark)).await;
        assert_eq!(got, expected, "visibility {:?} lists exactly what can_see allows", actor.visibility());
    }
    let nobody = Visibility::Owners { tenant: Some(actors.t1), owner_ids: vec![] };
    assert!(ids(flows.as_ref(), &query(nobody, &mark)).await.is_empty(), "no owner ids: nothing visible");
}

/// `status`, `type`, `fromTemplate` and owner (`filter[user]`) filters, alone and combined.
pub async fn list_filters(flows: Arc<dyn FlowRepository>) {
    let mark = marker();
    let (t1, t2) = (TenantId::new(), TenantId::new());
    let owner = Uuid::now_v7();
    let template = TemplateId::new();
    let mut all = Vec::new();
    for (i, status) in FlowStatus::ALL.into_iter().enumerate() {
        let tenant = if i % 2 == 0 { t1 } else { t2 };
        let owners = if i < 2 { vec![Owner::user(owner)] } else { vec![Owner::tenant(tenant.0)] };
        let mut f = flow(&format!("{mark} {i}"), Some(tenant), owners);
        f.status = status;
        f.spec.flow_type = if i == 1 { FlowType::Realtime } else { FlowType::Ordinary };
        f.from_template = (i >= 2).then_some(template);
        f.created_at = now() + chrono::Duration::milliseconds(i64::try_from(i).unwrap_or(0));
        all.push(f);
    }
    insert_all(flows.as_ref(), &all).await;
    let expect = |pred: &dyn Fn(&Flow) -> bool| -> Vec<FlowId> {
        all.iter().filter(|f| pred(f)).map(|f| f.id).collect()
    };
    for status in FlowStatus::ALL {
        let q = FlowQuery { status: Some(status), ..query(Visibility::All, &mark) };
        assert_eq!(ids(flows.as_ref(), &q).await, expect(&|f| f.status == status), "filter[status]={status}");
    }
    let q = FlowQuery { flow_type: Some(FlowType::Realtime), ..query(Visibility::All, &mark) };
    assert_eq!(ids(flows.as_ref(), &q).await, expect(&|f| f.spec.flow_type == FlowType::Realtime), "type");
    let q = FlowQuery { from_template: Some(template), ..query(Visibility::All, &mark) };
    assert_eq!(ids(flows.as_ref(), &q).await, expect(&|f| f.from_template == Some(template)), "fromTemplate");
    let q = FlowQuery { owner: Some(owner), ..query(Visibility::All, &mark) };
    assert_eq!(
        ids(flows.as_ref(), &q).await,
        expect(&|f| f.is_owned_by(owner)),
        "filter[user] across tenants"
    );
    let q = FlowQuery { owner: Some(t1.0), ..query(Visibility::All, &mark) };
    assert_eq!(
        ids(flows.as_ref(), &q).await,
        expect(&|f| f.is_owned_by(t1.0)),
        "filter[user] with a tenant id"
    );
    let q = FlowQuery {
        owner: Some(owner),
        status: Some(FlowStatus::Starting),
        ..query(Visibility::Tenant(t2), &mark)
    };
    let combined =
        expect(&|f| f.is_owned_by(owner) && f.status == FlowStatus::Starting && f.tenant == Some(t2));
    assert_eq!(ids(flows.as_ref(), &q).await, combined, "filters combine with AND");
    assert_eq!(combined.len(), 1, "the sample has one such flow");
}

/// `search` is a case-insensitive substring of name or description; `%`, `_` and `\` in it are
/// literal characters, never wildcards.
pub async fn search_is_literal(flows: Arc<dyn FlowRepository>) {
    let tenant = TenantId::new();
    let names = ["Report 100% done", "Report 1000 done", "a_b test", "axb test", "back\\slash", "Plain"];
    let mut all: Vec<Flow> = names.iter().map(|n| flow(n, Some(tenant), vec![])).collect();
    all[5].spec.description = Some("Has a NEEDLE inside".into());
    for (i, f) in all.iter_mut().enumerate() {
        f.created_at = now() + chrono::Duration::milliseconds(i64::try_from(i).unwrap_or(0));
    }
    insert_all(flows.as_ref(), &all).await;
    let cases: [(&str, &[usize]); 9] = [
        ("100%", &[0]),
        ("%", &[0]),
        ("_", &[2]),
        ("a_b", &[2]),
        ("\\", &[4]),
        ("REPORT", &[0, 1]),
        ("needle", &[5]),
        ("0 d", &[1]),
        ("nothing like this", &[]),
    ];
    for (needle, expected) in cases {
        let page = flows.list(&query(Visibility::Tenant(tenant), needle)).await.expect("list");
        let got: Vec<FlowId> = page.items.iter().map(|f| f.id).collect();
        let want: Vec<FlowId> = expected.iter().map(|&i| all[i].id).collect();
        assert_eq!(got, want, "search {needle:?}");
        assert_eq!(page.total, want.len() as u64, "total of search {needle:?}");
    }
}

/// Every sort field, both directions, ties broken by id in the same direction; pages slice
/// that order and `total` counts every match.
pub async fn sort_and_paging(flows: Arc<dyn FlowRepository>) {
    let tenant = TenantId::new();
    let base = now();
    let spec = [("delta", 2, 9), ("alpha", 1, 7), ("charlie", 1, 7), ("alpha", 3, 8), ("bravo", 2, 6)];
    let all: Vec<Flow> = spec
        .iter()
        .map(|(name, created, updated)| {
            let mut f = flow(name, Some(tenant), vec![]);
            f.created_at = base + chrono::Duration::milliseconds(*created);
            f.updated_at = base + chrono::Duration::milliseconds(*updated);
            f
        })
        .collect();
    insert_all(flows.as_ref(), &all).await;
    let list_all = |sort: Sort| FlowQuery { search: None, sort, ..query(Visibility::Tenant(tenant), "") };
    for field in [SortField::CreatedAt, SortField::UpdatedAt, SortField::Name] {
        for descending in [false, true] {
            let mut expected = all.clone();
            expected.sort_by(|a, b| {
                let by_field = match field {
                    SortField::CreatedAt => a.created_at.cmp(&b.created_at),
                    SortField::UpdatedAt => a.updated_at.cmp(&b.updated_at),
                    SortField::Name => a.spec.name.cmp(&b.spec.name),
                };
                let order = by_field.then_with(|| a.id.to_string().cmp(&b.id.to_string()));
                if descending { order.reverse() } else { order }
            });
            let expected: Vec<FlowId> = expected.iter().map(|f| f.id).collect();
            let sort = Sort { field, descending };
            assert_eq!(ids(flows.as_ref(), &list_all(sort)).await, expected, "order of {sort:?}");
            let mut paged = Vec::new();
            for number in 1..=4 {
                let q = FlowQuery { page: PageRequest { size: 2, number }, ..list_all(sort) };
                let page = flows.list(&q).await.expect("list page");
                assert_eq!(page.total, 5, "total counts every match on page {number}");
                assert_eq!(page.items.len(), [2, 2, 1, 0][number as usize - 1], "size of page {number}");
                paged.extend(page.items.into_iter().map(|f| f.id));
            }
            assert_eq!(paged, expected, "pages slice the order of {sort:?}");
        }
    }
}
