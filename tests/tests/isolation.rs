//! SPEC §3, the tenant-isolation test: a user of tenant B (with every non-admin permission, and
//! a tenant administrator of B) walks every route that takes an id with tenant A's ids, and every
//! list with every filter. Each answer must be exactly the answer for an id that does not exist
//! (404, per-item 404 inside bulk and multiple results), lists must never show A's resources,
//! and afterwards A reads every resource back byte for byte as it was.

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use flowmate_tests::{NON_ADMIN_PERMISSIONS, Reply, TestApp, flow_body, template_body};
use serde_json::{Value, json};

/// Tenant A's world, as A created it.
struct Victim {
    tenant: String,
    user: String,
    token: String,
    users: Vec<String>,
    flows: Vec<String>,
    templates: Vec<String>,
}

async fn raw_get(app: &TestApp, path: &str, token: &str) -> (StatusCode, String) {
    let request = Request::builder()
        .uri(path)
        .header("authorization", format!("Bearer {token}"))
        .body(Body::empty())
        .expect("request");
    let (status, _, body) = app.send_raw(request).await;
    (status, String::from_utf8(body).expect("utf-8"))
}

fn id_of(reply: &Reply) -> String {
    assert!(reply.status.is_success(), "{:?}", reply.body);
    reply.body["data"]["id"].as_str().expect("id").to_string()
}

async fn build_victim(app: &TestApp) -> Victim {
    let tenant = app.tenant("Alpha").await;
    let (user, token) = app.user(Some(&tenant), &NON_ADMIN_PERMISSIONS).await;
    let colleague = json!({"username": "alpha-colleague@example.com", "password": "alpha-password",
        "permissions": ["flows.read"]});
    let colleague = id_of(&app.post("/api/users", &token, colleague).await);
    let idle = app.flow(&token, "alpha-idle").await;
    let active = app.flow(&token, "alpha-active").await;
    assert_eq!(app.post_empty(&format!("/flows/{active}/start"), &token).await.status, StatusCode::OK);
    app.wait_for_status(&token, &active, "active").await;
    let draft = id_of(&app.post("/templates", &token, template_body("alpha-draft")).await);
    let published = id_of(&app.post("/templates", &token, template_body("alpha-published")).await);
    let publish = app.patch(&format!("/templates/{published}"), &token, json!({"status": "published"})).await;
    assert_eq!(publish.status, StatusCode::OK, "{:?}", publish.body);
    let generated = id_of(&app.post_empty(&format!("/templates/{published}/generate"), &token).await);
    Victim {
        tenant,
        user: user.clone(),
        token,
        users: vec![user, colleague],
        flows: vec![idle, active, generated],
        templates: vec![draft, published],
    }
}

/// Every resource of A as A reads it: (path, status, raw body).
async fn snapshot(app: &TestApp, victim: &Victim) -> Vec<(String, StatusCode, String)> {
    let mut paths: Vec<String> = Vec::new();
    paths.extend(victim.flows.iter().map(|id| format!("/flows/{id}")));
    paths.extend(victim.templates.iter().map(|id| format!("/templates/{id}")));
    paths.extend(victim.users.iter().map(|id| format!("/api/users/{id}")));
    paths.extend(
        ["/flows?page[size]=100", "/templates?page[size]=100", "/api/users?page[size]=100"].map(String::from),
    );
    let mut out = Vec::new();
    for path in paths {
        let (status, body) = raw_get(app, &path, &victim.token).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
        out.push((path, status, body));
    }
    let (status, body) = raw_get(app, &format!("/api/tenants/{}", victim.tenant), &app.admin).await;
    out.push(("tenant".into(), status, body));
    out
}

/// Asserts `reply` is a 404 identical to `missing` (the answer for an id that does not exist).
fn assert_like_missing(reply: &Reply, missing: &Reply, what: &str) {
    assert_eq!(reply.status, StatusCode::NOT_FOUND, "{what}: {:?}", reply.body);
    assert_eq!(reply.body, missing.body, "{what}: differs from a missing resource");
}

/// Asserts one per-item result of a bulk or multiple answer is a 404 about `id`.
fn assert_item_404(item: &Value, id: &str, what: &str) {
    let errors = item["errors"].as_array().unwrap_or_else(|| panic!("{what}: not an error item: {item}"));
    assert_eq!(errors.len(), 1, "{what}: {item}");
    assert_eq!(errors[0]["code"], 404, "{what}: {item}");
    if let Some(flow_id) = errors[0].get("flowId") {
        assert_eq!(flow_id, id, "{what}");
    }
    assert!(item.get("data").is_none() && item.get("id").is_none(), "{what}: leaked {item}");
}

async fn walk_flows(app: &TestApp, victim: &Victim, token: &str, own_flow: &str) {
    let ghost = uuid::Uuid::now_v7().to_string();
    let rename = json!({"name": "pwned"});
    for id in &victim.flows {
        let cases: [(Method, &str, Option<Value>); 6] = [
            (Method::GET, "/flows/{}", None),
            (Method::PATCH, "/flows/{}", Some(rename.clone())),
            (Method::DELETE, "/flows/{}", None),
            (Method::POST, "/flows/{}/start", None),
            (Method::POST, "/flows/{}/stop", None),
            (Method::GET, "/flows/{}/steps/in/logs", None),
        ];
        for (method, template, body) in cases {
            let missing =
                app.call(method.clone(), &template.replace("{}", &ghost), Some(token), body.clone()).await;
            let reply = app.call(method.clone(), &template.replace("{}", id), Some(token), body).await;
            assert_like_missing(&reply, &missing, &format!("{method} {template} on A's flow"));
        }
        let bulk = app.patch("/flows/bulk", token, json!([{"id": id, "name": "pwned"}])).await;
        assert_eq!(bulk.status, StatusCode::OK, "{:?}", bulk.body);
        assert_eq!(bulk.body["data"].as_array().map(Vec::len), Some(1));
        assert_item_404(&bulk.body["data"][0], id, "PATCH /flows/bulk");
        for action in ["start", "stop"] {
            let path = format!("/flows/multiple/{action}");
            let reply = app.post(&path, token, json!([id])).await;
            assert_eq!(reply.status, StatusCode::OK, "{path}: {:?}", reply.body);
            assert_item_404(&reply.body["data"][0], id, &path);
        }
    }
    // Mixed with one of B's own flows: per-item answers, B's item works.
    let mixed = app.post("/flows/multiple/start", token, json!([victim.flows[0], own_flow])).await;
    assert_eq!(mixed.status, StatusCode::OK, "{:?}", mixed.body);
    assert_item_404(&mixed.body["data"][0], &victim.flows[0], "mixed start");
    assert_eq!(mixed.body["data"][1]["data"]["id"], own_flow);
    let stop = app.post("/flows/multiple/stop", token, json!([victim.flows[1], own_flow])).await;
    assert_item_404(&stop.body["data"][0], &victim.flows[1], "mixed stop");
    assert_eq!(stop.body["data"][1]["data"]["status"], "stopping", "{:?}", stop.body);
    let bulk = app
        .patch(
            "/flows/bulk",
            token,
            json!(victim.flows.iter().map(|id| json!({"id": id})).collect::<Vec<_>>()),
        )
        .await;
    for (item, id) in bulk.body["data"].as_array().expect("data").iter().zip(&victim.flows) {
        assert_item_404(item, id, "bulk of every A flow");
    }
}

async fn walk_templates(app: &TestApp, victim: &Victim, token: &str) {
    let ghost = uuid::Uuid::now_v7().to_string();
    for id in &victim.templates {
        let cases: [(Method, &str, Option<Value>); 5] = [
            (Method::GET, "/templates/{}", None),
            (Method::PATCH, "/templates/{}", Some(json!({"name": "pwned"}))),
            (Method::PATCH, "/templates/{}", Some(json!({"status": "draft"}))),
            (Method::DELETE, "/templates/{}", None),
            (Method::POST, "/templates/{}/generate", Some(json!({"name": "stolen"}))),
        ];
        for (method, template, body) in cases {
            let missing =
                app.call(method.clone(), &template.replace("{}", &ghost), Some(token), body.clone()).await;
            let reply = app.call(method.clone(), &template.replace("{}", id), Some(token), body).await;
            assert_like_missing(&reply, &missing, &format!("{method} {template} on A's template"));
        }
        let bare = app.post_empty(&format!("/templates/{id}/generate"), token).await;
        assert_eq!(bare.status, StatusCode::NOT_FOUND, "generate without a body");
    }
}

async fn walk_users_and_tenant(app: &TestApp, victim: &Victim, token: &str, tenant_admin: bool) {
    let ghost = uuid::Uuid::now_v7().to_string();
    for id in &victim.users {
        for prefix in ["/api/users", "/users"] {
            let cases: [(Method, Option<Value>); 3] = [
                (Method::GET, None),
                (Method::PATCH, Some(json!({"firstname": "pwned", "password": "attacker-password"}))),
                (Method::DELETE, None),
            ];
            for (method, body) in cases {
                let missing =
                    app.call(method.clone(), &format!("{prefix}/{ghost}"), Some(token), body.clone()).await;
                let reply = app.call(method.clone(), &format!("{prefix}/{id}"), Some(token), body).await;
                assert_like_missing(&reply, &missing, &format!("{method} {prefix}/{{id}} on A's user"));
            }
        }
    }
    let missing = app.get(&format!("/api/tenants/{ghost}"), token).await;
    let reply = app.get(&format!("/api/tenants/{}", victim.tenant), token).await;
    assert_eq!((reply.status, &reply.body), (missing.status, &missing.body), "GET /api/tenants/{{A}}");
    let expected = if tenant_admin { StatusCode::NOT_FOUND } else { StatusCode::FORBIDDEN };
    assert_eq!(reply.status, expected, "{:?}", reply.body);
    // Nor can B write into A.
    let into_a =
        json!({"username": "mole@example.com", "password": "mole-password", "tenant": victim.tenant});
    assert_eq!(app.post("/api/users", token, into_a).await.status, StatusCode::FORBIDDEN);
    let mut flow = flow_body("smuggled");
    flow["tenant"] = json!(victim.tenant);
    assert_eq!(app.post("/flows", token, flow).await.status, StatusCode::BAD_REQUEST);
    let mut flow = flow_body("smuggled");
    flow["owners"] = json!([{"id": victim.tenant, "type": "tenant"}]);
    assert_eq!(app.post("/flows", token, flow).await.status, StatusCode::BAD_REQUEST);
    let mut template = template_body("smuggled");
    template["tenant"] = json!(victim.tenant);
    assert_eq!(app.post("/templates", token, template).await.status, StatusCode::BAD_REQUEST);
    let own = app.flow(token, "beta-movable").await;
    let path = format!("/flows/{own}");
    assert_eq!(
        app.patch(&path, token, json!({"tenant": victim.tenant})).await.status,
        StatusCode::BAD_REQUEST
    );
    let tenant_owner = json!({"owners": [{"id": victim.tenant, "type": "tenant"}]});
    assert_eq!(app.patch(&path, token, tenant_owner).await.status, StatusCode::BAD_REQUEST);
    // Naming A's user as an owner (accepted or not) must not put the flow in front of A: the
    // final snapshot of A's lists proves it.
    let user_owner = json!({"owners": [{"id": victim.user, "type": "user"}]});
    let reply = app.patch(&path, token, user_owner).await;
    assert!(matches!(reply.status, StatusCode::OK | StatusCode::BAD_REQUEST), "{:?}", reply.body);
    assert_eq!(app.get(&path, &victim.token).await.status, StatusCode::NOT_FOUND, "A sees B's flow");
}

fn ids_in(reply: &Reply) -> Vec<String> {
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    reply.body["data"]
        .as_array()
        .expect("data")
        .iter()
        .filter_map(|r| r["id"].as_str().map(String::from))
        .collect()
}

async fn walk_lists(app: &TestApp, victim: &Victim, token: &str) {
    let published = &victim.templates[1];
    let flow_queries = [
        "page[size]=100".to_string(),
        "page[size]=100&search=alpha".into(),
        "search=ALPHA-ACTIVE".into(),
        "filter[status]=active".into(),
        "filter[status]=1".into(),
        "filter[status]=inactive".into(),
        "filter[status]=0".into(),
        "filter[type]=ordinary".into(),
        format!("filter[fromTemplate]={published}"),
        "sort=-name&page[size]=100".into(),
        "sort=updatedAt&page[size]=100".into(),
    ];
    for query in flow_queries {
        let reply = app.get(&format!("/flows?{query}"), token).await;
        let ids = ids_in(&reply);
        assert!(victim.flows.iter().all(|id| !ids.contains(id)), "/flows?{query} shows A's flows");
        assert_eq!(reply.body["meta"]["total"], ids.len(), "/flows?{query}: total counts hidden flows");
    }
    assert_eq!(ids_in(&app.get("/flows?search=alpha", token).await), Vec::<String>::new());
    let template_queries = [
        "page[size]=100",
        "search=alpha",
        "filter[status]=published",
        "filter[status]=draft",
        "tags=premium",
        "sort=name&page[size]=100",
    ];
    for query in template_queries {
        let reply = app.get(&format!("/templates?{query}"), token).await;
        let ids = ids_in(&reply);
        assert!(
            victim.templates.iter().all(|id| !ids.contains(id)),
            "/templates?{query} shows A's templates"
        );
        assert_eq!(reply.body["meta"]["total"], ids.len(), "/templates?{query}");
    }
    for query in ["page[size]=100", "username=alpha-colleague@example.com"] {
        for prefix in ["/api/users", "/users"] {
            let ids = ids_in(&app.get(&format!("{prefix}?{query}"), token).await);
            assert!(victim.users.iter().all(|id| !ids.contains(id)), "{prefix}?{query} shows A's users");
        }
    }
    for path in ["/flows", "/templates"] {
        let reply = app.get(&format!("{path}?filter[user]={}", victim.user), token).await;
        assert_eq!(reply.status, StatusCode::FORBIDDEN, "{path} filter[user]: {:?}", reply.body);
        assert_eq!(reply.body["errors"][0]["code"], 403);
    }
}

/// B's own flow, to show B's requests work while A's are invisible.
async fn own_flow(app: &TestApp, token: &str) -> String {
    let id = app.flow(token, "beta-flow").await;
    app.post("/templates", token, template_body("beta-template")).await;
    id
}

#[tokio::test]
async fn a_member_of_another_tenant_can_neither_see_nor_touch_anything() {
    let app = TestApp::spawn().await;
    let victim = build_victim(&app).await;
    let before = snapshot(&app, &victim).await;
    let beta = app.tenant("Beta").await;
    let (_, attacker) = app.user(Some(&beta), &NON_ADMIN_PERMISSIONS).await;
    let own = own_flow(&app, &attacker).await;

    walk_flows(&app, &victim, &attacker, &own).await;
    walk_templates(&app, &victim, &attacker).await;
    walk_users_and_tenant(&app, &victim, &attacker, false).await;
    walk_lists(&app, &victim, &attacker).await;
    // B's own things are visible to B (the walk is not vacuous).
    assert_eq!(app.get(&format!("/flows/{own}"), &attacker).await.status, StatusCode::OK);
    assert_eq!(app.get("/templates?search=beta", &attacker).await.body["meta"]["total"], 1);

    assert_unchanged(&app, &victim, &before).await;
    app.shutdown().await;
}

#[tokio::test]
async fn a_tenant_administrator_of_another_tenant_cannot_see_or_touch_anything_either() {
    let app = TestApp::spawn().await;
    let victim = build_victim(&app).await;
    let before = snapshot(&app, &victim).await;
    let beta = app.tenant("Beta").await;
    let (_, attacker) = app.user(Some(&beta), &["tenant.all"]).await;
    let own = own_flow(&app, &attacker).await;

    walk_flows(&app, &victim, &attacker, &own).await;
    walk_templates(&app, &victim, &attacker).await;
    walk_users_and_tenant(&app, &victim, &attacker, true).await;
    walk_lists(&app, &victim, &attacker).await;
    let impersonated =
        app.post("/impersonate", &attacker, json!({"username": "alpha-colleague@example.com"})).await;
    assert_eq!(impersonated.status, StatusCode::OK, "an end user of B, not A's user");
    let me = app.get("/api/users/me", impersonated.body["token"].as_str().expect("token")).await;
    assert_eq!(me.body["data"]["tenant"], beta.as_str());
    assert!(!victim.users.iter().any(|id| me.body["data"]["id"] == id.as_str()));

    assert_unchanged(&app, &victim, &before).await;
    app.shutdown().await;
}

async fn assert_unchanged(app: &TestApp, victim: &Victim, before: &[(String, StatusCode, String)]) {
    let after = snapshot(app, victim).await;
    assert_eq!(before.len(), after.len());
    for (old, new) in before.iter().zip(&after) {
        assert_eq!(old, new, "A's {} changed", old.0);
    }
    let statuses: Vec<Value> = {
        let mut out = Vec::new();
        for id in &victim.flows {
            out.push(app.get(&format!("/flows/{id}"), &victim.token).await.body["data"]["status"].clone());
        }
        out
    };
    assert_eq!(statuses, vec![json!("inactive"), json!("active"), json!("inactive")]);
    let template = app.get(&format!("/templates/{}", victim.templates[1]), &victim.token).await;
    assert_eq!(template.body["data"]["status"], "published");
    app.login("alpha-colleague@example.com", "alpha-password").await;
    app.assert_no_secrets(&["alpha-password", "attacker-password"]);
}
