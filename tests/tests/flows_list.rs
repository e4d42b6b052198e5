//! HTTP suite for `GET /flows` (SPEC §1, §4): paging meta, every filter, sort with stable ties,
//! literal case-insensitive search, bad parameters, and who may list what.

use axum::http::{Method, StatusCode};
use flowmate_tests::{Reply, TestApp, flow_body};
use serde_json::{Value, json};

const WRITER: &[&str] = &["flows.read", "flows.write"];

/// `/flows?k=v&...` with every key and value percent-encoded.
fn flows_query(pairs: &[(&str, &str)]) -> String {
    let encode = |s: &str| -> String {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect()
    };
    let query: Vec<String> = pairs.iter().map(|(k, v)| format!("{}={}", encode(k), encode(v))).collect();
    format!("/flows?{}", query.join("&"))
}

fn names(reply: &Reply) -> Vec<String> {
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    reply.body["data"]
        .as_array()
        .expect("data array")
        .iter()
        .map(|f| f["name"].as_str().expect("name").to_string())
        .collect()
}

fn ids(reply: &Reply) -> Vec<String> {
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    reply.body["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|f| f["id"].as_str().expect("id").to_string())
        .collect()
}

async fn create(app: &TestApp, token: &str, body: Value) -> String {
    let reply = app.post("/flows", token, body).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{:?}", reply.body);
    reply.body["data"]["id"].as_str().expect("id").to_string()
}

fn named(name: &str, description: &str) -> Value {
    let mut body = flow_body(name);
    body["description"] = json!(description);
    body
}

#[tokio::test]
async fn list_pages_with_meta_counting_the_same_filter() {
    let app = TestApp::spawn().await;
    let tenant = app.tenant("acme").await;
    let (_, token) = app.user(Some(&tenant), WRITER).await;
    let mut created = Vec::new();
    for i in 0..12 {
        created.push(app.flow(&token, &format!("flow {i:02}")).await);
    }
    let first = app.get("/flows", &token).await;
    assert_eq!(first.body["meta"], json!({"page": 1, "perPage": 10, "total": 12, "totalPages": 2}));
    assert_eq!(ids(&first), created[..10]);
    let second = app.get(&flows_query(&[("page[number]", "2")]), &token).await;
    assert_eq!(second.body["meta"], json!({"page": 2, "perPage": 10, "total": 12, "totalPages": 2}));
    assert_eq!(ids(&second), created[10..]);
    let third = app.get(&flows_query(&[("page[size]", "5"), ("page[number]", "3")]), &token).await;
    assert_eq!(third.body["meta"], json!({"page": 3, "perPage": 5, "total": 12, "totalPages": 3}));
    assert_eq!(ids(&third), created[10..]);
    let beyond = app.get(&flows_query(&[("page[size]", "5"), ("page[number]", "9")]), &token).await;
    assert_eq!(
        beyond.body,
        json!({"data": [], "meta": {"page": 9, "perPage": 5, "total": 12, "totalPages": 3}})
    );
    let all = app.get(&flows_query(&[("page[size]", "100")]), &token).await;
    assert_eq!(ids(&all), created);
    let filtered = app.get(&flows_query(&[("search", "flow 1"), ("page[size]", "1")]), &token).await;
    assert_eq!(filtered.body["meta"], json!({"page": 1, "perPage": 1, "total": 2, "totalPages": 2}));
    assert_eq!(ids(&filtered), created[10..11]);
    for (key, value) in
        [("page[size]", "0"), ("page[size]", "101"), ("page[size]", "x"), ("page[number]", "0")]
    {
        let reply = app.get(&flows_query(&[(key, value)]), &token).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{key}={value}: {:?}", reply.body);
        assert_eq!(reply.fields(), vec![key.to_string()]);
    }
    app.shutdown().await;
}

#[tokio::test]
async fn list_filters_by_status_with_numeric_aliases() {
    let app = TestApp::spawn().await;
    let tenant = app.tenant("acme").await;
    let (_, token) = app.user(Some(&tenant), &["flows.read", "flows.write", "flows.control"]).await;
    let running = app.flow(&token, "running").await;
    let idle = app.flow(&token, "idle").await;
    let reply = app.post_empty(&format!("/flows/{running}/start"), &token).await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    app.wait_for_status(&token, &running, "active").await;
    for (filter, expected) in [
        ("active", vec![running.clone()]),
        ("1", vec![running.clone()]),
        ("inactive", vec![idle.clone()]),
        ("0", vec![idle.clone()]),
        ("starting", vec![]),
        ("stopping", vec![]),
    ] {
        let reply = app.get(&flows_query(&[("filter[status]", filter)]), &token).await;
        assert_eq!(ids(&reply), expected, "filter[status]={filter}");
        assert_eq!(reply.body["meta"]["total"], expected.len(), "filter[status]={filter}");
    }
    let reply = app.get(&flows_query(&[("filter[status]", "running")]), &token).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(reply.fields(), vec!["filter[status]"]);
    app.shutdown().await;
}

#[tokio::test]
async fn list_filters_by_type_and_by_template() {
    let app = TestApp::spawn().await;
    let tenant = app.tenant("acme").await;
    let perms = ["flows.read", "flows.write", "templates.read", "templates.write"];
    let (_, token) = app.user(Some(&tenant), &perms).await;
    let ordinary = app.flow(&token, "ordinary").await;
    let mut body = flow_body("realtime");
    body["type"] = json!("realtime");
    let realtime = create(&app, &token, body).await;
    assert_eq!(
        ids(&app.get(&flows_query(&[("filter[type]", "realtime")]), &token).await),
        vec![realtime.clone()]
    );
    assert_eq!(
        ids(&app.get(&flows_query(&[("filter[type]", "ordinary")]), &token).await),
        vec![ordinary.clone()]
    );
    let reply = app.get(&flows_query(&[("filter[type]", "weird")]), &token).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(reply.fields(), vec!["filter[type]"]);

    let mut template = flow_body("blueprint");
    template["status"] = json!("published");
    let reply = app.post("/templates", &token, template).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{:?}", reply.body);
    let template_id = reply.body["data"]["id"].as_str().expect("template id").to_string();
    let reply = app.post_empty(&format!("/templates/{template_id}/generate"), &token).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{:?}", reply.body);
    let generated = reply.body["data"]["id"].as_str().expect("flow id").to_string();
    let reply = app.get(&flows_query(&[("filter[fromTemplate]", &template_id)]), &token).await;
    assert_eq!(ids(&reply), vec![generated]);
    let unknown = uuid::Uuid::now_v7().to_string();
    assert_eq!(
        ids(&app.get(&flows_query(&[("filter[fromTemplate]", &unknown)]), &token).await),
        Vec::<String>::new()
    );
    let reply = app.get(&flows_query(&[("filter[fromTemplate]", "not-an-id")]), &token).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(reply.messages(), vec!["Invalid id"], "SPEC §1: a malformed id in a filter is 400 Invalid id");
    app.shutdown().await;
}

#[tokio::test]
async fn list_sorts_by_each_field_both_ways_with_ties_broken_by_id() {
    let app = TestApp::spawn().await;
    let tenant = app.tenant("acme").await;
    let (_, token) = app.user(Some(&tenant), WRITER).await;
    let mut created = Vec::new();
    for name in ["charlie", "alpha", "bravo", "alpha", "bravo"] {
        created.push(app.flow(&token, name).await);
    }
    let sorted = |pairs: &[(&str, &str)]| flows_query(pairs);
    assert_eq!(ids(&app.get("/flows", &token).await), created, "default: createdAt ascending");
    assert_eq!(ids(&app.get(&sorted(&[("sort", "createdAt")]), &token).await), created);
    let mut reversed = created.clone();
    reversed.reverse();
    assert_eq!(ids(&app.get(&sorted(&[("sort", "-createdAt")]), &token).await), reversed);
    // Equal names keep a stable order: by id, in the sort's direction.
    let by_name = ids(&app.get(&sorted(&[("sort", "name")]), &token).await);
    let expected = vec![
        created[1].clone(),
        created[3].clone(),
        created[2].clone(),
        created[4].clone(),
        created[0].clone(),
    ];
    assert_eq!(by_name, expected);
    for _ in 0..3 {
        assert_eq!(ids(&app.get(&sorted(&[("sort", "name")]), &token).await), expected, "repeatable");
    }
    let mut descending = expected.clone();
    descending.reverse();
    assert_eq!(ids(&app.get(&sorted(&[("sort", "-name")]), &token).await), descending);
    // The oldest flow, once edited, is the most recently updated one.
    let reply = app.patch(&format!("/flows/{}", created[0]), &token, json!({"description": "edited"})).await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    let by_update = ids(&app.get(&sorted(&[("sort", "updatedAt")]), &token).await);
    assert_eq!(by_update.last(), Some(&created[0]));
    let by_update_desc = ids(&app.get(&sorted(&[("sort", "-updatedAt")]), &token).await);
    assert_eq!(by_update_desc.first(), Some(&created[0]));
    for bad in ["size", "+name", "--name", "NAME"] {
        let reply = app.get(&sorted(&[("sort", bad)]), &token).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "sort={bad}");
        assert_eq!(reply.fields(), vec!["sort"]);
    }
    app.shutdown().await;
}

#[tokio::test]
async fn list_search_is_case_insensitive_on_name_or_description_and_literal() {
    let app = TestApp::spawn().await;
    let tenant = app.tenant("acme").await;
    let (_, token) = app.user(Some(&tenant), WRITER).await;
    for (name, description) in [
        ("Alpha Orders", "sync the shop"),
        ("beta", "copies ALPHA contacts"),
        ("100% done", "percent"),
        ("1000 done", "no percent sign"),
        ("snake_case", "underscore"),
        ("snakeXcase", "no underscore"),
        ("a.*b", "dot star"),
        ("axxb", "plain"),
        ("back\\slash", "escape"),
    ] {
        create(&app, &token, named(name, description)).await;
    }
    let search = |text: &str| flows_query(&[("search", text), ("sort", "name")]);
    assert_eq!(names(&app.get(&search("alpha"), &token).await), vec!["Alpha Orders", "beta"]);
    assert_eq!(names(&app.get(&search("ORDERS"), &token).await), vec!["Alpha Orders"]);
    assert_eq!(names(&app.get(&search("%"), &token).await), vec!["100% done"]);
    assert_eq!(names(&app.get(&search("0%"), &token).await), vec!["100% done"]);
    assert_eq!(names(&app.get(&search("_"), &token).await), vec!["snake_case"]);
    assert_eq!(names(&app.get(&search("e_c"), &token).await), vec!["snake_case"]);
    assert_eq!(names(&app.get(&search(".*"), &token).await), vec!["a.*b"]);
    assert_eq!(names(&app.get(&search("a.*b"), &token).await), vec!["a.*b"]);
    assert_eq!(names(&app.get(&search("\\"), &token).await), vec!["back\\slash"]);
    assert_eq!(names(&app.get(&search("^a"), &token).await), Vec::<String>::new());
    let reply = app.get(&search("underscore"), &token).await;
    assert_eq!(names(&reply), vec!["snake_case", "snakeXcase"]);
    assert_eq!(reply.body["meta"]["total"], 2);
    assert_eq!(names(&app.get(&search("nothing like this"), &token).await), Vec::<String>::new());
    app.shutdown().await;
}

#[tokio::test]
async fn list_needs_flows_read_and_shows_only_the_callers_flows() {
    let app = TestApp::spawn().await;
    let (acme, globex) = (app.tenant("acme").await, app.tenant("globex").await);
    let (user, mine) = app.user(Some(&acme), WRITER).await;
    let (_, theirs) = app.user(Some(&globex), WRITER).await;
    let (_, no_read) = app.user(Some(&acme), &["flows.write"]).await;
    let own = app.flow(&mine, "own").await;
    app.flow(&theirs, "foreign").await;
    let reply = app.get("/flows", &mine).await;
    assert_eq!(ids(&reply), vec![own.clone()]);
    assert_eq!(reply.body["meta"]["total"], 1);
    let reply = app.get("/flows", &no_read).await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    assert_eq!(reply.messages(), vec!["MISSING_PERMISSION"]);
    let reply = app.call(Method::GET, "/flows", None, None).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(reply.messages(), vec!["Missing authorization header."]);
    // filter[user] is for admins only; the admin sees every tenant's flows.
    let reply = app.get(&flows_query(&[("filter[user]", &user)]), &theirs).await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN, "{:?}", reply.body);
    let reply = app.get(&flows_query(&[("filter[user]", &user)]), &app.admin).await;
    assert_eq!(ids(&reply), vec![own]);
    assert_eq!(app.get("/flows", &app.admin).await.body["meta"]["total"], 2);
    app.shutdown().await;
}
