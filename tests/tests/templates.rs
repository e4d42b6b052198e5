//! HTTP suite for templates (SPEC §8): list with its filters, create, get, patch (published
//! templates accept only a status change), delete, each with 401/403/404/400. Generation of
//! flows is in `templates_generate.rs`.

use axum::http::{Method, StatusCode};
use flowmate_tests::{Reply, TestApp, template_body};
use serde_json::{Value, json};

const AUTHOR: &[&str] = &["templates.read", "templates.write"];

fn assert_error(reply: &Reply, status: StatusCode, message: &str) {
    assert_eq!(reply.status, status, "{:?}", reply.body);
    assert_eq!(reply.messages(), vec![message.to_string()], "{:?}", reply.body);
    assert_eq!(reply.body["errors"][0]["code"], status.as_u16());
}

/// `/templates?k=v&...` with every key and value percent-encoded.
fn templates_query(pairs: &[(&str, &str)]) -> String {
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
    format!("/templates?{}", query.join("&"))
}

fn names(reply: &Reply) -> Vec<String> {
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    let data = reply.body["data"].as_array().expect("data array");
    data.iter().map(|t| t["name"].as_str().expect("name").to_string()).collect()
}

async fn create(app: &TestApp, token: &str, body: Value) -> Value {
    let reply = app.post("/templates", token, body).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{:?}", reply.body);
    reply.body["data"].clone()
}

fn template(name: &str, changes: Value) -> Value {
    let mut body = template_body(name);
    for (key, value) in changes.as_object().expect("object") {
        body[key] = value.clone();
    }
    body
}

#[tokio::test]
async fn create_answers_201_with_a_draft_owned_by_the_caller_and_its_tenant() {
    let app = TestApp::spawn().await;
    let tenant = app.tenant("acme").await;
    let (user, token) = app.user(Some(&tenant), AUTHOR).await;
    let reply = app.post("/templates", &token, template_body("blueprint")).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{:?}", reply.body);
    assert_eq!(reply.body["meta"], json!({}));
    let created = &reply.body["data"];
    assert_eq!(created["name"], "blueprint");
    assert_eq!(created["status"], "draft");
    assert_eq!(created["tags"], json!(["premium"]));
    assert_eq!(created["tenant"], tenant);
    assert_eq!(created["owners"], json!([{"id": user, "type": "user"}, {"id": tenant, "type": "tenant"}]));
    assert_eq!(created["graph"], template_body("blueprint")["graph"]);
    for stamp in ["createdAt", "updatedAt"] {
        let text = created[stamp].as_str().expect("timestamp");
        assert!(text.len() == 24 && text.ends_with('Z'), "{stamp}: {text}");
    }
    let id = created["id"].as_str().expect("id");
    let fetched = app.get(&format!("/templates/{id}"), &token).await;
    assert_eq!(fetched.body["data"], *created);
    let published = create(&app, &token, template("ready", json!({"status": "published"}))).await;
    assert_eq!(published["status"], "published");
    app.shutdown().await;
}

#[tokio::test]
async fn create_answers_401_403_and_400_with_every_error() {
    let app = TestApp::spawn().await;
    let tenant = app.tenant("acme").await;
    let (_, token) = app.user(Some(&tenant), AUTHOR).await;
    let (_, reader) = app.user(Some(&tenant), &["templates.read"]).await;
    let reply = app.call(Method::POST, "/templates", None, Some(template_body("t"))).await;
    assert_error(&reply, StatusCode::UNAUTHORIZED, "Missing authorization header.");
    assert_error(
        &app.post("/templates", &reader, template_body("t")).await,
        StatusCode::FORBIDDEN,
        "MISSING_PERMISSION",
    );
    let broken = json!({"colour": 1, "cron": "often", "status": "live", "tags": ["ok", 3], "graph": "nodes", "type": "fast"});
    let reply = app.post("/templates", &token, broken).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{:?}", reply.body);
    let mut fields = reply.fields();
    fields.sort();
    assert_eq!(fields, vec!["colour", "cron", "graph", "name", "status", "tags[1]", "type"]);
    for message in [
        "Templates require a name.",
        "Unknown field \"colour\".",
        "Invalid cron expression.",
        "Template status must be draft or published.",
        "Tags must be non-empty strings.",
        "graph must be an object.",
        "Invalid flow type. Use ordinary or realtime.",
    ] {
        assert!(reply.messages().contains(&message.to_string()), "{message} missing in {:?}", reply.body);
    }
    let reply = app.post("/templates", &token, json!({"name": "no graph"})).await;
    assert_eq!(
        reply.body["errors"],
        json!([{"message": "Templates require a graph.", "code": 400, "field": "graph"}])
    );
    let reply = app.post("/templates", &token, json!({"name": "no nodes", "graph": {"edges": []}})).await;
    assert_eq!(
        reply.body["errors"],
        json!([{"message": "nodes must be an array.", "code": 400, "field": "graph.nodes"}])
    );
    assert_eq!(app.get("/templates", &token).await.body["meta"]["total"], 0);
    app.shutdown().await;
}

#[tokio::test]
async fn get_answers_the_template_or_404_for_unknown_and_other_tenants_templates() {
    let app = TestApp::spawn().await;
    let (acme, globex) = (app.tenant("acme").await, app.tenant("globex").await);
    let (_, token) = app.user(Some(&acme), AUTHOR).await;
    let (_, stranger) = app.user(Some(&globex), AUTHOR).await;
    let (_, no_read) = app.user(Some(&acme), &["templates.write"]).await;
    let id = create(&app, &token, template_body("mine")).await["id"].as_str().expect("id").to_string();
    let foreign =
        create(&app, &stranger, template_body("theirs")).await["id"].as_str().expect("id").to_string();
    assert_eq!(app.get(&format!("/templates/{id}"), &token).await.body["data"]["id"], id);
    assert_error(
        &app.get(&format!("/templates/{foreign}"), &token).await,
        StatusCode::NOT_FOUND,
        "Template not found",
    );
    let unknown = uuid::Uuid::now_v7();
    assert_error(
        &app.get(&format!("/templates/{unknown}"), &token).await,
        StatusCode::NOT_FOUND,
        "Template not found",
    );
    assert_error(&app.get("/templates/nope", &token).await, StatusCode::BAD_REQUEST, "Invalid id");
    assert_error(
        &app.get(&format!("/templates/{id}"), &no_read).await,
        StatusCode::FORBIDDEN,
        "MISSING_PERMISSION",
    );
    let reply = app.call(Method::GET, &format!("/templates/{id}"), None, None).await;
    assert_error(&reply, StatusCode::UNAUTHORIZED, "Missing authorization header.");
    app.shutdown().await;
}

#[tokio::test]
async fn list_filters_by_status_type_and_tags_with_untagged_always_listed() {
    let app = TestApp::spawn().await;
    let tenant = app.tenant("acme").await;
    let (_, token) = app.user(Some(&tenant), AUTHOR).await;
    create(&app, &token, template("a-draft", json!({"tags": ["a"]}))).await;
    create(&app, &token, template("b-published", json!({"tags": ["b"], "status": "published"}))).await;
    create(&app, &token, template("c-realtime", json!({"tags": ["c", "x"], "type": "realtime"}))).await;
    create(&app, &token, template("d-untagged", json!({"tags": [], "status": "published"}))).await;
    let list = |pairs: &[(&str, &str)]| {
        let mut pairs = pairs.to_vec();
        pairs.push(("sort", "name"));
        templates_query(&pairs)
    };
    let all = vec!["a-draft", "b-published", "c-realtime", "d-untagged"];
    assert_eq!(names(&app.get(&list(&[]), &token).await), all);
    for (status, expected) in [
        ("draft", vec!["a-draft", "c-realtime"]),
        ("0", vec!["a-draft", "c-realtime"]),
        ("published", vec!["b-published", "d-untagged"]),
        ("1", vec!["b-published", "d-untagged"]),
    ] {
        let reply = app.get(&list(&[("filter[status]", status)]), &token).await;
        assert_eq!(names(&reply), expected, "filter[status]={status}");
        assert_eq!(reply.body["meta"]["total"], expected.len());
    }
    assert_eq!(names(&app.get(&list(&[("filter[type]", "realtime")]), &token).await), vec!["c-realtime"]);
    for (tags, expected) in [
        ("a,b", vec!["a-draft", "b-published", "d-untagged"]),
        ("x", vec!["c-realtime", "d-untagged"]),
        ("a, c", vec!["a-draft", "c-realtime", "d-untagged"]),
        ("nobody", vec!["d-untagged"]),
    ] {
        assert_eq!(names(&app.get(&list(&[("tags", tags)]), &token).await), expected, "tags={tags}");
    }
    let combined = app.get(&list(&[("tags", "a,b"), ("filter[status]", "published")]), &token).await;
    assert_eq!(names(&combined), vec!["b-published", "d-untagged"]);
    for (key, value) in
        [("filter[status]", "live"), ("filter[type]", "fast"), ("sort", "tags"), ("page[size]", "0")]
    {
        let reply = app.get(&templates_query(&[(key, value)]), &token).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{key}={value}");
        assert_eq!(reply.fields(), vec![key.to_string()]);
    }
    app.shutdown().await;
}

#[tokio::test]
async fn list_sorts_searches_and_pages() {
    let app = TestApp::spawn().await;
    let tenant = app.tenant("acme").await;
    let (_, token) = app.user(Some(&tenant), AUTHOR).await;
    let mut created = Vec::new();
    for (name, description) in
        [("Zeta", "crm sync"), ("alpha", "50% off"), ("Mid", "ALPHA inside"), ("beta", "a_b")]
    {
        created.push(
            create(&app, &token, template(name, json!({"description": description}))).await["name"].clone(),
        );
    }
    let created: Vec<String> = created.iter().map(|n| n.as_str().expect("name").to_string()).collect();
    assert_eq!(names(&app.get("/templates", &token).await), created, "default: createdAt ascending");
    let mut reversed = created.clone();
    reversed.reverse();
    assert_eq!(names(&app.get(&templates_query(&[("sort", "-createdAt")]), &token).await), reversed);
    assert_eq!(
        names(&app.get(&templates_query(&[("sort", "name")]), &token).await),
        vec!["alpha", "beta", "Mid", "Zeta"]
    );
    assert_eq!(
        names(&app.get(&templates_query(&[("sort", "-name")]), &token).await),
        vec!["Zeta", "Mid", "beta", "alpha"]
    );
    let search = |text: &str| templates_query(&[("search", text), ("sort", "name")]);
    assert_eq!(names(&app.get(&search("ALPHA"), &token).await), vec!["alpha", "Mid"]);
    assert_eq!(names(&app.get(&search("%"), &token).await), vec!["alpha"]);
    assert_eq!(names(&app.get(&search("_"), &token).await), vec!["beta"]);
    assert_eq!(names(&app.get(&search("z.*"), &token).await), Vec::<String>::new());
    let page = app
        .get(&templates_query(&[("sort", "name"), ("page[size]", "3"), ("page[number]", "2")]), &token)
        .await;
    assert_eq!(names(&page), vec!["Zeta"]);
    assert_eq!(page.body["meta"], json!({"page": 2, "perPage": 3, "total": 4, "totalPages": 2}));
    let empty = app.get(&templates_query(&[("page[number]", "5")]), &token).await;
    assert_eq!(empty.body["data"], json!([]));
    app.shutdown().await;
}

#[tokio::test]
async fn list_needs_templates_read_and_shows_only_the_callers_templates() {
    let app = TestApp::spawn().await;
    let (acme, globex) = (app.tenant("acme").await, app.tenant("globex").await);
    let (_, token) = app.user(Some(&acme), AUTHOR).await;
    let (_, stranger) = app.user(Some(&globex), AUTHOR).await;
    let (_, no_read) = app.user(Some(&acme), &["templates.write"]).await;
    create(&app, &token, template_body("mine")).await;
    create(&app, &stranger, template_body("theirs")).await;
    let reply = app.get("/templates", &token).await;
    assert_eq!(names(&reply), vec!["mine"]);
    assert_eq!(reply.body["meta"]["total"], 1);
    assert_error(&app.get("/templates", &no_read).await, StatusCode::FORBIDDEN, "MISSING_PERMISSION");
    let reply = app.call(Method::GET, "/templates", None, None).await;
    assert_error(&reply, StatusCode::UNAUTHORIZED, "Missing authorization header.");
    assert_eq!(app.get("/templates", &app.admin).await.body["meta"]["total"], 2);
    app.shutdown().await;
}

#[tokio::test]
async fn patch_changes_a_draft_and_a_published_template_accepts_only_a_status_change() {
    let app = TestApp::spawn().await;
    let tenant = app.tenant("acme").await;
    let (_, token) = app.user(Some(&tenant), AUTHOR).await;
    let created = create(&app, &token, template_body("blueprint")).await;
    let path = format!("/templates/{}", created["id"].as_str().expect("id"));
    let reply = app.patch(&path, &token, json!({"name": "renamed", "tags": ["a", "b"]})).await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    let updated = &reply.body["data"];
    assert_eq!((updated["name"].clone(), updated["tags"].clone()), (json!("renamed"), json!(["a", "b"])));
    for kept in ["graph", "description", "owners", "status", "createdAt"] {
        assert_eq!(updated[kept], created[kept], "{kept} kept");
    }
    let reply = app.patch(&path, &token, json!({"status": "published"})).await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    assert_eq!(reply.body["data"]["status"], "published");
    let frozen = "Template is published. Only its status can be changed.";
    assert_error(&app.patch(&path, &token, json!({"name": "x"})).await, StatusCode::CONFLICT, frozen);
    let reply = app.patch(&path, &token, json!({"status": "draft", "name": "x"})).await;
    assert_error(&reply, StatusCode::CONFLICT, frozen);
    assert_eq!(app.get(&path, &token).await.body["data"]["name"], "renamed");
    let reply = app.patch(&path, &token, json!({"status": "draft"})).await;
    assert_eq!(reply.body["data"]["status"], "draft", "{:?}", reply.body);
    let reply = app.patch(&path, &token, json!({"description": "editable again"})).await;
    assert_eq!(reply.body["data"]["description"], "editable again", "{:?}", reply.body);
    app.shutdown().await;
}

#[tokio::test]
async fn patch_answers_401_403_404_and_400_with_every_error() {
    let app = TestApp::spawn().await;
    let (acme, globex) = (app.tenant("acme").await, app.tenant("globex").await);
    let (_, token) = app.user(Some(&acme), AUTHOR).await;
    let (_, reader) = app.user(Some(&acme), &["templates.read"]).await;
    let (_, stranger) = app.user(Some(&globex), AUTHOR).await;
    let id = create(&app, &token, template_body("blueprint")).await["id"].as_str().expect("id").to_string();
    let path = format!("/templates/{id}");
    let body = json!({"name": "x"});
    let reply = app.call(Method::PATCH, &path, None, Some(body.clone())).await;
    assert_error(&reply, StatusCode::UNAUTHORIZED, "Missing authorization header.");
    assert_error(&app.patch(&path, &reader, body.clone()).await, StatusCode::FORBIDDEN, "MISSING_PERMISSION");
    assert_error(
        &app.patch(&path, &stranger, body.clone()).await,
        StatusCode::NOT_FOUND,
        "Template not found",
    );
    assert_error(&app.patch("/templates/nope", &token, body).await, StatusCode::BAD_REQUEST, "Invalid id");
    let reply = app
        .patch(&path, &token, json!({"name": "", "cron": "bad", "status": "gone", "graph": {"edges": []}}))
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{:?}", reply.body);
    let mut fields = reply.fields();
    fields.sort();
    assert_eq!(fields, vec!["cron", "graph.nodes", "name", "status"]);
    assert_error(
        &app.patch(&path, &token, json!({"colour": "red"})).await,
        StatusCode::BAD_REQUEST,
        "Unknown field \"colour\".",
    );
    assert_eq!(app.get(&path, &token).await.body["data"]["name"], "blueprint");
    app.shutdown().await;
}

#[tokio::test]
async fn delete_removes_a_draft_and_refuses_a_published_template() {
    let app = TestApp::spawn().await;
    let (acme, globex) = (app.tenant("acme").await, app.tenant("globex").await);
    let (_, token) = app.user(Some(&acme), AUTHOR).await;
    let (_, reader) = app.user(Some(&acme), &["templates.read"]).await;
    let (_, stranger) = app.user(Some(&globex), AUTHOR).await;
    let draft = create(&app, &token, template_body("draft")).await["id"].as_str().expect("id").to_string();
    let published = create(&app, &token, template("published", json!({"status": "published"}))).await;
    let published_path = format!("/templates/{}", published["id"].as_str().expect("id"));
    let path = format!("/templates/{draft}");
    let reply = app.call(Method::DELETE, &path, None, None).await;
    assert_error(&reply, StatusCode::UNAUTHORIZED, "Missing authorization header.");
    assert_error(&app.delete(&path, &reader).await, StatusCode::FORBIDDEN, "MISSING_PERMISSION");
    assert_error(&app.delete(&path, &stranger).await, StatusCode::NOT_FOUND, "Template not found");
    assert_error(&app.delete("/templates/nope", &token).await, StatusCode::BAD_REQUEST, "Invalid id");
    let reply = app.delete(&published_path, &token).await;
    assert_error(&reply, StatusCode::CONFLICT, "Template is published. Only draft templates can be deleted.");
    assert_eq!(app.get(&published_path, &token).await.status, StatusCode::OK);
    let reply = app.delete(&path, &token).await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    assert_eq!(reply.body, json!({"msg": "Template was successfully deleted"}));
    assert_error(&app.get(&path, &token).await, StatusCode::NOT_FOUND, "Template not found");
    assert_error(&app.delete(&path, &token).await, StatusCode::NOT_FOUND, "Template not found");
    app.shutdown().await;
}
