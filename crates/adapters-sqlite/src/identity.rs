//! `UserRepository` and `TenantRepository`: accounts (usernames unique case-insensitively
//! among users who can log in, and per tenant among end users) and tenants. Every write is one
//! group-commit job (see `write`).

use crate::error::{port_error, unique_as};
use crate::rows::{TENANT_COLUMNS, TenantRow, USER_COLUMNS, UserRow, permissions_json};
use crate::sql::{Arg, Filter, bind_args, fold, int, millis};
use crate::store::SqliteStore;
use crate::write::append_events;
use async_trait::async_trait;
use flow_domain::error::PortError;
use flow_domain::event::Event;
use flow_domain::ids::{TenantId, UserId};
use flow_domain::model::{NewUser, Tenant, TokenRevocation, User};
use flow_domain::ports::{TenantRepository, UserRepository};
use flow_domain::query::{Page, PageRequest, UserQuery};
use sqlx::AssertSqlSafe;

/// The key reported for a taken username.
const USERNAME: &str = "username";
/// The key reported for a taken tenant name.
const TENANT_NAME: &str = "tenant name";

/// Revokes a user's tokens: binds the user, then the one token kept (`NULL`: none).
const REVOKE_TOKENS: &str = "UPDATE tokens SET revoked = 1 WHERE user_id = ? AND revoked = 0 AND id IS NOT ?";

/// The binds of [`REVOKE_TOKENS`] for `revocation`: `None` when nothing is revoked, else the
/// user and the token kept.
fn revoke_binds(user: UserId, revocation: TokenRevocation) -> Option<(String, Option<String>)> {
    match revocation {
        TokenRevocation::KeepAll => None,
        TokenRevocation::RevokeAll => Some((user.to_string(), None)),
        TokenRevocation::RevokeAllBut(kept) => Some((user.to_string(), Some(kept.to_string()))),
    }
}

impl SqliteStore {
    async fn find_user(&self, condition: &str, args: &[Arg]) -> Result<Option<UserRow>, PortError> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE {condition}");
        bind_args!(sqlx::query_as::<_, UserRow>(AssertSqlSafe(sql)), args)
            .fetch_optional(&self.reader)
            .await
            .map_err(port_error)
    }
}

#[async_trait]
impl UserRepository for SqliteStore {
    async fn insert(&self, new: &NewUser, events: &[Event]) -> Result<(), PortError> {
        let user = &new.user;
        let permissions = permissions_json(user)?;
        let query = sqlx::query(
            "INSERT INTO users (id, username, username_key, firstname, lastname, status, tenant, \
             permissions, can_login, password_hash, created_at, updated_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(user.id.to_string())
        .bind(user.username.clone())
        .bind(fold(&user.username))
        .bind(user.firstname.clone())
        .bind(user.lastname.clone())
        .bind(user.status.as_str())
        .bind(user.tenant.map(|t| t.to_string()))
        .bind(permissions)
        .bind(user.can_login)
        .bind(new.password_hash.clone())
        .bind(millis(user.created_at))
        .bind(millis(user.updated_at));
        let events = events.to_vec();
        self.write(!events.is_empty(), move |tx| {
            Box::pin(async move {
                query.execute(&mut *tx).await.map_err(unique_as(USERNAME))?;
                append_events(tx, &events).await
            })
        })
        .await
    }

    async fn get(&self, id: UserId) -> Result<Option<User>, PortError> {
        self.find_user("id = ?", &[Arg::Text(id.to_string())]).await?.map(UserRow::into_user).transpose()
    }

    async fn find_login(&self, username: &str) -> Result<Option<(User, Option<String>)>, PortError> {
        self.find_user("username_key = ? AND can_login = 1", &[Arg::Text(fold(username))])
            .await?
            .map(UserRow::into_user_and_hash)
            .transpose()
    }

    async fn find_end_user(&self, tenant: TenantId, username: &str) -> Result<Option<User>, PortError> {
        self.find_user(
            "tenant = ? AND username_key = ? AND can_login = 0",
            &[Arg::Text(tenant.to_string()), Arg::Text(fold(username))],
        )
        .await?
        .map(UserRow::into_user)
        .transpose()
    }

    async fn list(&self, query: &UserQuery) -> Result<Page<User>, PortError> {
        let mut filter = Filter::default();
        if let Some(tenant) = query.tenant {
            filter.and("tenant IS ?", [Arg::OptText(tenant.map(|t| t.to_string()))]);
        }
        if let Some(username) = &query.username {
            filter.and("username_key = ?", [Arg::Text(fold(username))]);
        }
        let mut tx = self.reader.begin().await.map_err(port_error)?;
        let count = format!("SELECT COUNT(*) FROM users{}", filter.where_sql());
        let total: i64 = bind_args!(sqlx::query_scalar(AssertSqlSafe(count)), &filter.args)
            .fetch_one(&mut *tx)
            .await
            .map_err(port_error)?;
        let select = format!(
            "SELECT {USER_COLUMNS} FROM users{} ORDER BY created_at, id LIMIT ? OFFSET ?",
            filter.where_sql()
        );
        let rows = bind_args!(sqlx::query_as::<_, UserRow>(AssertSqlSafe(select)), &filter.args)
            .bind(i64::from(query.page.size))
            .bind(int(query.page.offset()))
            .fetch_all(&mut *tx)
            .await
            .map_err(port_error)?;
        tx.rollback().await.map_err(port_error)?;
        let items = rows.into_iter().map(UserRow::into_user).collect::<Result<_, _>>()?;
        Ok(Page { items, total: u64::try_from(total).unwrap_or(0) })
    }

    async fn save(
        &self,
        user: &User,
        password_hash: Option<String>,
        revocation: TokenRevocation,
        events: &[Event],
    ) -> Result<(), PortError> {
        let permissions = permissions_json(user)?;
        let revoke = revoke_binds(user.id, revocation);
        let query = sqlx::query(
            "UPDATE users SET username = ?, username_key = ?, firstname = ?, lastname = ?, status = ?, \
             tenant = ?, permissions = ?, can_login = ?, password_hash = coalesce(?, password_hash), \
             updated_at = ? WHERE id = ?",
        )
        .bind(user.username.clone())
        .bind(fold(&user.username))
        .bind(user.firstname.clone())
        .bind(user.lastname.clone())
        .bind(user.status.as_str())
        .bind(user.tenant.map(|t| t.to_string()))
        .bind(permissions)
        .bind(user.can_login)
        .bind(password_hash)
        .bind(millis(user.updated_at))
        .bind(user.id.to_string());
        let events = events.to_vec();
        self.write(!events.is_empty(), move |tx| {
            Box::pin(async move {
                let updated = query.execute(&mut *tx).await.map_err(unique_as(USERNAME))?;
                if updated.rows_affected() == 0 {
                    return Err(PortError::NotFound);
                }
                if let Some((user, kept)) = revoke {
                    let revoke = sqlx::query(REVOKE_TOKENS).bind(user).bind(kept);
                    revoke.execute(&mut *tx).await.map_err(port_error)?;
                }
                append_events(tx, &events).await
            })
        })
        .await
    }

    async fn delete(&self, id: UserId, events: &[Event]) -> Result<(), PortError> {
        let (id, events) = (id.to_string(), events.to_vec());
        self.write(!events.is_empty(), move |tx| {
            Box::pin(async move {
                sqlx::query("DELETE FROM tokens WHERE user_id = ?")
                    .bind(id.clone())
                    .execute(&mut *tx)
                    .await
                    .map_err(port_error)?;
                let deleted = sqlx::query("DELETE FROM users WHERE id = ?")
                    .bind(id)
                    .execute(&mut *tx)
                    .await
                    .map_err(port_error)?;
                if deleted.rows_affected() == 0 {
                    return Err(PortError::NotFound);
                }
                append_events(tx, &events).await
            })
        })
        .await
    }

    async fn count(&self) -> Result<u64, PortError> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM users")
            .fetch_one(&self.reader)
            .await
            .map_err(port_error)?;
        Ok(u64::try_from(n).unwrap_or(0))
    }
}

#[async_trait]
impl TenantRepository for SqliteStore {
    async fn insert(&self, tenant: &Tenant) -> Result<(), PortError> {
        let query = sqlx::query(
            "INSERT INTO tenants (id, name, name_key, created_at, updated_at) VALUES (?, ?, ?, ?, ?)",
        )
        .bind(tenant.id.to_string())
        .bind(tenant.name.clone())
        .bind(fold(&tenant.name))
        .bind(millis(tenant.created_at))
        .bind(millis(tenant.updated_at));
        self.write(false, move |tx| {
            Box::pin(async move { query.execute(&mut *tx).await.map(|_| ()).map_err(unique_as(TENANT_NAME)) })
        })
        .await
    }

    async fn get(&self, id: TenantId) -> Result<Option<Tenant>, PortError> {
        let sql = format!("SELECT {TENANT_COLUMNS} FROM tenants WHERE id = ?");
        let row = sqlx::query_as::<_, TenantRow>(AssertSqlSafe(sql))
            .bind(id.to_string())
            .fetch_optional(&self.reader)
            .await
            .map_err(port_error)?;
        row.map(Tenant::try_from).transpose()
    }

    async fn list(&self, page: PageRequest) -> Result<Page<Tenant>, PortError> {
        let mut tx = self.reader.begin().await.map_err(port_error)?;
        let total: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM tenants")
            .fetch_one(&mut *tx)
            .await
            .map_err(port_error)?;
        let sql = format!("SELECT {TENANT_COLUMNS} FROM tenants ORDER BY created_at, id LIMIT ? OFFSET ?");
        let rows = sqlx::query_as::<_, TenantRow>(AssertSqlSafe(sql))
            .bind(i64::from(page.size))
            .bind(int(page.offset()))
            .fetch_all(&mut *tx)
            .await
            .map_err(port_error)?;
        tx.rollback().await.map_err(port_error)?;
        let items = rows.into_iter().map(Tenant::try_from).collect::<Result<_, _>>()?;
        Ok(Page { items, total: u64::try_from(total).unwrap_or(0) })
    }
}
