//! The incoming-webhook use case (SPEC §6): find the active flow, authenticate the caller as
//! the flow's settings require, and durably record a queued execution with its `flow.execute`
//! event (once per idempotency key within 24 hours) before anything is answered.
//!
//! A call is taken in two steps so that its body is read only for a flow that will take it:
//! [`WebhookService::admit`] finds the flow and checks the caller, then the adapter parses the
//! body into the call's data and [`WebhookService::accept_admitted`] records it. Anonymous input
//! sent to an unknown, inactive or protected flow is never parsed.
//!
//! A synchronous call (`?sync=true`) to a flow the [`InlineRunner`] can run (every node free of
//! outside effects and waiting) is run in the calling process instead: no event, no worker, no
//! polling. Its execution is stored `running`, with its first run counted and leased to this
//! process, before the run (so a run that kills the process is counted, and recovered like any
//! lost run), and stored again, ended with all its steps, before the answer. A repeated call
//! (same idempotency key) is answered with the first call's execution and runs nothing.

use super::admission::ExecutionBacklog;
use super::identity::AuthService;
use super::webhook_auth::{
    StandardWebhookHeaders, WebhookSettings, hmac_idempotency_key, standard_webhook_idempotency_key,
    verify_hmac, verify_standard_webhook,
};
use crate::actor::Actor;
use crate::error::{PortError, ServiceError, ServiceResult};
use crate::event::Event;
use crate::ids::{ExecutionId, FlowId};
use crate::model::{Execution, Flow, FlowStatus, TriggerInfo, TriggerType};
use crate::permission::Permission;
use crate::ports::{ExecutionRepository, FlowRepository, InlineRunner};
use crate::time::Clock;
use base64::Engine as _;
use chrono::Duration;
use serde_json::{Map, Value, json};
use std::sync::Arc;

/// How long an idempotency key is remembered.
pub const IDEMPOTENCY_WINDOW_HOURS: i64 = 24;

/// The answer to a refused caller (the same for every way of failing).
pub const UNAUTHORIZED: &str = "Unauthorized";

/// HTTP method of a webhook call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WebhookMethod {
    /// Data in the body.
    Post,
    /// Data in the query string.
    Get,
    /// Only asks whether the flow would accept.
    Head,
}

impl WebhookMethod {
    fn as_str(self) -> &'static str {
        match self {
            WebhookMethod::Post => "POST",
            WebhookMethod::Get => "GET",
            WebhookMethod::Head => "HEAD",
        }
    }
}

/// One incoming webhook call, as parsed by the HTTP adapter.
#[derive(Debug, Clone)]
pub struct WebhookCall {
    /// The raw `{flowId}` path segment.
    pub flow_id: String,
    /// The method.
    pub method: WebhookMethod,
    /// The optional extra path segment.
    pub path_suffix: Option<String>,
    /// The request URL (path and query).
    pub url: String,
    /// Request headers, names lowercase.
    pub headers: Vec<(String, String)>,
    /// The query string as an object.
    pub query: Map<String, Value>,
    /// The body as received (signatures are computed over it).
    pub raw_body: Vec<u8>,
    /// The message data: the parsed body (POST) or the query (GET). [`WebhookService::admit`]
    /// does not read it, so an adapter may parse the body only once the call is admitted.
    pub data: Value,
    /// The request id (`x-request-id`, or generated).
    pub request_id: String,
    /// The caller's address, for the login throttle of `Basic` auth.
    pub address: Option<String>,
}

impl WebhookCall {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
}

/// An accepted call: what the caller is told.
#[derive(Debug, Clone, PartialEq)]
pub struct WebhookAccepted {
    /// The request id of the (first) call.
    pub request_id: String,
    /// The execution it created (`None` for `HEAD`).
    pub execution_id: Option<ExecutionId>,
    /// Whether this was a repeat of an earlier call with the same idempotency key.
    pub repeated: bool,
    /// The execution, already ended and stored, when a synchronous call ran it inline.
    pub ended: Option<Execution>,
}

/// A call whose flow exists, is active and accepts its caller: what
/// [`WebhookService::admit`] found, for [`WebhookService::accept_admitted`] of the same call.
#[derive(Debug)]
pub struct AdmittedCall {
    flow: Arc<Flow>,
    /// The signature to use as idempotency key, for a call authenticated by a body HMAC.
    signed_key: Option<String>,
}

/// The 404 for a flow that is unknown, malformed or not active.
pub fn flow_unavailable(raw_id: &str) -> ServiceError {
    ServiceError::NotFound(format!("Flow {raw_id} either does not exist or is inactive."))
}

fn unauthorized() -> ServiceError {
    ServiceError::Forbidden(UNAUTHORIZED.into())
}

/// Incoming webhooks.
pub struct WebhookService {
    flows: Arc<dyn FlowRepository>,
    executions: Arc<dyn ExecutionRepository>,
    auth: Arc<AuthService>,
    clock: Arc<dyn Clock>,
    inline: Option<Arc<dyn InlineRunner>>,
    backlog: Option<Arc<ExecutionBacklog>>,
}

impl WebhookService {
    /// A service over the flow and execution stores.
    pub fn new(
        flows: Arc<dyn FlowRepository>,
        executions: Arc<dyn ExecutionRepository>,
        auth: Arc<AuthService>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self { flows, executions, auth, clock, inline: None, backlog: None }
    }

    /// Refuses calls that would queue an execution while `backlog` is over its limit.
    #[must_use]
    pub fn with_backlog(mut self, backlog: Arc<ExecutionBacklog>) -> Self {
        self.backlog = Some(backlog);
        self
    }

    /// Runs synchronous calls to flows that `runner` can run inline in this process.
    #[must_use]
    pub fn with_inline_runner(mut self, runner: Arc<dyn InlineRunner>) -> Self {
        self.inline = Some(runner);
        self
    }

    /// Accepts one call: on success the execution and its `flow.execute` event are stored.
    ///
    /// # Errors
    /// `NotFound` when the flow is unknown, malformed or not active; `Forbidden` when the
    /// flow requires authentication and the caller fails it; `Unavailable` when storage is
    /// down and `Overloaded` while the execution backlog is over its limit (nothing was
    /// accepted either way).
    pub async fn accept(&self, call: &WebhookCall) -> ServiceResult<WebhookAccepted> {
        self.accept_with(call, false).await
    }

    /// Accepts a call whose caller waits for the flow's answer: like [`WebhookService::accept`],
    /// but a flow the inline runner can run is run here and stored once, ended (see the module
    /// documentation); [`WebhookAccepted::ended`] then holds it. Other flows are queued as by
    /// `accept`, and the caller waits for the worker.
    ///
    /// # Errors
    /// As [`WebhookService::accept`].
    pub async fn accept_sync(&self, call: &WebhookCall) -> ServiceResult<WebhookAccepted> {
        self.accept_with(call, true).await
    }

    async fn accept_with(&self, call: &WebhookCall, wait: bool) -> ServiceResult<WebhookAccepted> {
        let admitted = self.admit(call).await?;
        self.accept_admitted(admitted, call, wait).await
    }

    /// The first step of a call: the flow must exist and be active, and the caller must pass
    /// the flow's authentication. Nothing is read from the call's `data`.
    ///
    /// # Errors
    /// `NotFound` when the flow is unknown, malformed or not active (in the same time for each:
    /// no body is parsed for any of them); `Forbidden` when the caller fails authentication.
    pub async fn admit(&self, call: &WebhookCall) -> ServiceResult<AdmittedCall> {
        let flow = self.active_flow(&call.flow_id).await?;
        let settings = WebhookSettings::from_flow_settings(&flow.spec.flow_settings);
        let signed_key =
            if settings.require_auth { self.authorize(&flow, &settings, call).await? } else { None };
        Ok(AdmittedCall { flow, signed_key })
    }

    /// The second step of `call`, admitted by [`WebhookService::admit`], with its data now
    /// read: as [`WebhookService::accept`], or [`WebhookService::accept_sync`] when `wait`.
    /// `HEAD` records nothing.
    ///
    /// # Errors
    /// As [`WebhookService::accept`], but for the lookup and the caller's authentication.
    pub async fn accept_admitted(
        &self,
        admitted: AdmittedCall,
        call: &WebhookCall,
        wait: bool,
    ) -> ServiceResult<WebhookAccepted> {
        let AdmittedCall { flow, signed_key } = admitted;
        if call.method == WebhookMethod::Head {
            return Ok(WebhookAccepted {
                request_id: call.request_id.clone(),
                execution_id: None,
                repeated: false,
                ended: None,
            });
        }
        let now = self.clock.now();
        let trigger =
            TriggerInfo { trigger_type: TriggerType::Webhook, request_id: Some(call.request_id.clone()) };
        let mut execution =
            Execution::queued(flow.id, flow.tenant, flow.owners.clone(), trigger, message_of(call), now);
        // A signed call's key comes from what its signature covers, so a replay with a new
        // `Idempotency-Key` or `x-request-id` cannot make it run again.
        execution.idempotency_key = signed_key.or_else(|| idempotency_key(call));
        let inline = self.inline.as_ref().filter(|runner| wait && runner.runs_inline(&flow));
        if let Some(runner) = inline {
            runner.claim_inline(&mut execution);
            // Stored running, its run counted, before anything of the flow runs.
            if let Some(first) = self.record(&execution, &[], now).await? {
                return Ok(accepted(first, true));
            }
            let ended = runner.run_inline(flow, execution).await;
            return self.record_end(ended).await;
        }
        if let Some(backlog) = &self.backlog {
            backlog.admit()?;
        }
        let events = vec![Event::flow_execute(flow.id, execution.id, now)];
        match self.record(&execution, &events, now).await? {
            None => Ok(accepted(execution, false)),
            Some(first) => Ok(accepted(first, true)),
        }
    }

    /// Stores the new `execution` with `events`, once per idempotency key within the window:
    /// `Some(first)` when an earlier call with the key holds it (nothing was stored).
    async fn record(
        &self,
        execution: &Execution,
        events: &[Event],
        now: chrono::DateTime<chrono::Utc>,
    ) -> ServiceResult<Option<Execution>> {
        if execution.idempotency_key.is_none() {
            self.executions.insert(execution, events).await?;
            return Ok(None);
        }
        let window_start = now - Duration::hours(IDEMPOTENCY_WINDOW_HOURS);
        Ok(self.executions.insert_idempotent(execution, events, window_start).await?)
    }

    /// Stores the ended inline run. When the stored execution changed during the run (a cancel,
    /// or recovery after the run outlived its lease), the stored one wins: the caller is
    /// answered with it, or waits for it when it has not ended yet.
    async fn record_end(&self, ended: Execution) -> ServiceResult<WebhookAccepted> {
        match self.executions.save(&ended, &[]).await {
            Ok(()) => Ok(accepted(ended, false)),
            Err(PortError::Conflict | PortError::NotFound) => {
                let stored = self.executions.get(ended.id).await?;
                Ok(accepted(stored.unwrap_or(ended), false))
            }
            Err(err) => Err(err.into()),
        }
    }

    async fn active_flow(&self, raw_id: &str) -> ServiceResult<Arc<Flow>> {
        let Ok(id) = raw_id.parse::<FlowId>() else {
            // Look up a well-formed id anyway so a malformed one answers in the same time.
            let _ = self.flows.get_shared(FlowId(uuid::Uuid::nil())).await?;
            return Err(flow_unavailable(raw_id));
        };
        match self.flows.get_shared(id).await? {
            Some(flow) if flow.status == FlowStatus::Active => Ok(flow),
            _ => Err(flow_unavailable(raw_id)),
        }
    }

    /// Checks the caller; returns the idempotency key of a signed call (from what the
    /// signature covers: the HMAC itself, or the Standard Webhooks `webhook-id`), so a replayed
    /// signature never runs twice whatever other headers the replay carries. `Bearer` and
    /// `Basic` calls have none (their `Idempotency-Key` applies).
    async fn authorize(
        &self,
        flow: &Flow,
        settings: &WebhookSettings,
        call: &WebhookCall,
    ) -> ServiceResult<Option<String>> {
        if let Some(secret) = &settings.secret {
            if let Some(signature) = call.header(&settings.hmac_header) {
                return if verify_hmac(secret, &call.raw_body, signature) {
                    Ok(Some(hmac_idempotency_key(signature)))
                } else {
                    Err(unauthorized())
                };
            }
            if let (Some(id), Some(timestamp), Some(signature)) = (
                call.header("webhook-id"),
                call.header("webhook-timestamp"),
                call.header("webhook-signature"),
            ) {
                let headers = StandardWebhookHeaders { id, timestamp, signature };
                return verify_standard_webhook(secret, headers, &call.raw_body, self.clock.now())
                    .map(|()| Some(standard_webhook_idempotency_key(id)))
                    .map_err(|_| unauthorized());
            }
        }
        let actor = match call.header("authorization").and_then(authorization_scheme) {
            Some((Scheme::Bearer, token)) => {
                self.auth.authenticate(token).await.map_err(|_| unauthorized())?
            }
            Some((Scheme::Basic, encoded)) => {
                let (username, password) = decode_basic(encoded).ok_or_else(unauthorized)?;
                let user =
                    self.auth.check_password(&username, &password, call.address.as_deref()).await.map_err(
                        |err| match err {
                            ServiceError::RateLimited { .. } | ServiceError::Unavailable(_) => err,
                            _ => unauthorized(),
                        },
                    )?;
                Actor::for_user(&user, None)
            }
            _ => return Err(unauthorized()),
        };
        let may_call = actor.require(Permission::WebhooksExecute).is_ok()
            && (actor.can_see(flow.tenant, &flow.owners)
                || (settings.all_tenant_users && actor.tenant.is_some() && actor.tenant == flow.tenant));
        if may_call { Ok(None) } else { Err(unauthorized()) }
    }
}

fn accepted(execution: Execution, repeated: bool) -> WebhookAccepted {
    WebhookAccepted {
        request_id: execution.trigger.request_id.clone().unwrap_or_default(),
        execution_id: Some(execution.id),
        repeated,
        ended: execution.status.is_terminal().then_some(execution),
    }
}

/// The caller's key for a call that is not signed: `Idempotency-Key`, else `webhook-id`, else
/// `x-request-id` (only when the caller sent one).
fn idempotency_key(call: &WebhookCall) -> Option<String> {
    ["idempotency-key", "webhook-id", "x-request-id"]
        .iter()
        .find_map(|name| call.header(name))
        .map(str::trim)
        .filter(|key| !key.is_empty())
        .map(|key| format!("key:{key}"))
}

/// The schemes of `Authorization` a webhook accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scheme {
    Bearer,
    Basic,
}

/// The scheme and the non-empty credentials of an `Authorization` value (`<scheme> <credentials>`,
/// scheme case-insensitive). Splits on the first space, never at a byte offset, so any bytes
/// (non-ASCII included) give `None` or a pair, never a panic.
fn authorization_scheme(value: &str) -> Option<(Scheme, &str)> {
    let (scheme, credentials) = value.trim().split_once(' ')?;
    let credentials = credentials.trim();
    if credentials.is_empty() {
        return None;
    }
    if scheme.eq_ignore_ascii_case("bearer") {
        Some((Scheme::Bearer, credentials))
    } else if scheme.eq_ignore_ascii_case("basic") {
        Some((Scheme::Basic, credentials))
    } else {
        None
    }
}

fn decode_basic(encoded: &str) -> Option<(String, String)> {
    let decoded = base64::engine::general_purpose::STANDARD.decode(encoded.trim()).ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, pass) = text.split_once(':')?;
    Some((user.to_string(), pass.to_string()))
}

/// The message handed to the trigger node (SPEC §7).
fn message_of(call: &WebhookCall) -> Value {
    let headers: Map<String, Value> = call
        .headers
        .iter()
        .filter(|(name, _)| name != "authorization" && name != "cookie")
        .map(|(name, value)| (name.clone(), Value::String(value.clone())))
        .collect();
    json!({
        "id": uuid::Uuid::now_v7(),
        "data": call.data,
        "attachments": {},
        "metadata": {
            "source": { "name": "webhooks", "type": "webhook", "externalExecId": call.request_id }
        },
        "headers": headers,
        "query": call.query,
        "method": call.method.as_str(),
        "url": call.url,
        "pathSuffix": call.path_suffix,
    })
}
