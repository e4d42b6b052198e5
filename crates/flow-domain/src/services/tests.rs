//! Use-case tests with mocked ports (mockall): permission and ownership checks happen before any
//! storage call, effects are persisted atomically, races are retried, refusals change nothing.

use super::*;
use crate::actor::Actor;
use crate::error::{PortError, ServiceError};
use crate::event::names;
use crate::ids::{FlowId, TenantId, UserId};
use crate::limits::Limits;
use crate::model::{Flow, FlowStatus, Owner, Template, TemplateStatus, User, UserStatus};
use crate::permission::{Permission, PermissionSet};
use crate::ports::{
    MockFlowRepository, MockPasswordHasher, MockTemplateRepository, MockTenantRepository, MockTokenMinter,
    MockTokenRepository, MockUserRepository,
};
use crate::time::{Clock, ManualClock};
use crate::validate::flow::parse_flow_document;
use chrono::{Duration, TimeZone, Utc};
use futures::executor::block_on;
use serde_json::{Value, json};
use std::sync::Arc;

fn clock() -> Arc<ManualClock> {
    Arc::new(ManualClock::new(Utc.with_ymd_and_hms(2026, 5, 1, 12, 0, 0).single().unwrap_or_default()))
}

fn actor(perms: &[Permission], tenant: TenantId) -> Actor {
    Actor {
        user_id: UserId::new(),
        tenant: Some(tenant),
        permissions: PermissionSet::new(perms.to_vec()),
        token_id: None,
    }
}

fn flow_doc() -> Value {
    json!({"name": "f", "graph": {"nodes": [{"id": "a", "componentId": "webhook", "function": "receive"}]}})
}

fn flow_of(tenant: TenantId, status: FlowStatus, clock: &dyn Clock) -> Flow {
    let spec = parse_flow_document(&flow_doc(), &Limits::default())
        .map(|d| d.spec)
        .unwrap_or_else(|e| panic!("{e:?}"));
    Flow {
        id: FlowId::new(),
        spec,
        tenant: Some(tenant),
        owners: vec![Owner::tenant(tenant.0)],
        status,
        status_reason: None,
        from_template: None,
        created_at: clock.now(),
        updated_at: clock.now(),
        status_changed_at: clock.now(),
        lifecycle_attempts: 0,
        revision: 3,
    }
}

#[test]
fn start_saves_starting_with_its_event_atomically() {
    let clock = clock();
    let tenant = TenantId::new();
    let caller = actor(&[Permission::FlowsControl], tenant);
    let flow = flow_of(tenant, FlowStatus::Inactive, clock.as_ref());
    let id = flow.id;
    let mut repo = MockFlowRepository::new();
    let stored = flow.clone();
    repo.expect_get().returning(move |_| Ok(Some(stored.clone())));
    let by = caller.user_id;
    repo.expect_save()
        .withf(move |f, events, consumed| {
            f.status == FlowStatus::Starting
                && f.revision == 3
                && consumed.is_none()
                && events.len() == 1
                && events[0].name == names::FLOW_STARTING
                && events[0].payload["startedBy"] == json!(by)
                && events[0].key.as_deref() == Some(id.to_string().as_str())
        })
        .times(1)
        .returning(|_, _, _| Ok(()));
    let service = FlowService::new(Arc::new(repo), clock);
    let started = block_on(service.start(&caller, &id.to_string())).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(started.status, FlowStatus::Starting);
    assert_eq!(started.revision, 4);
}

#[test]
fn another_tenants_flow_is_not_found_and_nothing_is_saved() {
    let clock = clock();
    let caller = actor(&[Permission::FlowsControl, Permission::FlowsWrite], TenantId::new());
    let foreign = flow_of(TenantId::new(), FlowStatus::Inactive, clock.as_ref());
    let id = foreign.id.to_string();
    let mut repo = MockFlowRepository::new();
    repo.expect_get().returning(move |_| Ok(Some(foreign.clone())));
    repo.expect_save().never();
    repo.expect_delete().never();
    let service = FlowService::new(Arc::new(repo), clock);
    assert!(matches!(block_on(service.start(&caller, &id)), Err(ServiceError::NotFound(_))));
    assert!(matches!(block_on(service.delete(&caller, &id)), Err(ServiceError::NotFound(_))));
}

#[test]
fn permission_is_checked_before_storage_is_touched() {
    let mut repo = MockFlowRepository::new();
    repo.expect_get().never();
    let service = FlowService::new(Arc::new(repo), clock());
    let reader = actor(&[Permission::FlowsRead], TenantId::new());
    let id = FlowId::new().to_string();
    assert!(matches!(block_on(service.start(&reader, &id)), Err(ServiceError::Forbidden(_))));
    assert!(matches!(block_on(service.update(&reader, &id, &json!({}))), Err(ServiceError::Forbidden(_))));
    assert!(matches!(block_on(service.get(&reader, "nope")), Err(ServiceError::InvalidId)));
}

#[test]
fn update_of_an_active_flow_is_a_conflict() {
    let clock = clock();
    let tenant = TenantId::new();
    let caller = actor(&[Permission::FlowsWrite], tenant);
    let flow = flow_of(tenant, FlowStatus::Active, clock.as_ref());
    let id = flow.id.to_string();
    let mut repo = MockFlowRepository::new();
    repo.expect_get().returning(move |_| Ok(Some(flow.clone())));
    repo.expect_save().never();
    let service = FlowService::new(Arc::new(repo), clock);
    let err = block_on(service.update(&caller, &id, &json!({"name": "x"}))).err();
    assert!(
        matches!(err, Some(ServiceError::Conflict(m)) if m == "Flow is not inactive. Current status: active")
    );
}

#[test]
fn create_adds_caller_and_tenant_as_owners_and_publishes_created() {
    let tenant = TenantId::new();
    let caller = actor(&[Permission::FlowsWrite], tenant);
    let mut repo = MockFlowRepository::new();
    let user = caller.user_id;
    repo.expect_insert()
        .withf(move |f, events| {
            f.owners.contains(&Owner::user(user.0))
                && f.owners.contains(&Owner::tenant(tenant.0))
                && f.tenant == Some(tenant)
                && f.status == FlowStatus::Inactive
                && events.len() == 1
                && events[0].name == names::FLOW_CREATED
        })
        .times(1)
        .returning(|_, _| Ok(()));
    let service = FlowService::new(Arc::new(repo), clock());
    block_on(service.create(&caller, &flow_doc())).unwrap_or_else(|e| panic!("{e}"));
    // Another tenant as owner, or a status, is refused with every error listed.
    let mut bad = flow_doc();
    bad["owners"] = json!([{"id": TenantId::new().to_string(), "type": "tenant"}]);
    bad["status"] = json!("active");
    let err = block_on(service.create(&caller, &bad)).err();
    let Some(ServiceError::Validation(errors)) = err else { panic!("expected validation") };
    assert_eq!(errors.len(), 2, "{errors:?}");
}

#[test]
fn a_lost_race_is_retried_on_the_reloaded_flow() {
    let clock = clock();
    let tenant = TenantId::new();
    let caller = actor(&[Permission::FlowsControl], tenant);
    let flow = flow_of(tenant, FlowStatus::Active, clock.as_ref());
    let id = flow.id.to_string();
    let mut reloaded = flow.clone();
    reloaded.revision = 4;
    let mut repo = MockFlowRepository::new();
    let mut seq = mockall::Sequence::new();
    let first = flow.clone();
    repo.expect_get().times(1).in_sequence(&mut seq).returning(move |_| Ok(Some(first.clone())));
    repo.expect_save().times(1).in_sequence(&mut seq).returning(|_, _, _| Err(PortError::Conflict));
    repo.expect_get().times(1).in_sequence(&mut seq).returning(move |_| Ok(Some(reloaded.clone())));
    repo.expect_save()
        .withf(|f, _, _| f.revision == 4 && f.status == FlowStatus::Stopping)
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_, _, _| Ok(()));
    let service = FlowService::new(Arc::new(repo), clock);
    let stopped = block_on(service.stop(&caller, &id)).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(stopped.status, FlowStatus::Stopping);
}

#[test]
fn engine_failure_records_the_reason_and_republishes_stopping() {
    let clock = clock();
    let flow = flow_of(TenantId::new(), FlowStatus::Starting, clock.as_ref());
    let event = crate::event::Event::flow_failed(flow.id, "Node \"a\": unknown component", clock.now());
    let event_id = event.id;
    let mut repo = MockFlowRepository::new();
    repo.expect_get().returning(move |_| Ok(Some(flow.clone())));
    repo.expect_save()
        .withf(move |f, events, consumed| {
            f.status == FlowStatus::Stopping
                && f.status_reason.as_deref() == Some("Node \"a\": unknown component")
                && events.iter().map(|e| e.name.as_str()).eq([names::FLOW_STOPPING])
                && consumed.is_some_and(|c| c.event_id == event_id)
        })
        .times(1)
        .returning(|_, _, _| Ok(()));
    let listener = LifecycleListener::new(Arc::new(repo), Arc::new(MockTemplateRepository::new()), clock);
    block_on(listener.handle(&event)).unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn watchdog_republishes_then_gives_up() {
    let clock = clock();
    let mut stuck = flow_of(TenantId::new(), FlowStatus::Starting, clock.as_ref());
    clock.advance(Duration::seconds(61));
    let mut exhausted = stuck.clone();
    exhausted.lifecycle_attempts = 3;
    stuck.lifecycle_attempts = 1;
    let mut repo = MockFlowRepository::new();
    let listed = vec![stuck, exhausted];
    repo.expect_list_stalled().returning(move |_, _| Ok(listed.clone()));
    repo.expect_save()
        .withf(|f, events, _| {
            f.status == FlowStatus::Starting
                && f.lifecycle_attempts == 2
                && events.iter().map(|e| e.name.as_str()).eq([names::FLOW_STARTING])
        })
        .times(1)
        .returning(|_, _, _| Ok(()));
    repo.expect_save()
        .withf(|f, events, _| {
            f.status == FlowStatus::Inactive && f.status_reason.is_some() && events.is_empty()
        })
        .times(1)
        .returning(|_, _, _| Ok(()));
    let dog = Watchdog::new(Arc::new(repo), clock, WatchdogConfig::default());
    assert_eq!(block_on(dog.tick()).map(|ids| ids.len()).ok(), Some(2));
}

/// A bus whose only member has had no assignment since 12:00:03 (past the limit).
struct StalledBus;

impl crate::ports::BusMonitor for StalledBus {
    fn members(&self) -> Vec<crate::ports::MemberStatus> {
        let since = chrono::DateTime::parse_from_rfc3339("2026-12-06T12:00:03Z").expect("time").to_utc();
        vec![crate::ports::MemberStatus {
            group: "flowmate.flow-engine".into(),
            assigned_partitions: 0,
            settled: false,
            last_progress: None,
            lag: None,
            rebalances: 0,
            received: 0,
            replaced: 2,
            stall: Some((crate::ports::Stall::NoAssignment, since)),
            stalled_too_long: true,
        }]
    }
}

#[test]
fn watchdog_names_the_stalled_consumer_group_when_it_gives_up() {
    let clock = clock();
    let mut exhausted = flow_of(TenantId::new(), FlowStatus::Starting, clock.as_ref());
    clock.advance(Duration::seconds(61));
    exhausted.lifecycle_attempts = 3;
    let mut repo = MockFlowRepository::new();
    repo.expect_list_stalled().returning(move |_, _| Ok(vec![exhausted.clone()]));
    repo.expect_save()
        .withf(|f, _, _| {
            f.status == FlowStatus::Inactive
                && f.status_reason.as_deref()
                    == Some(
                        "No engine confirmed the start after 4 attempts: consumer group \
                         flowmate.flow-engine has no assignment since 12:00:03 UTC.",
                    )
        })
        .times(1)
        .returning(|_, _, _| Ok(()));
    let dog = Watchdog::new(Arc::new(repo), clock, WatchdogConfig::default())
        .with_bus_monitor(Arc::new(StalledBus));
    assert_eq!(block_on(dog.tick()).map(|ids| ids.len()).ok(), Some(1));
}

fn user(status: UserStatus) -> User {
    User {
        id: UserId::new(),
        username: "ann@example.com".into(),
        firstname: None,
        lastname: None,
        status,
        tenant: None,
        permissions: vec![],
        can_login: true,
        created_at: Utc::now(),
        updated_at: Utc::now(),
    }
}

fn auth(users: MockUserRepository, hasher: MockPasswordHasher, tokens: MockTokenRepository) -> AuthService {
    let mut minter = MockTokenMinter::new();
    minter.expect_mint().returning(|| "secret".into());
    minter.expect_hash().returning(|t| format!("h:{t}"));
    AuthService::new(
        Arc::new(users),
        Arc::new(tokens),
        Arc::new(hasher),
        Arc::new(minter),
        clock(),
        LoginThrottle::new(ThrottleConfig::default()),
        Duration::hours(3),
    )
}

#[test]
fn login_answers_alike_for_unknown_users_and_wrong_passwords_then_rate_limits() {
    let mut users = MockUserRepository::new();
    users.expect_find_login().returning(|name| {
        Ok((name == "ann@example.com").then(|| (user(UserStatus::Active), Some("stored".into()))))
    });
    let mut hasher = MockPasswordHasher::new();
    hasher.expect_hash().times(1).returning(|_| Ok("spent".into()));
    hasher.expect_verify().returning(|_, _| Ok(false));
    let mut tokens = MockTokenRepository::new();
    tokens.expect_insert().never();
    let service = auth(users, hasher, tokens);
    let body = |u: &str| json!({"username": u, "password": "wrong-password"});
    let unknown = block_on(service.login(&body("bob@example.com"), None)).err();
    let wrong = block_on(service.login(&body("ann@example.com"), None)).err();
    assert_eq!(unknown.map(|e| e.to_string()), wrong.map(|e| e.to_string()));
    for _ in 0..4 {
        let _ = block_on(service.login(&body("ann@example.com"), Some("10.0.0.1")));
    }
    let limited = block_on(service.login(&body("ann@example.com"), Some("10.0.0.2"))).err();
    assert!(matches!(limited, Some(ServiceError::RateLimited { .. })));
}

#[test]
fn disabled_accounts_get_403_only_after_a_correct_password() {
    let mut users = MockUserRepository::new();
    users.expect_find_login().returning(|_| Ok(Some((user(UserStatus::Disabled), Some("stored".into())))));
    let mut hasher = MockPasswordHasher::new();
    hasher.expect_verify().returning(|p, _| Ok(p == "right-password"));
    let service = auth(users, hasher, MockTokenRepository::new());
    let wrong = block_on(service.login(&json!({"username": "a", "password": "wrong-password"}), None)).err();
    assert!(matches!(wrong, Some(ServiceError::Unauthenticated(_))));
    let right = block_on(service.login(&json!({"username": "a", "password": "right-password"}), None)).err();
    assert!(matches!(right, Some(ServiceError::Forbidden(_))));
}

#[test]
fn non_admins_cannot_grant_what_they_do_not_hold() {
    let tenant = TenantId::new();
    let caller = actor(&[Permission::TenantAccountCreate, Permission::FlowsRead], tenant);
    let mut users = MockUserRepository::new();
    users.expect_insert().never();
    let service = UserService::new(
        Arc::new(users),
        Arc::new(MockTenantRepository::new()),
        Arc::new(MockPasswordHasher::new()),
        clock(),
    );
    let body =
        json!({"username": "new@example.com", "password": "long-enough", "permissions": ["flows.write"]});
    assert!(matches!(block_on(service.create(&caller, &body)), Err(ServiceError::Forbidden(_))));
    let other_tenant = json!({"username": "n@example.com", "password": "long-enough", "tenant": TenantId::new().to_string()});
    assert!(matches!(block_on(service.create(&caller, &other_tenant)), Err(ServiceError::Forbidden(_))));
}

fn template(tenant: TenantId, status: TemplateStatus) -> Template {
    Template {
        id: crate::ids::TemplateId::new(),
        spec: crate::model::TemplateSpec {
            name: "tpl".into(),
            description: None,
            flow_type: Default::default(),
            cron: None,
            graph: json!({"nodes": [{"id": "a", "componentId": "webhook", "function": "receive"},
                                     {"id": "b", "componentId": "jq", "function": "transform", "fields": {}}],
                          "edges": [{"source": "a", "target": "b"}]}),
            flow_settings: Default::default(),
            tags: vec![],
            status,
        },
        tenant: Some(tenant),
        owners: vec![Owner::tenant(tenant.0)],
        created_at: Utc::now(),
        updated_at: Utc::now(),
        revision: 0,
    }
}

#[test]
fn generate_merges_deeply_validates_and_creates_an_inactive_flow() {
    let tenant = TenantId::new();
    let caller = actor(&[Permission::FlowsWrite], tenant);
    let draft = template(tenant, TemplateStatus::Draft);
    let published = template(tenant, TemplateStatus::Published);
    let (draft_id, published_id) = (draft.id, published.id);
    let mut templates = MockTemplateRepository::new();
    templates
        .expect_get()
        .returning(move |id| Ok(Some(if id == draft_id { draft.clone() } else { published.clone() })));
    let mut flows = MockFlowRepository::new();
    flows
        .expect_insert()
        .withf(move |f, _| {
            f.from_template == Some(published_id)
                && f.status == FlowStatus::Inactive
                && f.spec.graph.nodes[1].fields.get("program") == Some(&json!(".data"))
                && f.spec.graph.nodes[0].component_id == "webhook"
        })
        .times(1)
        .returning(|_, _| Ok(()));
    let clock = clock();
    let flow_service = Arc::new(FlowService::new(Arc::new(flows), clock.clone()));
    let service = TemplateService::new(Arc::new(templates), flow_service, clock);
    let conflict = block_on(service.generate(&caller, &draft_id.to_string(), &json!({}))).err();
    assert!(matches!(conflict, Some(ServiceError::Conflict(_))));
    let patch = json!({"graph": {"nodes": [{}, {"fields": {"program": ".data"}}]}});
    block_on(service.generate(&caller, &published_id.to_string(), &patch)).unwrap_or_else(|e| panic!("{e}"));
    let broken = json!({"graph": {"nodes": [{"componentId": null}, {"function": ""}]}});
    let Some(ServiceError::Validation(errors)) =
        block_on(service.generate(&caller, &published_id.to_string(), &broken)).err()
    else {
        panic!("expected validation errors")
    };
    assert_eq!(errors.len(), 2, "{errors:?}");
}
