//! SPEC §2 over HTTP, administration half: users (under `/api/users` and the alias `/users`) and
//! tenants: success answers by value, 403 `MISSING_PERMISSION`, 404 across tenants, 400 with every
//! validation problem, 409 rules, grant rules for non-admins, and no password or hash in any
//! response.

use axum::http::StatusCode;
use flowmate_tests::{Reply, TestApp, USER_PASSWORD};
use serde_json::{Value, json};
use std::collections::BTreeSet;

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

fn fields(reply: &Reply) -> BTreeSet<String> {
    reply.fields().into_iter().collect()
}

fn assert_missing_permission(reply: &Reply, what: &str) {
    assert_eq!(reply.status, StatusCode::FORBIDDEN, "{what}: {:?}", reply.body);
    assert_eq!(reply.messages(), vec!["MISSING_PERMISSION".to_string()], "{what}");
    assert_eq!(reply.body["errors"][0]["code"], 403, "{what}");
}

fn new_user(username: &str, tenant: Option<&str>, permissions: &[&str]) -> Value {
    json!({"username": username, "password": USER_PASSWORD, "tenant": tenant, "permissions": permissions})
}

fn is_timestamp(value: &Value) -> bool {
    // RFC 3339 UTC with milliseconds: 2026-05-01T12:00:00.000Z
    value.as_str().is_some_and(|s| s.len() == 24 && s.ends_with('Z') && s.as_bytes()[19] == b'.')
}

#[tokio::test]
async fn admin_creates_reads_updates_and_deletes_a_user() {
    let app = TestApp::spawn().await;
    let tenant = app.tenant("Acme").await;
    let body = json!({
        "username": "jane@example.com", "password": USER_PASSWORD, "firstname": "Jane", "lastname": "Doe",
        "tenant": tenant, "permissions": ["flows.read", "icenter.read"],
    });
    let created = app.post("/api/users", &app.admin, body).await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    assert_eq!(created.body["meta"], json!({}));
    let user = created.body["data"].clone();
    let keys: BTreeSet<String> = user.as_object().expect("object").keys().cloned().collect();
    let expected = [
        "id",
        "username",
        "firstname",
        "lastname",
        "status",
        "tenant",
        "permissions",
        "canLogin",
        "createdAt",
        "updatedAt",
    ];
    assert_eq!(keys, set(&expected));
    assert_eq!(user["username"], "jane@example.com");
    assert_eq!((user["firstname"].clone(), user["lastname"].clone()), (json!("Jane"), json!("Doe")));
    assert_eq!(user["status"], "ACTIVE");
    assert_eq!(user["tenant"], tenant.as_str());
    assert_eq!(user["permissions"], json!(["flows.read", "executions.read"]));
    assert_eq!(user["canLogin"], true);
    assert!(is_timestamp(&user["createdAt"]) && is_timestamp(&user["updatedAt"]), "{user}");
    let id = user["id"].as_str().expect("id").to_string();
    let read = app.get(&format!("/api/users/{id}"), &app.admin).await;
    assert_eq!(read.body["data"], user);
    let listed = app.get("/api/users?username=jane@example.com", &app.admin).await;
    assert_eq!(listed.body["data"], json!([user]));
    assert_eq!(listed.body["meta"], json!({"page": 1, "perPage": 10, "total": 1, "totalPages": 1}));

    let token = app.login("jane@example.com", USER_PASSWORD).await;
    let patch = json!({"firstname": "Janet", "permissions": ["flows.write"], "password": "a-new-password"});
    let updated = app.patch(&format!("/api/users/{id}"), &app.admin, patch).await;
    assert_eq!(updated.status, StatusCode::OK, "{:?}", updated.body);
    assert_eq!(updated.body["data"]["firstname"], "Janet");
    assert_eq!(updated.body["data"]["lastname"], "Doe");
    assert_eq!(updated.body["data"]["permissions"], json!(["flows.write"]));
    assert_eq!(updated.body["data"]["createdAt"], user["createdAt"]);
    assert_eq!(app.get(&format!("/api/users/{id}"), &app.admin).await.body["data"], updated.body["data"]);
    app.login("jane@example.com", "a-new-password").await;

    let deleted = app.delete(&format!("/api/users/{id}"), &app.admin).await;
    assert_eq!(deleted.status, StatusCode::OK, "{:?}", deleted.body);
    assert_eq!(deleted.body, json!({"msg": "User was successfully deleted"}));
    let gone = app.get(&format!("/api/users/{id}"), &app.admin).await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);
    assert_eq!(gone.messages(), vec!["User not found".to_string()]);
    assert_eq!(app.delete(&format!("/api/users/{id}"), &app.admin).await.status, StatusCode::NOT_FOUND);
    assert_eq!(app.get("/api/users/me", &token).await.status, StatusCode::UNAUTHORIZED);
    app.assert_no_secrets(&["a-new-password"]);
    app.shutdown().await;
}

#[tokio::test]
async fn users_alias_prefix_serves_the_same_resources() {
    let app = TestApp::spawn().await;
    let created = app.post("/users", &app.admin, new_user("alias@example.com", None, &["flows.read"])).await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    let id = created.body["data"]["id"].as_str().expect("id").to_string();
    for path in [format!("/users/{id}"), "/users/me".to_string(), "/users?username=alias@example.com".into()]
    {
        let alias = app.get(&path, &app.admin).await;
        let canonical = app.get(&format!("/api{path}"), &app.admin).await;
        assert_eq!(alias.status, StatusCode::OK, "{path}");
        assert_eq!(alias.body, canonical.body, "{path}");
    }
    let patched = app.patch(&format!("/users/{id}"), &app.admin, json!({"lastname": "Alias"})).await;
    assert_eq!(patched.status, StatusCode::OK);
    assert_eq!(app.get(&format!("/api/users/{id}"), &app.admin).await.body["data"]["lastname"], "Alias");
    let deleted = app.delete(&format!("/users/{id}"), &app.admin).await;
    assert_eq!(deleted.body, json!({"msg": "User was successfully deleted"}));
    assert_eq!(app.get(&format!("/api/users/{id}"), &app.admin).await.status, StatusCode::NOT_FOUND);
    app.assert_no_secrets(&[]);
    app.shutdown().await;
}

#[tokio::test]
async fn user_and_tenant_validation_lists_every_problem() {
    let app = TestApp::spawn().await;
    let bad = json!({
        "password": "short", "permissions": ["flows.fly", 3], "status": "SLEEPING", "tenant": "not-a-uuid",
        "canLogin": "yes", "isAdmin": true,
    });
    let created = app.post("/api/users", &app.admin, bad).await;
    assert_eq!(created.status, StatusCode::BAD_REQUEST);
    let expected = [
        "username",
        "password",
        "permissions[0]",
        "permissions[1]",
        "status",
        "tenant",
        "canLogin",
        "isAdmin",
    ];
    assert_eq!(fields(&created), set(&expected), "{:?}", created.body);
    assert!(created.body["errors"].as_array().expect("errors").iter().all(|e| e["code"] == 400));
    let no_password = app.post("/api/users", &app.admin, json!({"username": "x@example.com"})).await;
    assert_eq!(fields(&no_password), set(&["password"]));
    let ghost_tenant = new_user("y@example.com", Some(&uuid::Uuid::now_v7().to_string()), &[]);
    let ghost = app.post("/api/users", &app.admin, ghost_tenant).await;
    assert_eq!((ghost.status, fields(&ghost)), (StatusCode::BAD_REQUEST, set(&["tenant"])));

    let (id, _) = app.user(None, &[]).await;
    let before = app.get(&format!("/api/users/{id}"), &app.admin).await.body;
    let patch =
        json!({"password": "short", "status": "x", "permissions": "all", "username": "renamed", "id": id});
    let patched = app.patch(&format!("/api/users/{id}"), &app.admin, patch).await;
    assert_eq!(patched.status, StatusCode::BAD_REQUEST);
    assert_eq!(fields(&patched), set(&["password", "status", "permissions", "username", "id"]));
    assert_eq!(app.get(&format!("/api/users/{id}"), &app.admin).await.body, before, "nothing changed");

    let tenant = app.post("/api/tenants", &app.admin, json!({"name": " ", "plan": "gold"})).await;
    assert_eq!(tenant.status, StatusCode::BAD_REQUEST);
    assert_eq!(fields(&tenant), set(&["name", "plan"]));
    assert_eq!(app.get("/api/tenants", &app.admin).await.body["meta"]["total"], 0);
    app.shutdown().await;
}

#[tokio::test]
async fn duplicate_usernames_and_tenant_names_are_409_regardless_of_case() {
    let app = TestApp::spawn().await;
    let first = app.post("/api/users", &app.admin, new_user("Dup@Example.com", None, &[])).await;
    assert_eq!(first.status, StatusCode::CREATED);
    for name in ["Dup@Example.com", "dup@example.com", "DUP@EXAMPLE.COM"] {
        let again = app.post("/api/users", &app.admin, new_user(name, None, &[])).await;
        assert_eq!(again.status, StatusCode::CONFLICT, "{name}: {:?}", again.body);
        assert_eq!(again.body["errors"][0]["code"], 409);
    }
    assert_eq!(
        app.post("/api/users", &app.admin, new_user("admin", None, &[])).await.status,
        StatusCode::CONFLICT
    );
    let tenant = app.post("/api/tenants", &app.admin, json!({"name": "Acme"})).await;
    assert_eq!(tenant.status, StatusCode::CREATED);
    for name in ["Acme", "ACME", "acme"] {
        let again = app.post("/api/tenants", &app.admin, json!({"name": name})).await;
        assert_eq!(again.status, StatusCode::CONFLICT, "{name}: {:?}", again.body);
    }
    assert_eq!(app.get("/api/tenants", &app.admin).await.body["meta"]["total"], 1);
    app.shutdown().await;
}

#[tokio::test]
async fn deleting_ones_own_account_is_409() {
    let app = TestApp::spawn().await;
    let tenant = app.tenant("Acme").await;
    let admin_id =
        app.get("/api/users/me", &app.admin).await.body["data"]["id"].as_str().expect("id").to_string();
    let own = app.delete(&format!("/api/users/{admin_id}"), &app.admin).await;
    assert_eq!(own.status, StatusCode::CONFLICT, "{:?}", own.body);
    let (ta_id, ta) = app.user(Some(&tenant), &["tenant.all"]).await;
    assert_eq!(app.delete(&format!("/users/{ta_id}"), &ta).await.status, StatusCode::CONFLICT);
    assert_eq!(app.get("/api/users/me", &ta).await.status, StatusCode::OK);
    assert_eq!(app.get("/api/users/me", &app.admin).await.status, StatusCode::OK);
    app.shutdown().await;
}

#[tokio::test]
async fn identity_routes_answer_403_missing_permission_without_the_permission() {
    let app = TestApp::spawn().await;
    let tenant = app.tenant("Acme").await;
    let (nobody_id, nobody) = app.user(Some(&tenant), &[]).await;
    let (other, _) = app.user(Some(&tenant), &[]).await;
    for prefix in ["/api/users", "/users"] {
        assert_missing_permission(&app.get(prefix, &nobody).await, "list");
        let body = new_user("new@example.com", None, &[]);
        assert_missing_permission(&app.post(prefix, &nobody, body).await, "create");
        assert_missing_permission(&app.get(&format!("{prefix}/{other}"), &nobody).await, "get other");
        let rename = json!({"firstname": "X"});
        assert_missing_permission(
            &app.patch(&format!("{prefix}/{other}"), &nobody, rename).await,
            "patch other",
        );
        assert_missing_permission(&app.delete(&format!("{prefix}/{other}"), &nobody).await, "delete other");
        // Oneself: names and password only.
        let own = format!("{prefix}/{nobody_id}");
        assert_missing_permission(&app.patch(&own, &nobody, json!({"status": "ACTIVE"})).await, "own status");
        let grant = json!({"permissions": ["flows.read"]});
        assert_missing_permission(&app.patch(&own, &nobody, grant).await, "own permissions");
    }
    assert_missing_permission(
        &app.post("/api/tenants", &nobody, json!({"name": "Mine"})).await,
        "tenant create",
    );
    assert_missing_permission(&app.get("/api/tenants", &nobody).await, "tenant list");
    assert_missing_permission(&app.get(&format!("/api/tenants/{tenant}"), &nobody).await, "tenant get");
    // Tenant administrators never reach `all`-only routes.
    let (_, tenant_admin) = app.user(Some(&tenant), &["tenant.all"]).await;
    assert_missing_permission(
        &app.post("/api/tenants", &tenant_admin, json!({"name": "T"})).await,
        "ta create",
    );
    assert_missing_permission(&app.get("/api/tenants", &tenant_admin).await, "ta list");
    assert_eq!(app.get("/api/tenants", &app.admin).await.body["meta"]["total"], 1, "no tenant created");
    assert_eq!(app.get("/api/users?username=new@example.com", &app.admin).await.body["meta"]["total"], 0);
    app.shutdown().await;
}

#[tokio::test]
async fn users_read_and_edit_their_own_profile_without_permissions() {
    let app = TestApp::spawn().await;
    let (id, token) = app.user(None, &[]).await;
    let me = app.get("/api/users/me", &token).await;
    assert_eq!(app.get(&format!("/api/users/{id}"), &token).await.body, me.body);
    let patch = json!({"firstname": "Me", "lastname": null, "password": "my-new-password"});
    let updated = app.patch(&format!("/api/users/{id}"), &token, patch).await;
    assert_eq!(updated.status, StatusCode::OK, "{:?}", updated.body);
    assert_eq!(updated.body["data"]["firstname"], "Me");
    assert_eq!(updated.body["data"]["permissions"], json!([]));
    let username = me.body["data"]["username"].as_str().expect("username");
    app.login(username, "my-new-password").await;
    app.assert_no_secrets(&["my-new-password"]);
    app.shutdown().await;
}

#[tokio::test]
async fn non_admins_create_users_only_in_their_tenant_with_permissions_they_hold() {
    let app = TestApp::spawn().await;
    let acme = app.tenant("Acme").await;
    let globex = app.tenant("Globex").await;
    let (_, creator) =
        app.user(Some(&acme), &["tenant.account.create", "tenant.account.read", "flows.read"]).await;
    let made = app.post("/api/users", &creator, new_user("a1@example.com", None, &["flows.read"])).await;
    assert_eq!(made.status, StatusCode::CREATED, "{:?}", made.body);
    assert_eq!(made.body["data"]["tenant"], acme.as_str(), "created in the creator's tenant");
    let own_tenant = app.post("/api/users", &creator, new_user("a2@example.com", Some(&acme), &[])).await;
    assert_eq!(own_tenant.status, StatusCode::CREATED);
    let elsewhere = app.post("/api/users", &creator, new_user("a3@example.com", Some(&globex), &[])).await;
    assert_eq!(elsewhere.status, StatusCode::FORBIDDEN, "{:?}", elsewhere.body);
    for perm in ["flows.write", "all", "tenant.all", "tenant.account.update"] {
        let escalate = app.post("/api/users", &creator, new_user("a4@example.com", None, &[perm])).await;
        assert_eq!(escalate.status, StatusCode::FORBIDDEN, "granting {perm}: {:?}", escalate.body);
    }
    for name in ["a3@example.com", "a4@example.com"] {
        let found = app.get(&format!("/api/users?username={name}"), &app.admin).await;
        assert_eq!(found.body["meta"]["total"], 0, "{name} must not exist");
    }
    // Updating follows the same grant rule.
    let target = made.body["data"]["id"].as_str().expect("id").to_string();
    let (_, updater) = app.user(Some(&acme), &["tenant.account.update", "flows.read"]).await;
    let path = format!("/api/users/{target}");
    let raise = app.patch(&path, &updater, json!({"permissions": ["flows.write"]})).await;
    assert_eq!(raise.status, StatusCode::FORBIDDEN);
    let keep = app.patch(&path, &updater, json!({"permissions": ["flows.read"], "status": "PENDING"})).await;
    assert_eq!(keep.status, StatusCode::OK, "{:?}", keep.body);
    assert_eq!(keep.body["data"]["status"], "PENDING");
    // A tenant admin grants anything but `all`.
    let (_, tenant_admin) = app.user(Some(&acme), &["tenant.all"]).await;
    let sub = app.post("/api/users", &tenant_admin, new_user("a5@example.com", None, &["tenant.all"])).await;
    assert_eq!(sub.status, StatusCode::CREATED);
    let root = app.post("/api/users", &tenant_admin, new_user("a6@example.com", None, &["all"])).await;
    assert_eq!(root.status, StatusCode::FORBIDDEN);
    app.assert_no_secrets(&[]);
    app.shutdown().await;
}

#[tokio::test]
async fn account_managers_cannot_take_over_or_delete_more_privileged_accounts() {
    let app = TestApp::spawn().await;
    let acme = app.tenant("Acme").await;
    let (boss, _) = app.user(Some(&acme), &["tenant.all"]).await;
    let (peer, _) = app.user(Some(&acme), &["flows.read"]).await;
    let (_, manager) = app
        .user(
            Some(&acme),
            &["tenant.account.read", "tenant.account.update", "iam.account.delete", "flows.read"],
        )
        .await;
    let before = app.get(&format!("/api/users/{boss}"), &app.admin).await.body;
    for patch in [
        json!({"password": "taken-over-password"}),
        json!({"status": "DISABLED"}),
        json!({"permissions": []}),
    ] {
        let reply = app.patch(&format!("/api/users/{boss}"), &manager, patch.clone()).await;
        assert_eq!(reply.status, StatusCode::FORBIDDEN, "{patch}: {:?}", reply.body);
    }
    assert_eq!(app.delete(&format!("/api/users/{boss}"), &manager).await.status, StatusCode::FORBIDDEN);
    assert_eq!(app.get(&format!("/api/users/{boss}"), &app.admin).await.body, before, "unchanged");
    let boss_name = before["data"]["username"].as_str().expect("username");
    app.login(boss_name, USER_PASSWORD).await;
    // Accounts holding no more than the manager are managed normally.
    let renamed = app.patch(&format!("/api/users/{peer}"), &manager, json!({"firstname": "Pat"})).await;
    assert_eq!(renamed.status, StatusCode::OK, "{:?}", renamed.body);
    assert_eq!(app.delete(&format!("/api/users/{peer}"), &manager).await.status, StatusCode::OK);
    app.assert_no_secrets(&["taken-over-password"]);
    app.shutdown().await;
}

#[tokio::test]
async fn another_tenants_users_and_tenant_answer_404_like_missing_ones() {
    let app = TestApp::spawn().await;
    let acme = app.tenant("Acme").await;
    let globex = app.tenant("Globex").await;
    let (acme_user, _) = app.user(Some(&acme), &[]).await;
    let (_, tenant_admin) = app.user(Some(&acme), &["tenant.all"]).await;
    let (globex_user, _) = app.user(Some(&globex), &[]).await;
    let admin_id = app.get("/api/users/me", &app.admin).await.body["data"]["id"].clone();
    let missing = uuid::Uuid::now_v7().to_string();
    let before = app.get(&format!("/api/users/{globex_user}"), &app.admin).await.body;
    for prefix in ["/api/users", "/users"] {
        let absent = app.get(&format!("{prefix}/{missing}"), &tenant_admin).await;
        assert_eq!(absent.status, StatusCode::NOT_FOUND);
        for id in [globex_user.as_str(), admin_id.as_str().expect("id")] {
            let path = format!("{prefix}/{id}");
            let read = app.get(&path, &tenant_admin).await;
            assert_eq!((read.status, &read.body), (StatusCode::NOT_FOUND, &absent.body), "GET {path}");
            let patched = app.patch(&path, &tenant_admin, json!({"firstname": "Hacked"})).await;
            assert_eq!(
                (patched.status, &patched.body),
                (StatusCode::NOT_FOUND, &absent.body),
                "PATCH {path}"
            );
            let deleted = app.delete(&path, &tenant_admin).await;
            assert_eq!(
                (deleted.status, &deleted.body),
                (StatusCode::NOT_FOUND, &absent.body),
                "DELETE {path}"
            );
        }
    }
    assert_eq!(app.get(&format!("/api/users/{globex_user}"), &app.admin).await.body, before, "unchanged");
    let listed = app.get("/api/users?page[size]=100", &tenant_admin).await;
    let tenants: BTreeSet<&str> =
        listed.body["data"].as_array().expect("data").iter().filter_map(|u| u["tenant"].as_str()).collect();
    assert_eq!(tenants, BTreeSet::from([acme.as_str()]));
    assert_eq!(listed.body["meta"]["total"], 2, "{:?}", listed.body);
    let ids: Vec<&Value> = listed.body["data"].as_array().expect("data").iter().map(|u| &u["id"]).collect();
    assert!(ids.contains(&&json!(acme_user)));
    let globex_name = before["data"]["username"].as_str().expect("username");
    let by_name = app.get(&format!("/api/users?username={globex_name}"), &tenant_admin).await;
    assert_eq!((by_name.status, by_name.body["data"].clone()), (StatusCode::OK, json!([])));

    let absent_tenant = app.get(&format!("/api/tenants/{missing}"), &tenant_admin).await;
    assert_eq!(absent_tenant.status, StatusCode::NOT_FOUND);
    let other_tenant = app.get(&format!("/api/tenants/{globex}"), &tenant_admin).await;
    assert_eq!((other_tenant.status, &other_tenant.body), (StatusCode::NOT_FOUND, &absent_tenant.body));
    let own = app.get(&format!("/api/tenants/{acme}"), &tenant_admin).await;
    assert_eq!(own.status, StatusCode::OK);
    assert_eq!(own.body["data"]["name"], "Acme");
    app.shutdown().await;
}

#[tokio::test]
async fn admins_create_list_and_read_tenants() {
    let app = TestApp::spawn().await;
    let created = app.post("/api/tenants", &app.admin, json!({"name": "Acme"})).await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    assert_eq!(created.body["meta"], json!({}));
    let tenant = created.body["data"].clone();
    let keys: BTreeSet<String> = tenant.as_object().expect("object").keys().cloned().collect();
    assert_eq!(keys, set(&["id", "name", "createdAt", "updatedAt"]));
    assert_eq!(tenant["name"], "Acme");
    assert!(is_timestamp(&tenant["createdAt"]));
    let id = tenant["id"].as_str().expect("id");
    assert_eq!(app.get(&format!("/api/tenants/{id}"), &app.admin).await.body["data"], tenant);
    let second = app.tenant("Globex").await;
    let listed = app.get("/api/tenants", &app.admin).await;
    assert_eq!(listed.status, StatusCode::OK);
    assert_eq!(listed.body["meta"], json!({"page": 1, "perPage": 10, "total": 2, "totalPages": 1}));
    let ids: Vec<&str> =
        listed.body["data"].as_array().expect("data").iter().filter_map(|t| t["id"].as_str()).collect();
    assert_eq!(ids, vec![id, second.as_str()]);
    let missing = app.get(&format!("/api/tenants/{}", uuid::Uuid::now_v7()), &app.admin).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(missing.messages(), vec!["Tenant not found".to_string()]);
    app.shutdown().await;
}
