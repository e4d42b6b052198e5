//! Tests of the built-in components' execution (`flow_engine::components`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use flow_engine::components::{
    CallContext, CodeComponent, Component, ComponentRegistry, DelayComponent, FilterComponent, HttpComponent,
    HttpConfig, JqComponent,
};
use serde_json::{Map, Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn fields(v: Value) -> Map<String, Value> {
    v.as_object().cloned().unwrap()
}

fn msg(data: Value) -> Value {
    json!({ "id": "m1", "data": data, "attachments": {}, "metadata": {}, "headers": {},
            "query": {}, "method": "POST", "url": "/hook", "pathSuffix": null })
}

fn ctx() -> CallContext {
    CallContext {
        flow_id: "f1".into(),
        step_id: "s1".into(),
        allow_private_networks: true,
        sandbox: common::sandbox(),
        ..CallContext::default()
    }
}

fn http() -> HttpComponent {
    HttpComponent::new(HttpConfig { base_backoff: Duration::from_millis(5), ..HttpConfig::default() })
        .unwrap()
}

#[tokio::test]
async fn registry_has_every_builtin() {
    let registry = ComponentRegistry::builtin(HttpConfig::default()).unwrap().with_sandbox(common::sandbox());
    assert_eq!(registry.ids(), ["code", "delay", "filter", "http", "jq", "log", "scheduler", "webhook"]);
    let webhook = registry.get("webhook").unwrap();
    let m = msg(json!({"a": 1}));
    assert_eq!(webhook.call("receive", &Map::new(), &m, &ctx()).await.unwrap(), vec![m.clone()]);
    assert!(webhook.call("nope", &Map::new(), &m, &ctx()).await.is_err());
    let log = registry.get("log").unwrap();
    let out = log.call("info", &fields(json!({"level": "warn"})), &m, &ctx()).await.unwrap();
    assert_eq!(out, vec![m]);
}

#[tokio::test]
async fn jq_one_many_and_errors() {
    let m = msg(json!({"items": [1, 2, 3]}));
    let one = JqComponent
        .call("transform", &fields(json!({"program": ".data.items | length"})), &m, &ctx())
        .await
        .unwrap();
    assert_eq!(one.len(), 1);
    assert_eq!(one[0]["data"], json!(3));
    assert_eq!(one[0]["id"], json!("m1"));
    let many = JqComponent
        .call("transform", &fields(json!({"program": ".data.items[] | {n: .}"})), &m, &ctx())
        .await
        .unwrap();
    assert_eq!(
        many.iter().map(|m| m["data"]["n"].clone()).collect::<Vec<_>>(),
        [json!(1), json!(2), json!(3)]
    );
    let none = JqComponent.call("transform", &fields(json!({"program": "empty"})), &m, &ctx()).await.unwrap();
    assert!(none.is_empty());
    let syntax =
        JqComponent.call("transform", &fields(json!({"program": ".[["})), &m, &ctx()).await.unwrap_err();
    assert!(!syntax.retryable);
    let runtime = JqComponent
        .call("transform", &fields(json!({"program": "error(\"boom\")"})), &m, &ctx())
        .await
        .unwrap_err();
    assert!(runtime.message.contains("boom"), "{}", runtime.message);
    let too_many =
        JqComponent.call("transform", &fields(json!({"program": "range(5000)"})), &m, &ctx()).await;
    assert!(too_many.is_err());
    assert!(JqComponent.call("transform", &Map::new(), &m, &ctx()).await.is_err());
}

#[tokio::test]
async fn filter_true_and_false() {
    let m = msg(json!({"n": 5}));
    let kept = FilterComponent
        .call("filter", &fields(json!({"condition": ".data.n > 3"})), &m, &ctx())
        .await
        .unwrap();
    assert_eq!(kept, vec![m.clone()]);
    let dropped = FilterComponent
        .call("filter", &fields(json!({"condition": ".data.n > 10"})), &m, &ctx())
        .await
        .unwrap();
    assert!(dropped.is_empty());
    assert!(FilterComponent.call("filter", &fields(json!({"condition": "{"})), &m, &ctx()).await.is_err());
}

#[tokio::test]
async fn code_runs_a_script() {
    let m = msg(json!({"a": 2, "name": "x"}));
    let out = CodeComponent
        .call(
            "run",
            &fields(json!({"script": "#{ double: msg.data.a * 2, name: msg.data.name + \"!\" }"})),
            &m,
            &ctx(),
        )
        .await
        .unwrap();
    assert_eq!(out.len(), 1);
    assert_eq!(out[0]["data"], json!({"double": 4, "name": "x!"}));
    let many = CodeComponent
        .call("run", &fields(json!({"script": "[1, 2, #{ b: true }]"})), &m, &ctx())
        .await
        .unwrap();
    assert_eq!(
        many.iter().map(|m| m["data"].clone()).collect::<Vec<_>>(),
        [json!(1), json!(2), json!({"b": true})]
    );
    let none = CodeComponent.call("run", &fields(json!({"script": "let x = 1;"})), &m, &ctx()).await.unwrap();
    assert!(none.is_empty());
    let err =
        CodeComponent.call("run", &fields(json!({"script": "throw \"bad\""})), &m, &ctx()).await.unwrap_err();
    assert!(err.message.contains("bad"));
}

#[tokio::test]
async fn code_infinite_loop_stopped_by_operation_limit() {
    let started = Instant::now();
    let err = CodeComponent
        .call(
            "run",
            &fields(json!({"script": "loop {}", "limits": {"operations": 10000, "timeMs": 30000}})),
            &msg(json!({})),
            &ctx(),
        )
        .await
        .unwrap_err();
    assert!(err.message.to_lowercase().contains("operations"), "{}", err.message);
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn code_infinite_loop_stopped_by_wall_clock() {
    let started = Instant::now();
    let err = CodeComponent
        .call(
            "run",
            &fields(json!({"script": "loop {}", "limits": {"operations": 100000000, "timeMs": 200}})),
            &msg(json!({})),
            &ctx(),
        )
        .await
        .unwrap_err();
    assert!(err.message.contains("time limit"), "{}", err.message);
    let elapsed = started.elapsed();
    assert!(elapsed >= Duration::from_millis(200) && elapsed < Duration::from_secs(5), "{elapsed:?}");
}

#[tokio::test]
async fn code_size_limits() {
    let big_string = CodeComponent
        .call(
            "run",
            &fields(json!({"script": "let s = \"x\"; loop { s += s; }", "limits": {"memoryBytes": 1024}})),
            &msg(json!({})),
            &ctx(),
        )
        .await
        .unwrap_err();
    assert!(
        big_string.message.to_lowercase().contains("length")
            || big_string.message.to_lowercase().contains("size"),
        "{}",
        big_string.message
    );
    let big_array = CodeComponent
        .call(
            "run",
            &fields(json!({"script": "let a = []; loop { a.push(1); }", "limits": {"memoryBytes": 6400}})),
            &msg(json!({})),
            &ctx(),
        )
        .await
        .unwrap_err();
    assert!(
        big_array.message.to_lowercase().contains("array")
            || big_array.message.to_lowercase().contains("size"),
        "{}",
        big_array.message
    );
    let no_eval =
        CodeComponent.call("run", &fields(json!({"script": "eval(\"1\")"})), &msg(json!({})), &ctx()).await;
    assert!(no_eval.is_err());
    let no_import = CodeComponent
        .call("run", &fields(json!({"script": "import \"/etc/passwd\" as p; 1"})), &msg(json!({})), &ctx())
        .await;
    assert!(no_import.is_err());
}

#[tokio::test]
async fn delay_waits_and_is_cancellable() {
    let c = ctx();
    let out =
        DelayComponent::default().call("wait", &fields(json!({"ms": 10})), &msg(json!(1)), &c).await.unwrap();
    assert_eq!(out.len(), 1);
    let cancel = c.cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(50)).await;
        cancel.cancel();
    });
    let started = Instant::now();
    let err = DelayComponent::default()
        .call("wait", &fields(json!({"ms": 60000})), &msg(json!(1)), &c)
        .await
        .unwrap_err();
    assert_eq!(err.message, "cancelled");
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(
        DelayComponent::default()
            .call("wait", &fields(json!({"ms": 4_000_000})), &msg(json!(1)), &ctx())
            .await
            .is_err()
    );
}

#[tokio::test]
async fn http_success() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/items"))
        .and(wiremock::matchers::query_param("q", "1"))
        .and(wiremock::matchers::header("x-key", "k"))
        .and(wiremock::matchers::body_json(json!({"a": 1})))
        .respond_with(
            ResponseTemplate::new(201).set_body_json(json!({"ok": true})).insert_header("x-reply", "yes"),
        )
        .expect(1)
        .mount(&server)
        .await;
    let f = fields(json!({"method": "POST", "url": format!("{}/items", server.uri()), "query": {"q": "1"},
                          "headers": {"x-key": "k"}, "body": {"a": 1}}));
    let out = http().call("request", &f, &msg(json!({})), &ctx()).await.unwrap();
    assert_eq!(out.len(), 1);
    assert_eq!(out[0]["data"], json!({"ok": true}));
    assert_eq!(out[0]["status"], json!(201));
    assert_eq!(out[0]["headers"]["x-reply"], json!("yes"));
}

#[tokio::test]
async fn http_without_body_posts_the_message_data() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/sink"))
        .and(wiremock::matchers::body_json(json!({"order": 7})))
        .respond_with(ResponseTemplate::new(200))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/sink"))
        .respond_with(ResponseTemplate::new(200))
        .expect(1)
        .mount(&server)
        .await;
    let post = fields(json!({"method": "POST", "url": format!("{}/sink", server.uri())}));
    http().call("request", &post, &msg(json!({"order": 7})), &ctx()).await.unwrap();
    let get = fields(json!({"url": format!("{}/sink", server.uri())}));
    http().call("request", &get, &msg(json!({"order": 7})), &ctx()).await.unwrap();
    let requests = server.received_requests().await.unwrap_or_default();
    assert!(requests.iter().any(|r| r.method.as_str() == "GET" && r.body.is_empty()));
}

#[tokio::test]
async fn http_retries_500_then_succeeds() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(500))
        .up_to_n_times(2)
        .expect(2)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_string("plain"))
        .expect(1)
        .mount(&server)
        .await;
    let out =
        http().call("request", &fields(json!({"url": server.uri()})), &msg(json!({})), &ctx()).await.unwrap();
    assert_eq!(out[0]["data"], json!("plain"));
}

#[tokio::test]
async fn http_honours_retry_after() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(429).insert_header("Retry-After", "1"))
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([1])))
        .expect(1)
        .mount(&server)
        .await;
    let started = Instant::now();
    let out =
        http().call("request", &fields(json!({"url": server.uri()})), &msg(json!({})), &ctx()).await.unwrap();
    assert!(started.elapsed() >= Duration::from_secs(1), "{:?}", started.elapsed());
    assert_eq!(out[0]["data"], json!([1]));
}

#[tokio::test]
async fn http_gives_up_after_five_retries() {
    let server = MockServer::start().await;
    Mock::given(method("GET")).respond_with(ResponseTemplate::new(503)).expect(6).mount(&server).await;
    let err = http()
        .call("request", &fields(json!({"url": server.uri()})), &msg(json!({})), &ctx())
        .await
        .unwrap_err();
    assert!(err.retryable);
    assert!(err.message.contains("503"), "{}", err.message);
}

#[tokio::test]
async fn http_client_error_is_not_retried() {
    let server = MockServer::start().await;
    Mock::given(method("GET")).respond_with(ResponseTemplate::new(404)).expect(1).mount(&server).await;
    let err = http()
        .call("request", &fields(json!({"url": server.uri()})), &msg(json!({})), &ctx())
        .await
        .unwrap_err();
    assert!(!err.retryable);
}

#[tokio::test]
async fn http_connection_errors_are_retried() {
    // A port nobody listens on: bind, read the port, drop the listener.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let f = fields(json!({"url": format!("http://127.0.0.1:{port}/"), "maxRetries": 2}));
    let err = http().call("request", &f, &msg(json!({})), &ctx()).await.unwrap_err();
    assert!(err.retryable);
    assert!(err.message.contains("after 2 retries"), "{}", err.message);
}

#[tokio::test]
async fn http_refuses_private_destinations() {
    let server = MockServer::start().await;
    Mock::given(method("GET")).respond_with(ResponseTemplate::new(200)).expect(0).mount(&server).await;
    let c = CallContext { allow_private_networks: false, ..ctx() };
    for url in [
        server.uri(),
        "http://localhost:1/".into(),
        "http://[::1]:1/".into(),
        "http://10.0.0.1/".into(),
        "http://169.254.169.254/latest".into(),
        "http://0.0.0.0:1/".into(),
        "http://[::ffff:127.0.0.1]:1/".into(),
    ] {
        let err =
            http().call("request", &fields(json!({"url": url})), &msg(json!({})), &c).await.unwrap_err();
        assert!(!err.retryable, "{url}");
        assert!(err.message.contains("private"), "{url}: {}", err.message);
    }
}

#[test]
fn forbidden_addresses() {
    use flow_engine::components::is_forbidden_address;
    for ip in [
        "127.0.0.1",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.1.1",
        "0.0.0.0",
        "100.64.0.1",
        "::1",
        "::",
        "fc00::1",
        "fd12::1",
        "fe80::1",
        "::ffff:10.0.0.1",
    ] {
        assert!(is_forbidden_address(ip.parse().unwrap()), "{ip}");
    }
    for ip in ["8.8.8.8", "1.1.1.1", "2606:4700::1111", "::ffff:8.8.8.8"] {
        assert!(!is_forbidden_address(ip.parse().unwrap()), "{ip}");
    }
}
