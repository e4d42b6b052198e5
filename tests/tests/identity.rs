//! SPEC §2 over HTTP, authentication half: the first admin, `POST /login` (no user enumeration,
//! disabled accounts, rate limiting, validation), `POST /logout`, `POST /impersonate`, and the
//! 401 answers of every protected identity route. Users and tenants are in `identity_admin.rs`.

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Method, Request, StatusCode};
use flowmate_tests::{ADMIN_PASSWORD, Reply, TestApp, USER_PASSWORD};
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

async fn login_reply(app: &TestApp, username: &str, password: &str) -> Reply {
    app.call(Method::POST, "/login", None, Some(json!({"username": username, "password": password}))).await
}

async fn username_of(app: &TestApp, id: &str) -> String {
    let reply = app.get(&format!("/api/users/{id}"), &app.admin).await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    reply.body["data"]["username"].as_str().expect("username").to_string()
}

fn fields(reply: &Reply) -> BTreeSet<String> {
    reply.fields().into_iter().collect()
}

#[tokio::test]
async fn first_admin_exists_with_permission_all_and_no_tenant() {
    let app = TestApp::spawn().await;
    let me = app.get("/api/users/me", &app.admin).await;
    assert_eq!(me.status, StatusCode::OK, "{:?}", me.body);
    let data = &me.body["data"];
    assert_eq!(data["username"], "admin");
    assert_eq!(data["permissions"], json!(["all"]));
    assert_eq!(data["tenant"], Value::Null);
    assert_eq!(data["status"], "ACTIVE");
    assert_eq!(data["canLogin"], true);
    assert_eq!(me.body["meta"], json!({}));
    let listed = app.get("/api/users?username=admin", &app.admin).await;
    assert_eq!(listed.body["meta"]["total"], 1);
    assert_eq!(listed.body["data"][0], *data);
    app.assert_no_secrets(&[]);
    app.shutdown().await;
}

#[tokio::test]
async fn login_issues_distinct_opaque_tokens_that_each_authenticate() {
    let app = TestApp::spawn().await;
    let first = login_reply(&app, "admin", ADMIN_PASSWORD).await;
    let second = login_reply(&app, "admin", ADMIN_PASSWORD).await;
    assert_eq!(first.status, StatusCode::OK);
    let keys: BTreeSet<&str> = first.body.as_object().expect("object").keys().map(String::as_str).collect();
    assert_eq!(keys, BTreeSet::from(["id", "token"]));
    let token = first.body["token"].as_str().expect("token");
    // At least 256 bits: 43 base64url characters or 64 hex digits.
    assert!(token.len() >= 43, "token too short: {token}");
    assert!(uuid::Uuid::parse_str(first.body["id"].as_str().expect("id")).is_ok());
    assert_ne!(first.body["token"], second.body["token"]);
    assert_ne!(first.body["id"], second.body["id"]);
    for reply in [&first, &second] {
        let me = app.get("/api/users/me", reply.body["token"].as_str().expect("token")).await;
        assert_eq!(me.status, StatusCode::OK);
        assert_eq!(me.body["data"]["username"], "admin");
    }
    app.assert_no_secrets(&[]);
    app.shutdown().await;
}

#[tokio::test]
async fn wrong_username_and_wrong_password_get_the_identical_401() {
    let app = TestApp::spawn().await;
    let wrong_password = login_reply(&app, "admin", "not-the-password").await;
    let wrong_user = login_reply(&app, "nobody@example.com", ADMIN_PASSWORD).await;
    assert_eq!(wrong_password.status, StatusCode::UNAUTHORIZED);
    assert_eq!(wrong_user.status, StatusCode::UNAUTHORIZED);
    assert_eq!(wrong_password.body, wrong_user.body);
    assert_eq!(wrong_password.messages().len(), 1);
    assert_eq!(wrong_password.body["errors"][0]["code"], 401);
    assert_eq!(wrong_password.headers.get("www-authenticate"), wrong_user.headers.get("www-authenticate"));
    app.assert_no_secrets(&[]);
    app.shutdown().await;
}

#[tokio::test]
async fn login_validation_lists_every_problem() {
    let app = TestApp::spawn().await;
    let empty = app.call(Method::POST, "/login", None, Some(json!({}))).await;
    assert_eq!(empty.status, StatusCode::BAD_REQUEST);
    assert_eq!(fields(&empty), BTreeSet::from(["password".to_string(), "username".to_string()]));
    let wrong = app
        .call(Method::POST, "/login", None, Some(json!({"username": 5, "password": " ", "remember": true})))
        .await;
    assert_eq!(wrong.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        fields(&wrong),
        BTreeSet::from(["password".to_string(), "remember".to_string(), "username".to_string()])
    );
    assert!(wrong.body["errors"].as_array().expect("errors").iter().all(|e| e["code"] == 400));
    let not_object = app.call(Method::POST, "/login", None, Some(json!(["admin"]))).await;
    assert_eq!(not_object.status, StatusCode::BAD_REQUEST);
    app.shutdown().await;
}

#[tokio::test]
async fn disabled_and_pending_accounts_get_403_only_after_the_correct_password() {
    let app = TestApp::spawn().await;
    let (id, token) = app.user(None, &["flows.read"]).await;
    let username = username_of(&app, &id).await;
    let unknown = login_reply(&app, "nobody@example.com", USER_PASSWORD).await;
    for status in ["DISABLED", "PENDING"] {
        let patched = app.patch(&format!("/api/users/{id}"), &app.admin, json!({"status": status})).await;
        assert_eq!(patched.status, StatusCode::OK, "{:?}", patched.body);
        assert_eq!(patched.body["data"]["status"], status);
        // Tokens issued before stop working.
        assert_eq!(app.get("/api/users/me", &token).await.status, StatusCode::UNAUTHORIZED);
        let right = login_reply(&app, &username, USER_PASSWORD).await;
        assert_eq!(right.status, StatusCode::FORBIDDEN, "{status}: {:?}", right.body);
        let wrong = login_reply(&app, &username, "wrong-password").await;
        assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
        assert_eq!(wrong.body, unknown.body, "a wrong password must not reveal the account state");
    }
    let reactivated = app.patch(&format!("/api/users/{id}"), &app.admin, json!({"status": "ACTIVE"})).await;
    assert_eq!(reactivated.status, StatusCode::OK);
    assert_eq!(login_reply(&app, &username, USER_PASSWORD).await.status, StatusCode::OK);
    app.assert_no_secrets(&[]);
    app.shutdown().await;
}

#[tokio::test]
async fn repeated_failed_logins_answer_429_with_retry_after_even_for_the_right_password() {
    let app = TestApp::spawn().await;
    let (id, _) = app.user(None, &[]).await;
    let username = username_of(&app, &id).await;
    let mut statuses = Vec::new();
    for _ in 0..5 {
        statuses.push(login_reply(&app, &username, "wrong-password").await.status);
    }
    assert_eq!(statuses, vec![StatusCode::UNAUTHORIZED; 5]);
    for password in ["wrong-password", USER_PASSWORD] {
        let limited = login_reply(&app, &username, password).await;
        assert_eq!(limited.status, StatusCode::TOO_MANY_REQUESTS, "{:?}", limited.body);
        assert_eq!(limited.body["errors"][0]["code"], 429);
        let retry_after: u64 = limited
            .headers
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
            .expect("numeric Retry-After");
        assert!((1..=300).contains(&retry_after), "Retry-After {retry_after}");
    }
    // Unknown usernames are limited the same way (no enumeration through the limiter).
    let mut ghost = Vec::new();
    for _ in 0..6 {
        ghost.push(login_reply(&app, "ghost@example.com", "whatever-password").await.status);
    }
    assert_eq!(ghost.last(), Some(&StatusCode::TOO_MANY_REQUESTS), "{ghost:?}");
    // Other accounts are unaffected.
    assert_eq!(login_reply(&app, "admin", ADMIN_PASSWORD).await.status, StatusCode::OK);
    app.shutdown().await;
}

/// `POST /login` as if sent from `address` (what the served binary sees through connect info).
async fn login_from(app: &TestApp, username: &str, password: &str, address: &str) -> Reply {
    let body = json!({"username": username, "password": password}).to_string();
    let mut request = Request::builder()
        .method(Method::POST)
        .uri("/login")
        .header("content-type", "application/json")
        .body(Body::from(body))
        .expect("request");
    request.extensions_mut().insert(ConnectInfo(address.parse::<SocketAddr>().expect("address")));
    app.send(request).await
}

#[tokio::test]
async fn failed_logins_are_also_limited_per_client_address() {
    let app = TestApp::spawn().await;
    // One failure each for twenty usernames: no username reaches its own limit.
    for i in 0..20 {
        let reply =
            login_from(&app, &format!("guess-{i}@example.com"), "wrong-password", "10.0.0.1:4000").await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "attempt {i}");
    }
    let limited = login_from(&app, "admin", ADMIN_PASSWORD, "10.0.0.1:4001").await;
    assert_eq!(limited.status, StatusCode::TOO_MANY_REQUESTS, "{:?}", limited.body);
    assert!(limited.headers.contains_key("retry-after"));
    let elsewhere = login_from(&app, "admin", ADMIN_PASSWORD, "10.0.0.2:4000").await;
    assert_eq!(elsewhere.status, StatusCode::OK, "{:?}", elsewhere.body);
    app.shutdown().await;
}

#[tokio::test]
async fn tokens_expire_after_the_configured_lifetime() {
    let app = TestApp::spawn_with(&["--token-ttl-secs", "1"]).await;
    let token = app.login("admin", ADMIN_PASSWORD).await;
    assert_eq!(app.get("/api/users/me", &token).await.status, StatusCode::OK);
    let unknown = app.get("/api/users/me", "never-issued-token").await;
    let deadline = Instant::now() + Duration::from_secs(10);
    let expired = loop {
        let reply = app.get("/api/users/me", &token).await;
        if reply.status != StatusCode::OK {
            break reply;
        }
        assert!(Instant::now() < deadline, "token still valid after 10 s with a 1 s lifetime");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(expired.status, StatusCode::UNAUTHORIZED);
    assert_eq!(expired.body, unknown.body, "expired and unknown tokens answer alike");
    app.shutdown().await;
}

#[tokio::test]
async fn logout_revokes_the_callers_token_and_no_other() {
    let app = TestApp::spawn().await;
    let (id, first) = app.user(None, &[]).await;
    let username = username_of(&app, &id).await;
    let second = app.login(&username, USER_PASSWORD).await;
    let out = app.post_empty("/logout", &first).await;
    assert_eq!(out.status, StatusCode::OK, "{:?}", out.body);
    assert_eq!(out.body, json!({"loggedOut": true}));
    let revoked = app.get("/api/users/me", &first).await;
    assert_eq!(revoked.status, StatusCode::UNAUTHORIZED);
    assert_eq!(revoked.body["errors"][0]["code"], 401);
    assert_eq!(app.post_empty("/logout", &first).await.status, StatusCode::UNAUTHORIZED);
    let still = app.get("/api/users/me", &second).await;
    assert_eq!(still.status, StatusCode::OK);
    assert_eq!(still.body["data"]["id"], id.as_str());
    app.shutdown().await;
}

/// Token lookups are cached (FLOWMATE_TOKEN_CACHE_TTL_MS); a change to the user through the
/// same process still applies to the very next request.
#[tokio::test]
async fn a_changed_or_disabled_user_applies_to_the_next_request_despite_the_token_cache() {
    let app = TestApp::spawn().await;
    let (id, token) = app.user(None, &["flows.read"]).await;
    assert_eq!(app.get("/flows", &token).await.status, StatusCode::OK);
    let path = format!("/api/users/{id}");
    let narrowed = app.patch(&path, &app.admin, json!({"permissions": []})).await;
    assert_eq!(narrowed.status, StatusCode::OK, "{:?}", narrowed.body);
    assert_eq!(app.get("/flows", &token).await.status, StatusCode::FORBIDDEN);
    let disabled = app.patch(&path, &app.admin, json!({"status": "DISABLED"})).await;
    assert_eq!(disabled.status, StatusCode::OK, "{:?}", disabled.body);
    assert_eq!(app.get("/api/users/me", &token).await.status, StatusCode::UNAUTHORIZED);
    app.shutdown().await;
}

/// Every protected route of SPEC §2, with a real id where it takes one.
fn protected_routes(user: &str, tenant: &str) -> Vec<(Method, String)> {
    let mut routes = vec![
        (Method::POST, "/logout".to_string()),
        (Method::POST, "/impersonate".to_string()),
        (Method::POST, "/api/tenants".to_string()),
        (Method::GET, "/api/tenants".to_string()),
        (Method::GET, format!("/api/tenants/{tenant}")),
    ];
    for prefix in ["/api/users", "/users"] {
        routes.extend([
            (Method::GET, prefix.to_string()),
            (Method::POST, prefix.to_string()),
            (Method::GET, format!("{prefix}/me")),
            (Method::GET, format!("{prefix}/{user}")),
            (Method::PATCH, format!("{prefix}/{user}")),
            (Method::DELETE, format!("{prefix}/{user}")),
        ]);
    }
    routes
}

#[tokio::test]
async fn protected_identity_routes_answer_401_to_missing_malformed_and_unknown_tokens() {
    let app = TestApp::spawn().await;
    let tenant = app.tenant("Acme").await;
    let (user, _) = app.user(Some(&tenant), &[]).await;
    let body = r#"{"username":"someone@example.com"}"#;
    for (method, path) in protected_routes(&user, &tenant) {
        let json = [("content-type", "application/json")];
        let missing = app.call_raw(method.clone(), &path, None, &json, body).await;
        assert_eq!(missing.status, StatusCode::UNAUTHORIZED, "{method} {path}");
        assert_eq!(missing.messages(), vec!["Missing authorization header.".to_string()], "{method} {path}");
        assert_eq!(missing.body["errors"][0]["code"], 401);
        for header in ["Basic YWRtaW46YWRtaW4=", "Bearer", "Bearer ", "Token abc", "Bearer not-a-token"] {
            let headers = [("content-type", "application/json"), ("authorization", header)];
            let reply = app.call_raw(method.clone(), &path, None, &headers, body).await;
            assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{method} {path} with {header:?}");
            assert_eq!(reply.messages().len(), 1, "{method} {path} with {header:?}: {:?}", reply.body);
            assert!(reply.headers.contains_key("www-authenticate"), "{method} {path}");
        }
    }
    // Nothing happened: the user and the tenant are still there, no user was created.
    assert_eq!(app.get(&format!("/api/users/{user}"), &app.admin).await.status, StatusCode::OK);
    assert_eq!(app.get("/api/users?username=someone@example.com", &app.admin).await.body["meta"]["total"], 0);
    app.shutdown().await;
}

#[tokio::test]
async fn impersonation_creates_one_end_user_per_tenant_and_returns_working_tokens() {
    let app = TestApp::spawn().await;
    let acme = app.tenant("Acme").await;
    let globex = app.tenant("Globex").await;
    let (_, acme_admin) = app.user(Some(&acme), &["tenant.all"]).await;
    let (_, globex_admin) = app.user(Some(&globex), &["tenant.all"]).await;

    let first = app.post("/impersonate", &acme_admin, json!({"username": "customer-42"})).await;
    assert_eq!(first.status, StatusCode::OK, "{:?}", first.body);
    let token = first.body["token"].as_str().expect("token").to_string();
    let me = app.get("/api/users/me", &token).await;
    assert_eq!(me.status, StatusCode::OK, "{:?}", me.body);
    let end_user = me.body["data"].clone();
    assert_eq!(end_user["username"], "customer-42");
    assert_eq!(end_user["canLogin"], false);
    assert_eq!(end_user["tenant"], acme.as_str());
    assert_eq!(end_user["status"], "ACTIVE");
    let perms: BTreeSet<&str> =
        end_user["permissions"].as_array().expect("permissions").iter().filter_map(Value::as_str).collect();
    for admin_only in ["all", "tenant.all", "tenant.account.create", "iam.account.delete"] {
        assert!(!perms.contains(admin_only), "end user holds {admin_only}");
    }
    // The token works for the end user's own work, in the tenant.
    let flow = app.post("/flows", &token, flowmate_tests::flow_body("for the customer")).await;
    assert_eq!(flow.status, StatusCode::CREATED, "{:?}", flow.body);
    assert_eq!(flow.body["data"]["tenant"], acme.as_str());
    let flow_id = flow.body["data"]["id"].as_str().expect("id");
    assert_eq!(app.get(&format!("/flows/{flow_id}"), &acme_admin).await.status, StatusCode::OK);

    // Again: the same user, a new token; the first still works.
    let again = app.post("/impersonate", &acme_admin, json!({"username": "customer-42"})).await;
    assert_eq!(again.status, StatusCode::OK);
    assert_ne!(again.body["token"], first.body["token"]);
    let again_me = app.get("/api/users/me", again.body["token"].as_str().expect("token")).await;
    assert_eq!(again_me.body["data"]["id"], end_user["id"]);
    assert_eq!(app.get("/api/users/me", &token).await.status, StatusCode::OK);
    let listed = app.get("/api/users?username=customer-42", &acme_admin).await;
    assert_eq!(listed.body["meta"]["total"], 1, "{:?}", listed.body);

    // End users cannot log in with a password; the answer is the usual 401.
    let unknown = login_reply(&app, "nobody@example.com", "whatever-password").await;
    let end_login = login_reply(&app, "customer-42", "whatever-password").await;
    assert_eq!(end_login.status, StatusCode::UNAUTHORIZED);
    assert_eq!(end_login.body, unknown.body);

    // The same name in another tenant is another end user.
    let other = app.post("/impersonate", &globex_admin, json!({"username": "customer-42"})).await;
    assert_eq!(other.status, StatusCode::OK);
    let other_me = app.get("/api/users/me", other.body["token"].as_str().expect("token")).await;
    assert_ne!(other_me.body["data"]["id"], end_user["id"]);
    assert_eq!(other_me.body["data"]["tenant"], globex.as_str());
    app.assert_no_secrets(&[]);
    app.shutdown().await;
}

#[tokio::test]
async fn impersonation_is_for_tenant_administrators_with_a_valid_body() {
    let app = TestApp::spawn().await;
    let acme = app.tenant("Acme").await;
    let (_, member) = app.user(Some(&acme), &["tenant.account.create", "tenant.account.read"]).await;
    let (_, acme_admin) = app.user(Some(&acme), &["tenant.all"]).await;
    let denied = app.post("/impersonate", &member, json!({"username": "customer-1"})).await;
    assert_eq!(denied.status, StatusCode::FORBIDDEN, "{:?}", denied.body);
    assert_eq!(denied.messages(), vec!["MISSING_PERMISSION".to_string()]);
    // The system admin has no tenant to act in.
    let admin = app.post("/impersonate", &app.admin, json!({"username": "customer-1"})).await;
    assert_eq!(admin.status, StatusCode::FORBIDDEN, "{:?}", admin.body);
    let invalid = app.post("/impersonate", &acme_admin, json!({"tenant": acme})).await;
    assert_eq!(invalid.status, StatusCode::BAD_REQUEST);
    assert_eq!(fields(&invalid), BTreeSet::from(["tenant".to_string(), "username".to_string()]));
    // No end user was created by any of these.
    let listed = app.get("/api/users?username=customer-1", &app.admin).await;
    assert_eq!(listed.body["meta"]["total"], 0);
    app.shutdown().await;
}
