//! `UserRepository`, `TenantRepository` and `TokenRepository` contracts.

use super::fixtures::{drain, event, events_of, long_ago, marker, new_user, now, tenant, token, user};
use flow_domain::error::PortError;
use flow_domain::event::{Event, names};
use flow_domain::ids::{TenantId, TokenId, UserId};
use flow_domain::model::{AccessToken, TokenRevocation, User, UserStatus};
use flow_domain::permission::Permission;
use flow_domain::ports::{Outbox, TenantRepository, TokenRepository, UserRepository};
use flow_domain::query::{PageRequest, UserQuery};
use std::sync::Arc;

fn user_event(user: &User) -> Event {
    Event::user_event(names::USER_CREATED, user.id, now())
}

async fn list_ids(users: &dyn UserRepository, query: &UserQuery) -> Vec<UserId> {
    users.list(query).await.expect("list users").items.into_iter().map(|u| u.id).collect()
}

fn user_query(tenant: Option<Option<TenantId>>, username: Option<&str>) -> UserQuery {
    UserQuery { tenant, username: username.map(String::from), page: PageRequest { size: 100, number: 1 } }
}

/// `insert`/`get` round trip; `find_login` finds users who can log in, case-insensitively,
/// with their hash; `find_end_user` finds end users of a tenant; events are appended.
pub async fn users_round_trip(users: Arc<dyn UserRepository>, outbox: Arc<dyn Outbox>) {
    let t = TenantId::new();
    let mut login = user(&format!("Login-{}", marker()), Some(t), true);
    login.permissions = vec![Permission::TenantAll, Permission::ExecutionsRead, Permission::IamAccountDelete];
    login.lastname = None;
    login.status = UserStatus::Pending;
    login.created_at = long_ago(7);
    let end = user(&format!("End-{}", marker()), Some(t), false);
    let events = vec![user_event(&login)];
    drain(outbox.as_ref()).await;
    users.insert(&new_user(&login, Some("$argon2id$hash")), &events).await.expect("insert login user");
    users.insert(&new_user(&end, None), &[]).await.expect("insert end user");
    assert_eq!(events_of(&drain(outbox.as_ref()).await), events, "insert appends its events");

    assert_eq!(users.get(login.id).await.expect("get"), Some(login.clone()), "every field round-trips");
    assert_eq!(users.get(end.id).await.expect("get"), Some(end.clone()));
    assert_eq!(users.get(UserId::new()).await.expect("get"), None, "unknown id");
    let found = users.find_login(&login.username.to_uppercase()).await.expect("find login");
    assert_eq!(found, Some((login.clone(), Some("$argon2id$hash".into()))), "find_login ignores case");
    assert_eq!(users.find_login(&end.username).await.expect("find login"), None, "end users cannot log in");
    assert_eq!(users.find_login(&marker()).await.expect("find login"), None, "unknown username");
    let found = users.find_end_user(t, &end.username.to_lowercase()).await.expect("find end user");
    assert_eq!(found, Some(end.clone()), "find_end_user ignores case");
    assert_eq!(
        users.find_end_user(t, &login.username).await.expect("find end user"),
        None,
        "not an end user"
    );
    assert_eq!(
        users.find_end_user(TenantId::new(), &end.username).await.expect("find"),
        None,
        "other tenant"
    );
    assert!(users.count().await.expect("count") >= 2, "count includes the new users");
}

/// Usernames are unique case-insensitively among users who can log in (across tenants), and
/// per tenant among end users; a refused insert appends nothing.
pub async fn users_duplicate_usernames(users: Arc<dyn UserRepository>, outbox: Arc<dyn Outbox>) {
    let (t1, t2) = (TenantId::new(), TenantId::new());
    let name = format!("Alice-{}", marker());
    users.insert(&new_user(&user(&name, Some(t1), true), Some("h")), &[]).await.expect("first login user");
    drain(outbox.as_ref()).await;

    let dup = user(&name.to_uppercase(), Some(t2), true);
    let result = users.insert(&new_user(&dup, Some("h")), &[user_event(&dup)]).await;
    assert!(matches!(result, Err(PortError::Duplicate("username"))), "login name taken: {result:?}");
    assert_eq!(users.get(dup.id).await.expect("get"), None, "refused insert stores nothing");
    assert!(drain(outbox.as_ref()).await.is_empty(), "refused insert appends nothing");

    let end_name = format!("bob-{}", marker());
    users.insert(&new_user(&user(&end_name, Some(t1), false), None), &[]).await.expect("end user in t1");
    let result = users.insert(&new_user(&user(&end_name.to_uppercase(), Some(t1), false), None), &[]).await;
    assert!(matches!(result, Err(PortError::Duplicate("username"))), "end user name taken in t1: {result:?}");
    users.insert(&new_user(&user(&end_name, Some(t2), false), None), &[]).await.expect("same end user in t2");
    users
        .insert(&new_user(&user(&name, Some(t1), false), None), &[])
        .await
        .expect("end user named as a login");
    users
        .insert(&new_user(&user(&end_name, Some(t1), true), Some("h")), &[])
        .await
        .expect("login user named as an end user");
    let result = users.insert(&new_user(&user(&end_name, Some(t2), true), Some("h")), &[]).await;
    assert!(matches!(result, Err(PortError::Duplicate("username"))), "second login user: {result:?}");
}

/// `list`: tenant scope (one tenant, tenant-less users, or all), exact case-insensitive
/// username, ordered by creation then id, paged with the total.
pub async fn users_list(users: Arc<dyn UserRepository>) {
    let t = TenantId::new();
    let base = now();
    let mut members = Vec::new();
    for offset in [1, 1, 0] {
        let mut u = user(&format!("member-{}", marker()), Some(t), true);
        u.created_at = base + chrono::Duration::milliseconds(offset);
        users.insert(&new_user(&u, None), &[]).await.expect("insert");
        members.push(u);
    }
    let loner = user(&format!("loner-{}", marker()), None, true);
    users.insert(&new_user(&loner, None), &[]).await.expect("insert");

    let mut expected = members.clone();
    expected.sort_by_key(|u| (u.created_at, u.id.to_string()));
    let expected: Vec<UserId> = expected.iter().map(|u| u.id).collect();
    assert_eq!(
        list_ids(users.as_ref(), &user_query(Some(Some(t)), None)).await,
        expected,
        "one tenant, in order"
    );
    let first = users
        .list(&UserQuery { page: PageRequest { size: 2, number: 1 }, ..user_query(Some(Some(t)), None) })
        .await
        .expect("page 1");
    let second = users
        .list(&UserQuery { page: PageRequest { size: 2, number: 2 }, ..user_query(Some(Some(t)), None) })
        .await
        .expect("page 2");
    assert_eq!((first.total, second.total), (3, 3), "total counts the whole filter");
    let paged: Vec<UserId> = first.items.iter().chain(&second.items).map(|u| u.id).collect();
    assert_eq!(paged, expected, "pages slice the order");

    let upper = members[0].username.to_uppercase();
    let scoped = [
        (Some(Some(t)), &upper, vec![members[0].id]),
        (None, &upper, vec![members[0].id]),
        (Some(None), &upper, vec![]),
        (Some(None), &loner.username, vec![loner.id]),
        (None, &loner.username, vec![loner.id]),
        (Some(Some(t)), &loner.username, vec![]),
        (Some(Some(TenantId::new())), &upper, vec![]),
    ];
    for (tenant, username, want) in scoped {
        let got = list_ids(users.as_ref(), &user_query(tenant, Some(username))).await;
        assert_eq!(got, want, "scope {tenant:?} with username {username}");
    }
    let partial = &members[0].username[..6];
    assert!(list_ids(users.as_ref(), &user_query(None, Some(partial))).await.is_empty(), "username is exact");
}

/// `save` replaces the user, keeps the password hash unless a new one is given, answers
/// `NotFound` for unknown users and `Duplicate("username")` for a taken name.
pub async fn users_save(users: Arc<dyn UserRepository>) {
    let t = TenantId::new();
    let original = user(&format!("carol-{}", marker()), Some(t), true);
    users.insert(&new_user(&original, Some("hash-1")), &[]).await.expect("insert");

    let mut changed = original.clone();
    changed.firstname = None;
    changed.status = UserStatus::Disabled;
    changed.permissions = vec![Permission::TemplatesRead];
    changed.updated_at = now() + chrono::Duration::seconds(1);
    users.save(&changed, None, TokenRevocation::KeepAll, &[]).await.expect("save");
    assert_eq!(users.get(original.id).await.expect("get"), Some(changed.clone()), "save replaces the user");
    let login = users.find_login(&original.username).await.expect("find login");
    assert_eq!(login.and_then(|(_, hash)| hash), Some("hash-1".into()), "no new hash keeps the old one");
    users.save(&changed, Some("hash-2".into()), TokenRevocation::KeepAll, &[]).await.expect("save with hash");
    let login = users.find_login(&original.username).await.expect("find login");
    assert_eq!(login.and_then(|(_, hash)| hash), Some("hash-2".into()), "a new hash replaces the old one");

    let result = users.save(&user("ghost", None, true), None, TokenRevocation::KeepAll, &[]).await;
    assert!(matches!(result, Err(PortError::NotFound)), "unknown user is NotFound: {result:?}");

    let other = user(&format!("dave-{}", marker()), Some(t), true);
    users.insert(&new_user(&other, None), &[]).await.expect("insert");
    let renamed = User { username: original.username.to_uppercase(), ..other.clone() };
    let result = users.save(&renamed, None, TokenRevocation::KeepAll, &[]).await;
    assert!(matches!(result, Err(PortError::Duplicate("username"))), "taken name: {result:?}");
    assert_eq!(users.get(other.id).await.expect("get"), Some(other), "refused save changes nothing");
}

async fn valid(tokens: &dyn TokenRepository, issued: &[AccessToken]) -> Vec<bool> {
    let mut valid = Vec::new();
    for t in issued {
        valid.push(tokens.find_valid(&t.hash, now()).await.expect("find token").is_some());
    }
    valid
}

/// `save` revokes the user's tokens in the same write as `revocation` says: none, all but one,
/// or all; never another user's; and a refused save (unknown user, taken name) revokes nothing.
pub async fn users_save_revokes_tokens(users: Arc<dyn UserRepository>, tokens: Arc<dyn TokenRepository>) {
    let t = TenantId::new();
    let owner = user(&format!("grace-{}", marker()), Some(t), true);
    let bystander = user(&format!("heidi-{}", marker()), Some(t), true);
    for u in [&owner, &bystander] {
        users.insert(&new_user(u, Some("h")), &[]).await.expect("insert user");
    }
    let expires = now() + chrono::Duration::hours(1);
    let mut issued: Vec<AccessToken> = (0..3).map(|_| token(owner.id, &marker(), expires)).collect();
    let others = [token(bystander.id, &marker(), expires)];
    for t in issued.iter().chain(&others) {
        tokens.insert(t).await.expect("insert token");
    }

    users.save(&owner, Some("h2".into()), TokenRevocation::KeepAll, &[]).await.expect("save, keep all");
    assert_eq!(valid(tokens.as_ref(), &issued).await, [true, true, true], "KeepAll revokes nothing");

    let taken = User { username: bystander.username.clone(), ..owner.clone() };
    let refused = users.save(&taken, None, TokenRevocation::RevokeAll, &[]).await;
    assert!(matches!(refused, Err(PortError::Duplicate("username"))), "taken name: {refused:?}");
    assert_eq!(valid(tokens.as_ref(), &issued).await, [true, true, true], "a refused save revokes nothing");
    let ghost = user(&format!("ghost-{}", marker()), Some(t), true);
    let refused = users.save(&ghost, None, TokenRevocation::RevokeAll, &[]).await;
    assert!(matches!(refused, Err(PortError::NotFound)), "unknown user: {refused:?}");

    let kept = issued[1].id;
    users.save(&owner, Some("h3".into()), TokenRevocation::RevokeAllBut(kept), &[]).await.expect("save");
    assert_eq!(valid(tokens.as_ref(), &issued).await, [false, true, false], "all but the kept one revoked");
    let login = users.find_login(&owner.username).await.expect("find login");
    assert_eq!(login.and_then(|(_, hash)| hash), Some("h3".into()), "with the new hash");

    issued.push(token(owner.id, &marker(), expires));
    tokens.insert(&issued[3]).await.expect("insert token");
    let disabled = User { status: UserStatus::Disabled, ..owner.clone() };
    users.save(&disabled, None, TokenRevocation::RevokeAll, &[]).await.expect("save, revoke all");
    assert_eq!(valid(tokens.as_ref(), &issued).await, [false; 4], "every token revoked");
    users.save(&owner, None, TokenRevocation::KeepAll, &[]).await.expect("re-activate");
    assert_eq!(valid(tokens.as_ref(), &issued).await, [false; 4], "re-activation revives none");
    assert_eq!(valid(tokens.as_ref(), &others).await, [true], "another user's token is untouched");
}

/// `delete` removes the user and every token issued for it, appending its events; a second
/// delete is `NotFound`.
pub async fn users_delete_removes_tokens(
    users: Arc<dyn UserRepository>,
    tokens: Arc<dyn TokenRepository>,
    outbox: Arc<dyn Outbox>,
) {
    let doomed = user(&format!("erin-{}", marker()), None, true);
    users.insert(&new_user(&doomed, Some("h")), &[]).await.expect("insert");
    let expires = now() + chrono::Duration::hours(1);
    let issued = [token(doomed.id, &marker(), expires), token(doomed.id, &marker(), expires)];
    for t in &issued {
        tokens.insert(t).await.expect("insert token");
    }
    drain(outbox.as_ref()).await;
    let deleted = Event::user_event(names::USER_DELETED, doomed.id, now());
    users.delete(doomed.id, std::slice::from_ref(&deleted)).await.expect("delete");
    assert_eq!(users.get(doomed.id).await.expect("get"), None, "deleted");
    assert_eq!(users.find_login(&doomed.username).await.expect("find"), None, "cannot log in");
    for t in &issued {
        assert_eq!(tokens.find_valid(&t.hash, now()).await.expect("find token"), None, "tokens deleted");
    }
    assert_eq!(events_of(&drain(outbox.as_ref()).await), vec![deleted], "delete appends its events");
    let result = users.delete(doomed.id, &[event()]).await;
    assert!(matches!(result, Err(PortError::NotFound)), "second delete is NotFound: {result:?}");
    assert!(drain(outbox.as_ref()).await.is_empty(), "a refused delete appends nothing");
}

/// Tenants round-trip; names are unique case-insensitively (`Duplicate("tenant name")`);
/// `list` orders by creation then id, paged with the total.
pub async fn tenants(tenants: Arc<dyn TenantRepository>) {
    let acme = tenant(&format!("Acme {}", marker()));
    tenants.insert(&acme).await.expect("insert");
    assert_eq!(tenants.get(acme.id).await.expect("get"), Some(acme.clone()), "round trip");
    assert_eq!(tenants.get(TenantId::new()).await.expect("get"), None, "unknown id");
    let dup = tenant(&acme.name.to_uppercase());
    let result = tenants.insert(&dup).await;
    assert!(matches!(result, Err(PortError::Duplicate("tenant name"))), "name taken: {result:?}");
    assert_eq!(tenants.get(dup.id).await.expect("get"), None, "refused insert stores nothing");

    let base = long_ago(0);
    let mut mine = Vec::new();
    for offset in [5, 3, 3] {
        let mut t = tenant(&format!("t {}", marker()));
        t.created_at = base + chrono::Duration::milliseconds(offset);
        tenants.insert(&t).await.expect("insert");
        mine.push(t);
    }
    mine.sort_by_key(|t| (t.created_at, t.id.to_string()));
    let mut seen = Vec::new();
    let mut total = None;
    for number in 1.. {
        let page = tenants.list(PageRequest { size: 2, number }).await.expect("list tenants");
        total.get_or_insert(page.total);
        if page.items.is_empty() {
            break;
        }
        assert!(page.items.len() <= 2, "page size");
        seen.extend(page.items);
    }
    assert_eq!(Some(seen.len() as u64), total, "total counts every tenant");
    let mine_seen: Vec<TenantId> =
        seen.iter().map(|t| t.id).filter(|id| mine.iter().any(|t| t.id == *id)).collect();
    assert_eq!(mine_seen, mine.iter().map(|t| t.id).collect::<Vec<_>>(), "by creation, then id");
}

/// Tokens are found by hash (with their user) only while `expires_at > now` and not revoked;
/// `extend` pushes the expiry; `revoke` is final.
pub async fn tokens_lifecycle(users: Arc<dyn UserRepository>, tokens: Arc<dyn TokenRepository>) {
    let owner = user(&format!("frank-{}", marker()), Some(TenantId::new()), true);
    users.insert(&new_user(&owner, Some("h")), &[]).await.expect("insert user");
    let start = now();
    let issued = token(owner.id, &marker(), start + chrono::Duration::hours(1));
    tokens.insert(&issued).await.expect("insert token");

    let found = tokens.find_valid(&issued.hash, start).await.expect("find");
    assert_eq!(found, Some((issued.clone(), owner.clone())), "valid token with its user");
    let last_valid = issued.expires_at - chrono::Duration::milliseconds(1);
    assert!(tokens.find_valid(&issued.hash, last_valid).await.expect("find").is_some(), "valid until expiry");
    assert_eq!(
        tokens.find_valid(&issued.hash, issued.expires_at).await.expect("find"),
        None,
        "expired at expiry"
    );
    assert_eq!(tokens.find_valid(&marker(), start).await.expect("find"), None, "unknown hash");

    let extended = start + chrono::Duration::hours(2);
    tokens.extend(issued.id, extended).await.expect("extend");
    let later = start + chrono::Duration::minutes(90);
    let found = tokens.find_valid(&issued.hash, later).await.expect("find").map(|(t, _)| t.expires_at);
    assert_eq!(found, Some(extended), "extend pushes the expiry");

    tokens.revoke(issued.id).await.expect("revoke");
    assert_eq!(tokens.find_valid(&issued.hash, start).await.expect("find"), None, "revoked");
    tokens.extend(issued.id, extended).await.expect("extend a revoked token");
    assert_eq!(tokens.find_valid(&issued.hash, start).await.expect("find"), None, "revocation is final");
    tokens.revoke(TokenId::new()).await.expect("revoking an unknown token is harmless");
}
