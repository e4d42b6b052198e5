//! Webhook routes over mocked ports: bodies by content type, GET query data, HEAD, the path
//! suffix, idempotency keys, 404/415/413, and the `?sync=true` reply mapping.

use super::{Ports, app, flow, send};
use crate::HttpConfig;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use chrono::Utc;
use flow_domain::model::{Execution, ExecutionStatus, StepRecord, StepStatus, TriggerInfo, TriggerType};
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Ports with one active flow; returns its id.
fn with_active_flow(ports: &mut Ports) -> String {
    let flow = flow("active", json!({}));
    let id = flow.id.to_string();
    let shared = Arc::new(flow.clone());
    ports.flows.expect_get().returning(move |_| Ok(Some(flow.clone())));
    ports.flows.expect_get_shared().returning(move |_| Ok(Some(shared.clone())));
    id
}

/// The input and idempotency key of each inserted execution.
type Inserted = Arc<Mutex<Vec<(Value, Option<String>)>>>;

/// Records the inputs of inserted executions (and their idempotency keys).
fn recording_inserts(ports: &mut Ports) -> Inserted {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = seen.clone();
    ports.executions.expect_insert().returning(move |execution, events| {
        assert_eq!(events.len(), 1, "one flow.execute event");
        sink.lock().expect("lock").push((execution.input.clone(), execution.idempotency_key.clone()));
        Ok(())
    });
    seen
}

fn post(uri: &str, content_type: Option<&str>, body: &str) -> Request<Body> {
    let mut request = Request::post(uri);
    if let Some(content_type) = content_type {
        request = request.header(header::CONTENT_TYPE, content_type);
    }
    request.body(Body::from(body.to_string())).expect("request")
}

#[tokio::test]
async fn a_json_post_is_accepted_with_a_receipt() {
    let mut ports = Ports::default();
    let id = with_active_flow(&mut ports);
    let seen = recording_inserts(&mut ports);
    let answer =
        send(app(ports), post(&format!("/webhooks/{id}?x=1"), Some("application/json"), r#"{"a": 1}"#)).await;
    assert_eq!(answer.status, StatusCode::OK, "{:?}", answer.body);
    assert_eq!(answer.body["data"]["message"], "thank you");
    assert_eq!(answer.body["data"]["requestId"].as_str(), answer.request_id.as_deref());
    assert!(answer.body["data"]["executionId"].as_str().is_some_and(|e| e.len() == 36));
    let seen = seen.lock().expect("lock");
    let (input, key) = &seen[0];
    assert_eq!(input["data"], json!({"a": 1}));
    assert_eq!(input["query"], json!({"x": "1"}));
    assert_eq!(input["method"], "POST");
    assert_eq!(input["url"], format!("/webhooks/{id}?x=1"));
    assert_eq!(input["pathSuffix"], Value::Null);
    assert_eq!(input["headers"]["content-type"], "application/json");
    // The request id was generated, not sent: it is no idempotency key.
    assert_eq!(*key, None);
    assert!(input["headers"]["x-request-id"].is_null());
}

#[tokio::test]
async fn a_client_request_id_is_the_idempotency_key() {
    let mut ports = Ports::default();
    let id = with_active_flow(&mut ports);
    let keys = Arc::new(Mutex::new(Vec::new()));
    let sink = keys.clone();
    ports.executions.expect_insert_idempotent().returning(move |execution, _, _| {
        sink.lock().expect("lock").push(execution.idempotency_key.clone());
        Ok(None)
    });
    let mut request = post(&format!("/hook/{id}"), Some("text/plain"), "hello");
    request.headers_mut().insert("x-request-id", "req-7".parse().expect("header"));
    let answer = send(app(ports), request).await;
    assert_eq!(answer.status, StatusCode::OK, "{:?}", answer.body);
    assert_eq!(answer.body["data"]["requestId"], "req-7");
    assert_eq!(*keys.lock().expect("lock"), [Some("key:req-7".to_string())]);
}

#[tokio::test]
async fn get_takes_the_query_as_data_and_the_suffix_is_kept() {
    let mut ports = Ports::default();
    let id = with_active_flow(&mut ports);
    let seen = recording_inserts(&mut ports);
    let request = Request::get(format!("/hook/{id}/orders?q=1&w=a&w=b")).body(Body::empty()).expect("req");
    let answer = send(app(ports), request).await;
    assert_eq!(answer.status, StatusCode::OK, "{:?}", answer.body);
    let seen = seen.lock().expect("lock");
    let (input, _) = &seen[0];
    assert_eq!(input["data"], json!({"q": "1", "w": ["a", "b"]}));
    assert_eq!(input["method"], "GET");
    assert_eq!(input["pathSuffix"], "orders");
}

#[tokio::test]
async fn head_answers_200_without_executing() {
    // No insert expectation: executing anything would fail the test.
    for template in ["/webhooks/{}", "/webhooks/{}/x", "/hook/{}", "/hook/{}/x"] {
        let mut ports = Ports::default();
        let id = with_active_flow(&mut ports);
        let uri = template.replace("{}", &id);
        let answer = send(app(ports), Request::head(&uri).body(Body::empty()).expect("req")).await;
        assert_eq!(answer.status, StatusCode::OK, "{uri}");
        assert!(answer.bytes.is_empty());
    }
}

#[tokio::test]
async fn unknown_or_inactive_flows_are_404() {
    let mut ports = Ports::default();
    let inactive = flow("inactive", json!({}));
    let id = inactive.id.to_string();
    ports.flows.expect_get_shared().returning(move |_| Ok(Some(Arc::new(inactive.clone()))));
    let answer = send(app(ports), post(&format!("/webhooks/{id}"), Some("application/json"), "{}")).await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND);
    assert_eq!(
        answer.body,
        json!({"errors": [{"message": format!("Flow {id} either does not exist or is inactive."), "code": 404}]})
    );
}

#[tokio::test]
async fn bad_bodies_are_refused_before_anything_is_stored() {
    // A content type no parser takes is refused on the header alone: no lookup (the ports
    // have no expectations, so one would fail the test).
    let id = flow_domain::ids::FlowId::new();
    let cases = [(None, crate::MISSING_CONTENT_TYPE), (Some("image/png"), crate::UNSUPPORTED_CONTENT_TYPE)];
    for (content_type, message) in cases {
        let answer = send(app(Ports::default()), post(&format!("/webhooks/{id}"), content_type, "{}")).await;
        assert_eq!(answer.status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{content_type:?}");
        assert_eq!(answer.body["errors"][0]["code"], 415);
        assert_eq!(answer.body["errors"][0]["message"], message);
    }
    // A malformed or too deep body of an active flow: 400, and no insert expectation.
    let deep = format!("{}{}", "[".repeat(65), "]".repeat(65));
    let cases = [
        ("application/json", "{nope", "Malformed JSON"),
        ("application/xml", "<a><b></a>", "Malformed XML"),
        (
            "application/json",
            deep.as_str(),
            "Body nesting is deeper than 64 levels (FLOWMATE_MAX_BODY_DEPTH).",
        ),
    ];
    for (content_type, body, message) in cases {
        let mut ports = Ports::default();
        let id = with_active_flow(&mut ports);
        let answer = send(app(ports), post(&format!("/webhooks/{id}"), Some(content_type), body)).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{body}");
        let text = answer.body["errors"][0]["message"].as_str().unwrap_or_default();
        assert!(text.starts_with(message), "{text}");
    }
    let small =
        Ports { config: HttpConfig { body_limit_bytes: 16, ..HttpConfig::default() }, ..Ports::default() };
    let large = send(app(small), post(&format!("/webhooks/{id}"), Some("text/plain"), &"x".repeat(64))).await;
    assert_eq!(large.status, StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn a_body_is_parsed_only_for_a_flow_that_takes_it() {
    // Malformed and too deep bodies sent to an unknown or inactive flow are never parsed:
    // the answer is the flow's 404, not the body's 400.
    let deep = format!("{}{}", "<a>".repeat(1_000), "</a>".repeat(1_000));
    for (content_type, body) in [("application/json", "{nope"), ("application/xml", deep.as_str())] {
        let mut ports = Ports::default();
        ports.flows.expect_get_shared().returning(|_| Ok(None));
        let unknown = flow_domain::ids::FlowId::new();
        let answer = send(app(ports), post(&format!("/webhooks/{unknown}"), Some(content_type), body)).await;
        assert_eq!(answer.status, StatusCode::NOT_FOUND, "{content_type}");
        let mut ports = Ports::default();
        let inactive = flow("inactive", json!({}));
        let id = inactive.id.to_string();
        ports.flows.expect_get_shared().returning(move |_| Ok(Some(Arc::new(inactive.clone()))));
        let answer = send(app(ports), post(&format!("/webhooks/{id}"), Some(content_type), body)).await;
        assert_eq!(answer.status, StatusCode::NOT_FOUND, "{content_type}");
    }
}

#[tokio::test]
async fn get_data_is_held_to_the_nesting_limit() {
    // Query data nests two deep at most (a repeated key is an array).
    let mut ports = Ports {
        config: HttpConfig {
            limits: flow_domain::limits::Limits { max_depth: 1, ..Default::default() },
            ..HttpConfig::default()
        },
        ..Ports::default()
    };
    let id = with_active_flow(&mut ports);
    let answer =
        send(app(ports), Request::get(format!("/hook/{id}?w=a&w=b")).body(Body::empty()).expect("req")).await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        answer.body["errors"][0]["message"],
        "Body nesting is deeper than 1 levels (FLOWMATE_MAX_BODY_DEPTH)."
    );
}

/// Ports whose active flow accepts a call and whose stored execution then reads as `finished`.
fn sync_ports(finished: Execution, timeout: Duration) -> Ports {
    let mut ports = Ports {
        config: HttpConfig { webhook_sync_timeout: timeout, ..HttpConfig::default() },
        ..Ports::default()
    };
    with_active_flow(&mut ports);
    ports.executions.expect_insert().returning(|_, _| Ok(()));
    ports.executions.expect_get().returning(move |id| {
        let mut execution = finished.clone();
        execution.id = id;
        Ok(Some(execution))
    });
    ports
}

fn execution(status: ExecutionStatus, step: Option<StepRecord>) -> Execution {
    let trigger = TriggerInfo { trigger_type: TriggerType::Webhook, request_id: None };
    let mut execution =
        Execution::queued(flow_domain::ids::FlowId::new(), None, Vec::new(), trigger, json!({}), Utc::now());
    execution.status = status;
    if let Some(step) = step {
        execution.steps.insert("out".into(), step);
    }
    execution
}

fn finished_step(status: StepStatus, output: Option<Value>, error: Option<&str>) -> StepRecord {
    let mut step = StepRecord::started("log", Utc::now());
    step.status = status;
    step.finished_at = Some(Utc::now());
    step.last_error = error.map(String::from);
    if let Some(output) = output {
        step.record_output(&output);
    }
    step
}

async fn call_sync(ports: Ports) -> super::Answer {
    let flow_id = flow_domain::ids::FlowId::new();
    send(app(ports), post(&format!("/webhooks/{flow_id}?sync=true"), Some("application/json"), "{}")).await
}

fn execution_header(answer: &super::Answer) -> Option<String> {
    answer.headers.get("x-execution-id").and_then(|v| v.to_str().ok()).map(String::from)
}

#[tokio::test]
async fn sync_success_answers_the_reply() {
    let step = finished_step(StepStatus::Succeeded, Some(json!({"data": {"greeting": "hi"}})), None);
    let ports = sync_ports(execution(ExecutionStatus::Succeeded, Some(step)), Duration::from_secs(30));
    let answer = call_sync(ports).await;
    assert_eq!(answer.status, StatusCode::OK, "{:?}", answer.body);
    assert_eq!(answer.body, json!({"greeting": "hi"}));
    assert!(execution_header(&answer).is_some_and(|id| id.len() == 36));
}

#[tokio::test]
async fn sync_failure_answers_500_with_the_step_error() {
    let step = finished_step(StepStatus::Failed, None, Some("boom"));
    let ports = sync_ports(execution(ExecutionStatus::Failed, Some(step)), Duration::from_secs(30));
    let answer = call_sync(ports).await;
    assert_eq!(answer.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(answer.body["errors"][0]["message"], "boom");
    assert_eq!(answer.body["errors"][0]["requestId"].as_str(), answer.request_id.as_deref());
    assert!(execution_header(&answer).is_some());
}

#[tokio::test]
async fn sync_cancellation_answers_500() {
    let ports = sync_ports(execution(ExecutionStatus::Cancelled, None), Duration::from_secs(30));
    let answer = call_sync(ports).await;
    assert_eq!(answer.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(answer.body["errors"][0]["message"], crate::webhook_sync::CANCELLED);
}

#[tokio::test]
async fn sync_timeout_answers_504_with_the_execution_id() {
    // A zero wait: the first poll sees the execution still running and gives up at once.
    let ports = sync_ports(execution(ExecutionStatus::Running, None), Duration::ZERO);
    let answer = call_sync(ports).await;
    assert_eq!(answer.status, StatusCode::GATEWAY_TIMEOUT, "{:?}", answer.body);
    assert_eq!(answer.body["errors"][0]["code"], 504);
    assert!(execution_header(&answer).is_some());
}
