//! Execution routes over mocked ports: list paging, get, retry, cancel, the usage report and
//! step logs (delegated to the domain).

use super::{Ports, app, flow, get, post_json, send};
use axum::http::StatusCode;
use chrono::Utc;
use flow_domain::model::{Execution, ExecutionStatus, TriggerInfo, TriggerType};
use flow_domain::query::Page;
use serde_json::json;

fn finished(flow_id: flow_domain::ids::FlowId) -> Execution {
    let trigger = TriggerInfo { trigger_type: TriggerType::Webhook, request_id: Some("r".into()) };
    let mut execution = Execution::queued(flow_id, None, Vec::new(), trigger, json!({"data": 1}), Utc::now());
    execution.status = ExecutionStatus::Succeeded;
    execution
}

#[tokio::test]
async fn list_carries_paging_meta() {
    let mut ports = Ports::default();
    let one = finished(flow_domain::ids::FlowId::new());
    ports.executions.expect_list().returning(move |_| Ok(Page { items: vec![one.clone()], total: 11 }));
    let answer = send(app(ports), get("/executions?page[size]=5")).await;
    assert_eq!(answer.status, StatusCode::OK, "{:?}", answer.body);
    assert_eq!(answer.body["meta"], json!({"page": 1, "perPage": 5, "total": 11, "totalPages": 3}));
    assert_eq!(answer.body["data"][0]["status"], "succeeded");
    assert_eq!(answer.body["data"][0]["trigger"], json!({"type": "webhook", "requestId": "r"}));
}

#[tokio::test]
async fn get_answers_one_execution_or_400_404() {
    let bad = send(app(Ports::default()), get("/executions/nope")).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert_eq!(bad.body["errors"][0]["message"], "Invalid id");

    let mut ports = Ports::default();
    ports.executions.expect_get().returning(|_| Ok(None));
    let id = flow_domain::ids::ExecutionId::new();
    let missing = send(app(ports), get(&format!("/executions/{id}"))).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);

    let mut ports = Ports::default();
    let stored = finished(flow_domain::ids::FlowId::new());
    let id = stored.id;
    ports.executions.expect_get().returning(move |_| Ok(Some(stored.clone())));
    let found = send(app(ports), get(&format!("/executions/{id}"))).await;
    assert_eq!(found.status, StatusCode::OK);
    assert_eq!(found.body["data"]["id"], id.to_string());
    assert_eq!(found.body["meta"], json!({}));
}

#[tokio::test]
async fn retry_creates_a_new_execution_and_cancel_refuses_a_finished_one() {
    let mut ports = Ports::default();
    let flow = flow("active", json!({}));
    let stored = finished(flow.id);
    let id = stored.id;
    ports.executions.expect_get().returning(move |_| Ok(Some(stored.clone())));
    ports.flows.expect_get().returning(move |_| Ok(Some(flow.clone())));
    ports.executions.expect_insert().returning(|_, _| Ok(()));
    let app = app(ports);
    let retried = send(app.clone(), post_json(&format!("/executions/{id}/retry"), "")).await;
    assert_eq!(retried.status, StatusCode::CREATED, "{:?}", retried.body);
    assert_eq!(retried.body["data"]["status"], "queued");
    assert_eq!(retried.body["data"]["trigger"]["type"], "manual");
    assert_ne!(retried.body["data"]["id"], id.to_string());
    let cancelled = send(app, post_json(&format!("/executions/{id}/cancel"), "")).await;
    assert_eq!(cancelled.status, StatusCode::CONFLICT, "{:?}", cancelled.body);
}

#[tokio::test]
async fn cancel_answers_the_cancelled_execution() {
    let mut ports = Ports::default();
    let mut running = finished(flow_domain::ids::FlowId::new());
    running.status = ExecutionStatus::Running;
    let id = running.id;
    ports.executions.expect_get().returning(move |_| Ok(Some(running.clone())));
    ports.executions.expect_save().returning(|_, _| Ok(()));
    let answer = send(app(ports), post_json(&format!("/executions/{id}/cancel"), "")).await;
    assert_eq!(answer.status, StatusCode::OK, "{:?}", answer.body);
    assert_eq!(answer.body["data"]["status"], "cancelled");
}

#[tokio::test]
async fn usage_report_is_data_with_empty_meta() {
    let mut ports = Ports::default();
    ports.executions.expect_usage().returning(|_, _, _| Ok(Vec::new()));
    let answer = send(app(ports), get("/icenter/executions?groupby=flow")).await;
    assert_eq!(answer.status, StatusCode::OK, "{:?}", answer.body);
    assert_eq!(answer.body, json!({"data": [], "meta": {}}));
    let bad = send(app(Ports::default()), get("/icenter/executions?groupby=planet")).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn step_logs_come_from_the_executions() {
    let mut ports = Ports::default();
    let flow = flow("active", json!({}));
    let flow_id = flow.id;
    ports.flows.expect_get().returning(move |_| Ok(Some(flow.clone())));
    let stored = finished(flow_id);
    ports.executions.expect_list().returning(move |query| {
        assert_eq!(query.step.as_deref(), Some("out"));
        Ok(Page { items: vec![stored.clone()], total: 1 })
    });
    let app = app(ports);
    let logs = send(app.clone(), get(&format!("/flows/{flow_id}/steps/out/logs"))).await;
    assert_eq!(logs.status, StatusCode::OK, "{:?}", logs.body);
    assert_eq!(logs.body["meta"]["total"], 1);
    assert_eq!(logs.body["data"][0]["stepId"], "out");
    let unknown = send(app, get(&format!("/flows/{flow_id}/steps/nowhere/logs"))).await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert_eq!(unknown.body["errors"][0]["message"], "No step found");
}

#[tokio::test]
async fn executions_need_a_bearer_token() {
    let request = axum::http::Request::get("/executions").body(axum::body::Body::empty()).expect("req");
    let answer = send(app(Ports::default()), request).await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
}
