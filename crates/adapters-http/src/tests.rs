//! Smoke tests of the assembled router over mocked ports: middleware, envelopes, routing and
//! the OpenAPI document; the harness ([`Ports`], [`app`], [`send`]) is shared with the
//! per-resource submodules. The full HTTP suites live in the workspace's `tests/` crate.

mod executions;
mod flows;
mod openapi;
mod webhooks;

use crate::{AppState, HttpConfig, router};
use async_trait::async_trait;
use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode, header};
use chrono::{Duration, Utc};
use flow_domain::error::PortError;
use flow_domain::ids::TenantId;
use flow_domain::ids::{TokenId, UserId};
use flow_domain::model::{AccessToken, User, UserStatus};
use flow_domain::permission::Permission;
use flow_domain::ports::{
    BusMonitor, ComponentCatalogue, ComponentSpec, ExecutionRepository, FlowRepository, Health, MemberStatus,
    MockComponentRepository, MockExecutionRepository, MockFlowRepository, MockPasswordHasher,
    MockTemplateRepository, MockTenantRepository, MockTokenMinter, MockTokenRepository, MockUserRepository,
    Stall,
};
use flow_domain::query::{Page, Visibility};
use flow_domain::services::{
    AuthService, ComponentService, ExecutionService, FlowService, LoginThrottle, TemplateService,
    TenantService, UserService, WebhookService,
};
use flow_domain::time::SystemClock;
use http_body_util::BodyExt;
use serde_json::{Value, json};
use std::sync::Arc;
use tower::ServiceExt;

pub(super) const TOKEN: &str = "secret-token";

struct Probe(Result<(), String>);

#[async_trait]
impl Health for Probe {
    async fn check(&self) -> Result<(), String> {
        self.0.clone()
    }
}

struct Members(Vec<MemberStatus>);

impl BusMonitor for Members {
    fn members(&self) -> Vec<MemberStatus> {
        self.0.clone()
    }
}

struct NoComponents;

#[async_trait]
impl ComponentCatalogue for NoComponents {
    async fn list(&self, _visibility: &Visibility) -> anyhow::Result<Vec<ComponentSpec>> {
        Ok(Vec::new())
    }
    async fn find(&self, _id: &str, _tenant: Option<TenantId>) -> anyhow::Result<Option<ComponentSpec>> {
        Ok(None)
    }
}

/// The ports a test may program before the app is built.
pub(super) struct Ports {
    pub(super) users: MockUserRepository,
    pub(super) hasher: MockPasswordHasher,
    pub(super) flows: MockFlowRepository,
    pub(super) templates: MockTemplateRepository,
    pub(super) executions: MockExecutionRepository,
    pub(super) components: MockComponentRepository,
    pub(super) database: Result<(), String>,
    pub(super) members: Vec<MemberStatus>,
    pub(super) config: HttpConfig,
}

impl Default for Ports {
    fn default() -> Self {
        Self {
            users: MockUserRepository::new(),
            hasher: MockPasswordHasher::new(),
            flows: MockFlowRepository::new(),
            templates: MockTemplateRepository::new(),
            executions: MockExecutionRepository::new(),
            components: MockComponentRepository::new(),
            database: Ok(()),
            members: Vec::new(),
            config: HttpConfig::default(),
        }
    }
}

pub(super) fn admin() -> User {
    let now = Utc::now();
    User {
        id: UserId::new(),
        username: "admin".into(),
        firstname: None,
        lastname: None,
        status: UserStatus::Active,
        tenant: None,
        permissions: vec![Permission::All],
        can_login: true,
        created_at: now,
        updated_at: now,
    }
}

pub(super) fn app(ports: Ports) -> Router {
    let clock = Arc::new(SystemClock);
    let mut minter = MockTokenMinter::new();
    minter.expect_hash().returning(|t| format!("hash:{t}"));
    let mut tokens = MockTokenRepository::new();
    tokens.expect_find_valid().returning(|hash, now| {
        let token = AccessToken {
            id: TokenId::new(),
            user_id: UserId::new(),
            hash: hash.to_string(),
            created_at: now,
            expires_at: now + Duration::hours(3),
        };
        Ok((hash == format!("hash:{TOKEN}")).then(|| (token, admin())))
    });
    let users = Arc::new(ports.users);
    let tenants = Arc::new(MockTenantRepository::new());
    let hasher = Arc::new(ports.hasher);
    let flow_repo: Arc<dyn FlowRepository> = Arc::new(ports.flows);
    let execution_repo: Arc<dyn ExecutionRepository> = Arc::new(ports.executions);
    let flows = Arc::new(FlowService::new(flow_repo.clone(), clock.clone()));
    let auth = Arc::new(AuthService::new(
        users.clone(),
        Arc::new(tokens),
        hasher.clone(),
        Arc::new(minter),
        clock.clone(),
        LoginThrottle::default(),
        Duration::hours(3),
    ));
    let state = AppState {
        webhooks: Arc::new(WebhookService::new(
            flow_repo.clone(),
            execution_repo.clone(),
            auth.clone(),
            clock.clone(),
        )),
        executions: Arc::new(ExecutionService::new(execution_repo, flow_repo, clock.clone())),
        components: Arc::new(ComponentService::new(
            Arc::new(ports.components),
            Arc::new(NoComponents),
            clock.clone(),
        )),
        auth,
        users: Arc::new(UserService::new(users, tenants.clone(), hasher, clock.clone())),
        tenants: Arc::new(TenantService::new(tenants, clock.clone())),
        templates: Arc::new(TemplateService::new(Arc::new(ports.templates), flows.clone(), clock)),
        flows,
        database: Arc::new(Probe(ports.database)),
        event_bus: Arc::new(Probe(Ok(()))),
        bus_monitor: Arc::new(Members(ports.members.clone())),
        config: ports.config,
    };
    router(state)
}

pub(super) struct Answer {
    pub(super) status: StatusCode,
    pub(super) request_id: Option<String>,
    pub(super) retry_after: Option<String>,
    pub(super) headers: HeaderMap,
    pub(super) body: Value,
    pub(super) bytes: Vec<u8>,
}

pub(super) async fn send(app: Router, request: Request<Body>) -> Answer {
    let response = app.oneshot(request).await.expect("infallible");
    let header_text =
        |name: &str| response.headers().get(name).and_then(|v| v.to_str().ok()).map(String::from);
    let (status, request_id, retry_after) =
        (response.status(), header_text("x-request-id"), header_text("retry-after"));
    let headers = response.headers().clone();
    let bytes = response.into_body().collect().await.expect("body").to_bytes().to_vec();
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    Answer { status, request_id, retry_after, headers, body, bytes }
}

pub(super) fn get(uri: &str) -> Request<Body> {
    Request::get(uri)
        .header(header::AUTHORIZATION, format!("Bearer {TOKEN}"))
        .body(Body::empty())
        .expect("request")
}

pub(super) fn post_json(uri: &str, body: &str) -> Request<Body> {
    Request::post(uri)
        .header(header::AUTHORIZATION, format!("Bearer {TOKEN}"))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_string()))
        .expect("request")
}

#[tokio::test]
async fn healthcheck_reports_each_backend() {
    let ok =
        send(app(Ports::default()), Request::get("/healthcheck").body(Body::empty()).expect("req")).await;
    assert_eq!(ok.status, StatusCode::OK);
    assert_eq!(
        ok.body,
        json!({"status": "pass", "details": {"database": {"status": "pass"}, "eventBus": {"status": "pass", "groups": []}}})
    );
    let down = Ports { database: Err("refused".into()), ..Ports::default() };
    let failed = send(app(down), Request::get("/healthcheck").body(Body::empty()).expect("req")).await;
    assert_eq!(failed.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(failed.body["status"], "fail");
    assert_eq!(failed.body["details"]["database"]["status"], "fail");
}

fn member(group: &str, stall: Option<(Stall, chrono::DateTime<Utc>)>, too_long: bool) -> MemberStatus {
    MemberStatus {
        group: group.into(),
        assigned_partitions: u32::from(stall.is_none()) * 3,
        settled: stall.is_none(),
        last_progress: None,
        lag: stall.is_none().then_some(0),
        rebalances: 1,
        received: 7,
        replaced: u64::from(too_long),
        stall,
        stalled_too_long: too_long,
    }
}

#[tokio::test]
async fn healthcheck_warns_with_200_while_a_consumer_group_stalls_too_long() {
    let since = chrono::DateTime::parse_from_rfc3339("2026-12-06T12:00:03Z").expect("time").to_utc();
    let stalled = vec![
        member("flowmate.flow-repository", None, false),
        member("flowmate.flow-engine", Some((Stall::NoAssignment, since)), true),
        member("flowmate.flow-executor", Some((Stall::NoAssignment, since)), false),
    ];
    let ports = Ports { members: stalled, ..Ports::default() };
    let answer = send(app(ports), Request::get("/healthcheck").body(Body::empty()).expect("req")).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.body["status"], "warn");
    let bus = &answer.body["details"]["eventBus"];
    assert_eq!(bus["status"], "warn");
    assert_eq!(bus["groups"][0]["status"], "pass");
    assert_eq!(bus["groups"][0]["assignedPartitions"], 3);
    assert_eq!(bus["groups"][0]["lag"], 0);
    assert_eq!(bus["groups"][1]["status"], "warn");
    assert_eq!(bus["groups"][1]["stall"], "noAssignment");
    assert_eq!(bus["groups"][1]["stalledSince"], "2026-12-06T12:00:03Z");
    assert_eq!(
        bus["groups"][1]["reason"],
        "consumer group flowmate.flow-engine has no assignment since 12:00:03 UTC"
    );
    // Stalled, but not yet for longer than the limit: reported, not warned about.
    assert_eq!(bus["groups"][2]["status"], "pass");
    assert_eq!(bus["groups"][2]["stall"], "noAssignment");
}

#[tokio::test]
async fn unknown_routes_and_methods_answer_in_the_envelope_with_a_request_id() {
    let missing = send(app(Ports::default()), get("/nowhere")).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(missing.body, json!({"errors": [{"message": "Not found", "code": 404}]}));
    assert!(missing.request_id.is_some_and(|id| id.len() == 36));

    let wrong = Request::put("/flows").header("x-request-id", "abc-123").body(Body::empty()).expect("req");
    let answer = send(app(Ports::default()), wrong).await;
    assert_eq!(answer.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(answer.body["errors"][0]["code"], 405);
    assert_eq!(answer.request_id.as_deref(), Some("abc-123"));
}

#[tokio::test]
async fn bearer_header_is_required_and_checked() {
    let none = send(app(Ports::default()), Request::get("/flows").body(Body::empty()).expect("req")).await;
    assert_eq!(none.status, StatusCode::UNAUTHORIZED);
    assert_eq!(none.body["errors"][0]["message"], crate::MISSING_AUTHORIZATION);
    let basic =
        Request::get("/flows").header(header::AUTHORIZATION, "Basic x").body(Body::empty()).expect("req");
    let answer = send(app(Ports::default()), basic).await;
    assert_eq!(answer.body["errors"][0]["message"], crate::INVALID_AUTHORIZATION);
    let unknown =
        Request::get("/flows").header(header::AUTHORIZATION, "Bearer nope").body(Body::empty()).expect("req");
    assert_eq!(send(app(Ports::default()), unknown).await.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn json_rejections_use_the_envelope() {
    let malformed = send(app(Ports::default()), post_json("/login", "{nope")).await;
    assert_eq!(malformed.status, StatusCode::BAD_REQUEST);
    assert!(malformed.body["errors"][0]["message"].as_str().is_some_and(|m| m.contains("Malformed JSON")));

    let text = Request::post("/login")
        .header(header::CONTENT_TYPE, "text/plain")
        .body(Body::from("{}"))
        .expect("req");
    let unsupported = send(app(Ports::default()), text).await;
    assert_eq!(unsupported.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(unsupported.body["errors"][0]["code"], 415);

    let small =
        Ports { config: HttpConfig { body_limit_bytes: 16, ..HttpConfig::default() }, ..Ports::default() };
    let large = send(app(small), post_json("/login", &json!({"username": "x".repeat(64)}).to_string())).await;
    assert_eq!(large.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(large.body["errors"][0]["code"], 413);
}

#[tokio::test]
async fn lists_carry_paging_meta() {
    let mut ports = Ports::default();
    ports.flows.expect_list().returning(|_| Ok(Page { items: Vec::new(), total: 12 }));
    let answer = send(app(ports), get("/flows?page[size]=5&page[number]=2")).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(
        answer.body,
        json!({"data": [], "meta": {"page": 2, "perPage": 5, "total": 12, "totalPages": 3}})
    );
}

#[tokio::test]
async fn unexpected_errors_are_bare_500s_quoting_the_request_id() {
    let mut ports = Ports::default();
    ports.flows.expect_list().returning(|_| Err(PortError::Other(anyhow::anyhow!("SELECT went wrong"))));
    let request = Request::get("/flows")
        .header(header::AUTHORIZATION, format!("Bearer {TOKEN}"))
        .header("x-request-id", "req-500")
        .body(Body::empty())
        .expect("req");
    let answer = send(app(ports), request).await;
    assert_eq!(answer.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(
        answer.body,
        json!({"errors": [{"message": "Internal server error", "code": 500, "requestId": "req-500"}]})
    );
}

/// A handler that panics answers a 500 in the envelope quoting the request id (the client's, or
/// the one generated for the request), with the id in the `x-request-id` header too.
#[tokio::test]
async fn a_panicking_handler_answers_a_500_quoting_the_request_id() {
    for sent in [Some("req-panic"), None] {
        let mut ports = Ports::default();
        ports.flows.expect_list().returning(|_| panic!("a bug in a port"));
        let mut request = Request::get("/flows").header(header::AUTHORIZATION, format!("Bearer {TOKEN}"));
        if let Some(id) = sent {
            request = request.header("x-request-id", id);
        }
        let answer = send(app(ports), request.body(Body::empty()).expect("req")).await;
        assert_eq!(answer.status, StatusCode::INTERNAL_SERVER_ERROR);
        let id = answer.request_id.clone().expect("an x-request-id header");
        if let Some(sent) = sent {
            assert_eq!(id, sent);
        }
        assert!(!id.is_empty());
        assert_eq!(
            answer.body,
            json!({"errors": [{"message": "Internal server error", "code": 500, "requestId": id}]})
        );
    }
}

#[tokio::test]
async fn multiple_and_bulk_routes_are_not_captured_by_flow_ids() {
    let answer = send(app(Ports::default()), post_json("/flows/multiple/start", r#"["bad"]"#)).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(
        answer.body,
        json!({"data": [{"errors": [{"message": "Invalid id", "code": 400, "flowId": "bad"}]}], "meta": {}})
    );
    let bulk = Request::patch("/flows/bulk")
        .header(header::AUTHORIZATION, format!("Bearer {TOKEN}"))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(r#"[{"id": "bad"}]"#))
        .expect("req");
    let answer = send(app(Ports::default()), bulk).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.body["data"][0]["errors"][0]["code"], 400);
    assert_eq!(
        send(app(Ports::default()), get("/flows/bad")).await.body["errors"][0]["message"],
        "Invalid id"
    );
}

#[tokio::test]
async fn generate_accepts_no_body() {
    let mut ports = Ports::default();
    ports.templates.expect_get().returning(|_| Ok(None));
    let id = flow_domain::ids::TemplateId::new();
    let request = Request::post(format!("/templates/{id}/generate"))
        .header(header::AUTHORIZATION, format!("Bearer {TOKEN}"))
        .body(Body::empty())
        .expect("req");
    let answer = send(app(ports), request).await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND);
    assert_eq!(answer.body["errors"][0]["message"], "Template not found");
}

#[tokio::test]
async fn users_are_served_under_both_prefixes() {
    for prefix in ["/api/users", "/users"] {
        let answer = send(app(Ports::default()), get(&format!("{prefix}/not-an-id"))).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{prefix}");
    }
}

#[tokio::test]
async fn login_rate_limit_answers_429_with_retry_after() {
    let mut ports = Ports::default();
    ports.users.expect_find_login().returning(|_| Ok(None));
    ports.hasher.expect_hash().returning(|_| Ok("h".into()));
    let app = app(ports);
    let login = || {
        let mut request = post_json("/login", r#"{"username": "who", "password": "wrong"}"#);
        let address: std::net::SocketAddr = ([127, 0, 0, 1], 4000).into();
        request.extensions_mut().insert(axum::extract::ConnectInfo(address));
        request
    };
    for _ in 0..5 {
        let answer = send(app.clone(), login()).await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
        assert_eq!(answer.retry_after, None);
    }
    let limited = send(app, login()).await;
    assert_eq!(limited.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(limited.retry_after.is_some_and(|secs| secs.parse::<u64>().is_ok_and(|s| s >= 1)));
    assert_eq!(limited.body["errors"][0]["code"], 429);
}

/// A flow with a webhook trigger node `in` and a `log` node `out`, in `status`, with
/// `flow_settings`.
pub(super) fn flow(status: &str, flow_settings: Value) -> flow_domain::model::Flow {
    let now = "2026-05-01T12:00:00.000Z";
    serde_json::from_value(json!({
        "id": flow_domain::ids::FlowId::new(),
        "name": "hook",
        "graph": {
            "nodes": [
                {"id": "in", "componentId": "webhook", "function": "receive"},
                {"id": "out", "componentId": "log", "function": "info"}
            ],
            "edges": [{"source": "in", "target": "out"}]
        },
        "flowSettings": flow_settings,
        "owners": [],
        "status": status,
        "createdAt": now,
        "updatedAt": now,
    }))
    .expect("flow fixture")
}
