//! Webhook use-case tests with mocked ports: only active flows accept, every auth mode accepts
//! the right credential and refuses forged, stale and replayed ones, and a repeated
//! idempotency key answers the first execution without storing a second; a synchronous call
//! runs inline when the flow allows it and stores the ended execution once.

use super::identity::AuthService;
use super::throttle::{LoginThrottle, ThrottleConfig};
use super::webhook_auth::{sign_hmac, sign_standard_webhook};
use super::webhooks::{WebhookCall, WebhookMethod, WebhookService};
use crate::error::ServiceError;
use crate::event::names;
use crate::ids::{FlowId, TenantId, TokenId, UserId};
use crate::limits::Limits;
use crate::model::{AccessToken, Execution, ExecutionStatus, Flow, FlowStatus, Owner, User, UserStatus};
use crate::permission::Permission;
use crate::ports::{
    MockExecutionRepository, MockFlowRepository, MockInlineRunner, MockPasswordHasher, MockTokenMinter,
    MockTokenRepository, MockUserRepository,
};
use crate::time::{Clock, ManualClock};
use crate::validate::flow::parse_flow_document;
use base64::Engine as _;
use chrono::{Duration, TimeZone, Utc};
use futures::executor::block_on;
use serde_json::{Value, json};
use std::sync::Arc;

const SECRET: &str = "s3cret";

fn clock() -> Arc<ManualClock> {
    Arc::new(ManualClock::new(Utc.with_ymd_and_hms(2026, 5, 1, 12, 0, 0).single().unwrap_or_default()))
}

fn flow(status: FlowStatus, settings: Value, owner: UserId, tenant: TenantId) -> Flow {
    let doc = json!({
        "name": "hook",
        "flowSettings": settings,
        "graph": {"nodes": [{"id": "a", "componentId": "webhook", "function": "receive"}]}
    });
    let spec =
        parse_flow_document(&doc, &Limits::default()).map(|d| d.spec).unwrap_or_else(|e| panic!("{e:?}"));
    let now = clock().now();
    Flow { status, revision: 1, ..Flow::new(spec, Some(tenant), vec![Owner::user(owner.0)], now) }
}

fn user(id: UserId, tenant: TenantId, permissions: Vec<Permission>) -> User {
    User {
        id,
        username: "caller".into(),
        firstname: None,
        lastname: None,
        status: UserStatus::Active,
        tenant: Some(tenant),
        permissions,
        can_login: true,
        created_at: Utc::now(),
        updated_at: Utc::now(),
    }
}

/// An auth service knowing one token ("good-token") and one password ("pw") for `caller`.
fn auth(caller: User) -> Arc<AuthService> {
    let mut users = MockUserRepository::new();
    let login = caller.clone();
    users.expect_find_login().returning(move |_| Ok(Some((login.clone(), Some("hash".into())))));
    let mut hasher = MockPasswordHasher::new();
    hasher.expect_verify().returning(|password, _| Ok(password == "pw"));
    hasher.expect_hash().returning(|_| Ok("spent".into()));
    let mut tokens = MockTokenRepository::new();
    tokens.expect_find_valid().returning(move |hash, now| {
        let token = AccessToken {
            id: TokenId::new(),
            user_id: caller.id,
            hash: hash.into(),
            created_at: now,
            expires_at: now + Duration::hours(3),
        };
        Ok((hash == "h:good-token").then(|| (token, caller.clone())))
    });
    let mut minter = MockTokenMinter::new();
    minter.expect_hash().returning(|t| format!("h:{t}"));
    Arc::new(AuthService::new(
        Arc::new(users),
        Arc::new(tokens),
        Arc::new(hasher),
        Arc::new(minter),
        clock(),
        LoginThrottle::new(ThrottleConfig::default()),
        Duration::hours(3),
    ))
}

/// A service over `flow`; `stores` is how many executions it must store.
fn hook_service(flow: Flow, caller: User, stores: usize) -> WebhookService {
    let mut flows = MockFlowRepository::new();
    flows.expect_get_shared().returning(move |id| Ok((id == flow.id).then(|| Arc::new(flow.clone()))));
    let mut executions = MockExecutionRepository::new();
    executions
        .expect_insert()
        .withf(|e: &Execution, events| {
            events.len() == 1 && events[0].name == names::FLOW_EXECUTE && e.input["data"] == json!({"a": 1})
        })
        .times(stores)
        .returning(|_, _| Ok(()));
    executions.expect_insert_idempotent().times(0);
    WebhookService::new(Arc::new(flows), Arc::new(executions), auth(caller), clock())
}

fn call(flow_id: FlowId, headers: &[(&str, &str)]) -> WebhookCall {
    WebhookCall {
        flow_id: flow_id.to_string(),
        method: WebhookMethod::Post,
        path_suffix: None,
        url: format!("/webhooks/{flow_id}"),
        headers: headers.iter().map(|(n, v)| ((*n).to_string(), (*v).to_string())).collect(),
        query: serde_json::Map::new(),
        raw_body: br#"{"a":1}"#.to_vec(),
        data: json!({"a": 1}),
        request_id: "req-1".into(),
        address: None,
    }
}

fn secured() -> Value {
    json!({"webhooks": {"requireWebhookAuth": true, "secret": SECRET}})
}

fn refused(result: Result<super::webhooks::WebhookAccepted, ServiceError>) -> bool {
    matches!(result, Err(ServiceError::Forbidden(m)) if m == "Unauthorized")
}

#[test]
fn unknown_inactive_and_malformed_flows_are_the_same_404() {
    let (owner, tenant) = (UserId::new(), TenantId::new());
    let inactive = flow(FlowStatus::Inactive, json!({}), owner, tenant);
    let id = inactive.id;
    let service = hook_service(inactive, user(owner, tenant, vec![]), 0);
    for raw in [id.to_string(), FlowId::new().to_string(), "not-an-id".to_string()] {
        let mut c = call(id, &[]);
        c.flow_id = raw.clone();
        let expected = format!("Flow {raw} either does not exist or is inactive.");
        assert!(matches!(block_on(service.accept(&c)), Err(ServiceError::NotFound(m)) if m == expected));
    }
}

#[test]
fn open_flow_accepts_and_head_stores_nothing() {
    let (owner, tenant) = (UserId::new(), TenantId::new());
    let active = flow(FlowStatus::Active, json!({}), owner, tenant);
    let id = active.id;
    let service = hook_service(active, user(owner, tenant, vec![]), 1);
    let accepted = block_on(service.accept(&call(id, &[]))).unwrap_or_else(|e| panic!("{e:?}"));
    assert_eq!(accepted.request_id, "req-1");
    assert!(accepted.execution_id.is_some() && !accepted.repeated);
    let mut head = call(id, &[]);
    head.method = WebhookMethod::Head;
    let answer = block_on(service.accept(&head)).unwrap_or_else(|e| panic!("{e:?}"));
    assert!(answer.execution_id.is_none());
}

#[test]
fn hmac_accepts_the_signature_and_refuses_forgeries() {
    let (owner, tenant) = (UserId::new(), TenantId::new());
    let active = flow(FlowStatus::Active, secured(), owner, tenant);
    let id = active.id;
    let mut flows = MockFlowRepository::new();
    flows.expect_get_shared().returning(move |_| Ok(Some(Arc::new(active.clone()))));
    let mut executions = MockExecutionRepository::new();
    let good = sign_hmac(SECRET, br#"{"a":1}"#);
    let expected_key = format!("hmac:{good}");
    executions
        .expect_insert_idempotent()
        .withf(move |e, _, _| e.idempotency_key.as_deref() == Some(expected_key.as_str()))
        .times(1)
        .returning(|_, _, _| Ok(None));
    let service = WebhookService::new(
        Arc::new(flows),
        Arc::new(executions),
        auth(user(owner, tenant, vec![])),
        clock(),
    );
    assert!(block_on(service.accept(&call(id, &[("x-hmac", &good)]))).is_ok());
    let forged = sign_hmac("guess", br#"{"a":1}"#);
    assert!(refused(block_on(service.accept(&call(id, &[("x-hmac", &forged)])))));
    assert!(refused(block_on(service.accept(&call(id, &[("x-hmac", "00")])))));
    assert!(refused(block_on(service.accept(&call(id, &[])))));
}

#[test]
fn standard_webhooks_refuse_stale_and_forged_signatures() {
    let (owner, tenant) = (UserId::new(), TenantId::new());
    let active = flow(FlowStatus::Active, secured(), owner, tenant);
    let id = active.id;
    let service = hook_service(active, user(owner, tenant, vec![]), 0);
    let now = clock().now().timestamp();
    let body = br#"{"a":1}"#;
    let stale_ts = (now - 301).to_string();
    let stale = sign_standard_webhook(SECRET, "msg_1", now - 301, body);
    let headers = [
        ("webhook-id", "msg_1"),
        ("webhook-timestamp", stale_ts.as_str()),
        ("webhook-signature", stale.as_str()),
    ];
    assert!(refused(block_on(service.accept(&call(id, &headers)))));
    let ts = now.to_string();
    let forged = sign_standard_webhook("other", "msg_1", now, body);
    let headers =
        [("webhook-id", "msg_1"), ("webhook-timestamp", ts.as_str()), ("webhook-signature", forged.as_str())];
    assert!(refused(block_on(service.accept(&call(id, &headers)))));
}

#[test]
fn standard_webhooks_replay_answers_the_first_execution() {
    let (owner, tenant) = (UserId::new(), TenantId::new());
    let active = flow(FlowStatus::Active, secured(), owner, tenant);
    let id = active.id;
    let mut flows = MockFlowRepository::new();
    flows.expect_get_shared().returning(move |_| Ok(Some(Arc::new(active.clone()))));
    let mut executions = MockExecutionRepository::new();
    let first = std::sync::Mutex::new(None::<Execution>);
    executions.expect_insert_idempotent().times(2).returning(move |e, _, window_start| {
        assert_eq!(e.idempotency_key.as_deref(), Some("webhook-id:msg_1"));
        assert_eq!(e.created_at - window_start, Duration::hours(24));
        let mut first = first.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        Ok(match first.as_ref() {
            Some(stored) => Some(stored.clone()),
            None => {
                *first = Some(e.clone());
                None
            }
        })
    });
    let service = WebhookService::new(
        Arc::new(flows),
        Arc::new(executions),
        auth(user(owner, tenant, vec![])),
        clock(),
    );
    let now = clock().now().timestamp();
    let ts = now.to_string();
    let sig = sign_standard_webhook(SECRET, "msg_1", now, br#"{"a":1}"#);
    let headers =
        [("webhook-id", "msg_1"), ("webhook-timestamp", ts.as_str()), ("webhook-signature", sig.as_str())];
    let one = block_on(service.accept(&call(id, &headers))).unwrap_or_else(|e| panic!("{e:?}"));
    // The replay brings keys of its own: the signed `webhook-id` wins over them.
    let mut replay = headers.to_vec();
    replay.extend([("idempotency-key", "fresh-key"), ("x-request-id", "fresh-request")]);
    let mut again = call(id, &replay);
    again.request_id = "req-2".into();
    let two = block_on(service.accept(&again)).unwrap_or_else(|e| panic!("{e:?}"));
    assert!(!one.repeated && two.repeated);
    assert_eq!(one.execution_id, two.execution_id);
    assert_eq!(two.request_id, "req-1");
}

/// A service over `flow` whose idempotent inserts record the key of each call.
fn key_recording_service(flow: Flow, caller: User) -> (WebhookService, Arc<std::sync::Mutex<Vec<String>>>) {
    let mut flows = MockFlowRepository::new();
    flows.expect_get_shared().returning(move |_| Ok(Some(Arc::new(flow.clone()))));
    let keys = Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = Arc::clone(&keys);
    let mut executions = MockExecutionRepository::new();
    executions.expect_insert_idempotent().returning(move |e, _, _| {
        let key = e.idempotency_key.clone().unwrap_or_default();
        seen.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(key);
        Ok(None)
    });
    let service = WebhookService::new(Arc::new(flows), Arc::new(executions), auth(caller), clock());
    (service, keys)
}

#[test]
fn a_signed_call_takes_its_key_from_the_signature_whatever_the_caller_adds() {
    let (owner, tenant) = (UserId::new(), TenantId::new());
    let active = flow(FlowStatus::Active, secured(), owner, tenant);
    let id = active.id;
    let caller = user(owner, tenant, vec![Permission::WebhooksExecute]);
    let (service, keys) = key_recording_service(active, caller);
    let good = sign_hmac(SECRET, br#"{"a":1}"#);
    let spellings = [good.clone(), good.to_uppercase(), format!("sha256={good}"), format!(" {good} ")];
    for (n, signature) in spellings.iter().enumerate() {
        let (key, request) = (format!("caller-key-{n}"), format!("request-{n}"));
        let headers = [("x-hmac", signature.as_str()), ("idempotency-key", &key), ("x-request-id", &request)];
        assert!(block_on(service.accept(&call(id, &headers))).is_ok(), "{signature}");
    }
    let now = clock().now().timestamp();
    let ts = now.to_string();
    let sig = sign_standard_webhook(SECRET, "msg_9", now, br#"{"a":1}"#);
    let standard = [
        ("webhook-id", "msg_9"),
        ("webhook-timestamp", ts.as_str()),
        ("webhook-signature", sig.as_str()),
        ("idempotency-key", "caller-key"),
    ];
    assert!(block_on(service.accept(&call(id, &standard))).is_ok());
    // Bearer calls keep the caller's `Idempotency-Key`.
    let bearer = [("authorization", "Bearer good-token"), ("idempotency-key", "caller-key")];
    assert!(block_on(service.accept(&call(id, &bearer))).is_ok());
    let keys = keys.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
    let hmac = format!("hmac:{good}");
    assert_eq!(keys, [&hmac, &hmac, &hmac, &hmac, "webhook-id:msg_9", "key:caller-key"]);
}

#[test]
fn a_non_ascii_or_malformed_authorization_is_refused_without_a_panic() {
    let (owner, tenant) = (UserId::new(), TenantId::new());
    let active = flow(FlowStatus::Active, secured(), owner, tenant);
    let id = active.id;
    let service = hook_service(active, user(owner, tenant, vec![Permission::WebhooksExecute]), 0);
    for value in [
        "Bearer \u{e9}\u{e9}\u{e9}",
        "Bearer\u{e9}\u{e9}",
        "Beare\u{e9}\u{e9}",
        "Basic\u{e9}\u{e9}",
        "Basi\u{e9}",
        "Basic \u{e9}",
        "\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}",
        "\u{fffd}\u{fffd}\u{fffd}",
        "Bearer",
        "Bearer ",
        "Basic ",
        "",
    ] {
        assert!(refused(block_on(service.accept(&call(id, &[("authorization", value)])))), "{value:?}");
    }
}

#[test]
fn bearer_and_basic_need_webhooks_execute_and_ownership() {
    let tenant = TenantId::new();
    let caller_id = UserId::new();
    let basic = |password: &str| {
        format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("caller:{password}")))
    };
    // The caller owns the flow and holds webhooks.execute.
    let owned = flow(FlowStatus::Active, secured(), caller_id, tenant);
    let id = owned.id;
    let service = hook_service(owned, user(caller_id, tenant, vec![Permission::WebhooksExecute]), 2);
    assert!(block_on(service.accept(&call(id, &[("authorization", "Bearer good-token")]))).is_ok());
    assert!(block_on(service.accept(&call(id, &[("authorization", &basic("pw"))]))).is_ok());
    assert!(refused(block_on(service.accept(&call(id, &[("authorization", "Bearer bad-token")])))));
    assert!(refused(block_on(service.accept(&call(id, &[("authorization", &basic("nope"))])))));
    // Without the permission, or without ownership, the same token is refused.
    let owned = flow(FlowStatus::Active, secured(), caller_id, tenant);
    let id = owned.id;
    let service = hook_service(owned, user(caller_id, tenant, vec![Permission::FlowsRead]), 0);
    assert!(refused(block_on(service.accept(&call(id, &[("authorization", "Bearer good-token")])))));
    let foreign = flow(FlowStatus::Active, secured(), UserId::new(), tenant);
    let id = foreign.id;
    let service = hook_service(foreign, user(caller_id, tenant, vec![Permission::WebhooksExecute]), 0);
    assert!(refused(block_on(service.accept(&call(id, &[("authorization", "Bearer good-token")])))));
}

/// A service over `flow` with an inline runner that can (or cannot) run it. Inline: the
/// execution is inserted running with its first run counted and leased (no event) before the
/// run, then saved ended; else it is inserted queued with `flow.execute`.
fn inline_service(flow: Flow, caller: User, runs_inline: bool) -> WebhookService {
    let mut flows = MockFlowRepository::new();
    flows.expect_get_shared().returning(move |id| Ok((id == flow.id).then(|| Arc::new(flow.clone()))));
    let mut executions = MockExecutionRepository::new();
    let mut order = mockall::Sequence::new();
    executions
        .expect_insert()
        .withf(move |e: &Execution, events| {
            if runs_inline {
                e.status == ExecutionStatus::Running
                    && e.attempts == 1
                    && e.lease_owner.as_deref() == Some("this-process")
                    && events.is_empty()
            } else {
                e.status == ExecutionStatus::Queued && e.attempts == 0 && events.len() == 1
            }
        })
        .times(1)
        .in_sequence(&mut order)
        .returning(|_, _| Ok(()));
    executions
        .expect_save()
        .withf(|e: &Execution, events| e.status == ExecutionStatus::Succeeded && events.is_empty())
        .times(usize::from(runs_inline))
        .in_sequence(&mut order)
        .returning(|_, _| Ok(()));
    let mut runner = MockInlineRunner::new();
    runner.expect_runs_inline().return_const(runs_inline);
    runner.expect_claim_inline().times(usize::from(runs_inline)).returning(|execution| {
        execution.status = ExecutionStatus::Running;
        execution.attempts = 1;
        execution.lease_owner = Some("this-process".into());
    });
    runner.expect_run_inline().times(usize::from(runs_inline)).returning(|_, mut execution| {
        execution.status = ExecutionStatus::Succeeded;
        execution.lease_owner = None;
        execution
    });
    WebhookService::new(Arc::new(flows), Arc::new(executions), auth(caller), clock())
        .with_inline_runner(Arc::new(runner))
}

#[test]
fn a_synchronous_call_is_stored_running_then_run_inline_and_stored_ended() {
    let (owner, tenant) = (UserId::new(), TenantId::new());
    let active = flow(FlowStatus::Active, json!({}), owner, tenant);
    let id = active.id;
    let service = inline_service(active, user(owner, tenant, vec![]), true);
    let accepted = block_on(service.accept_sync(&call(id, &[]))).unwrap_or_else(|e| panic!("{e:?}"));
    let ended = accepted.ended.unwrap_or_else(|| panic!("ran inline"));
    assert_eq!(ended.status, ExecutionStatus::Succeeded);
    assert_eq!(accepted.execution_id, Some(ended.id));
}

#[test]
fn a_synchronous_call_to_a_flow_with_outside_effects_is_queued_for_a_worker() {
    let (owner, tenant) = (UserId::new(), TenantId::new());
    let active = flow(FlowStatus::Active, json!({}), owner, tenant);
    let id = active.id;
    let service = inline_service(active, user(owner, tenant, vec![]), false);
    let accepted = block_on(service.accept_sync(&call(id, &[]))).unwrap_or_else(|e| panic!("{e:?}"));
    assert!(accepted.ended.is_none() && accepted.execution_id.is_some());
}
