//! `users`, `tenants` and `tokens` rows.

use super::{from_json, parse_enum, parse_id, parse_opt_id, to_json};
use crate::sql::from_millis;
use flow_domain::error::PortError;
use flow_domain::ids::{TenantId, TokenId, UserId};
use flow_domain::model::{AccessToken, Tenant, User};

/// Columns read into a [`UserRow`].
pub(crate) const USER_COLUMNS: &str = "id, username, firstname, lastname, status, tenant, permissions, \
     can_login, password_hash, created_at, updated_at";

/// A row of `users`, password hash included.
#[derive(sqlx::FromRow)]
pub(crate) struct UserRow {
    id: String,
    username: String,
    firstname: Option<String>,
    lastname: Option<String>,
    status: String,
    tenant: Option<String>,
    permissions: super::Jv,
    can_login: bool,
    password_hash: Option<String>,
    created_at: chrono::DateTime<chrono::Utc>,
    updated_at: chrono::DateTime<chrono::Utc>,
}

impl UserRow {
    /// The user and its password hash.
    pub(crate) fn into_user_and_hash(self) -> Result<(User, Option<String>), PortError> {
        let user = User {
            id: parse_id::<UserId>(&self.id)?,
            username: self.username,
            firstname: self.firstname,
            lastname: self.lastname,
            status: parse_enum(&self.status, "user status")?,
            tenant: parse_opt_id::<TenantId>(self.tenant.as_deref())?,
            permissions: from_json(self.permissions, "permissions")?,
            can_login: self.can_login,
            created_at: from_millis(self.created_at)?,
            updated_at: from_millis(self.updated_at)?,
        };
        Ok((user, self.password_hash))
    }

    /// The user without its password hash.
    pub(crate) fn into_user(self) -> Result<User, PortError> {
        self.into_user_and_hash().map(|(user, _)| user)
    }
}

/// The stored permissions of `user`.
pub(crate) fn permissions_json(user: &User) -> Result<Box<serde_json::value::RawValue>, PortError> {
    to_json(&user.permissions, "permissions")
}

/// Columns read into a [`TenantRow`].
pub(crate) const TENANT_COLUMNS: &str = "id, name, created_at, updated_at";

/// A row of `tenants`.
#[derive(sqlx::FromRow)]
pub(crate) struct TenantRow {
    id: String,
    name: String,
    created_at: chrono::DateTime<chrono::Utc>,
    updated_at: chrono::DateTime<chrono::Utc>,
}

impl TryFrom<TenantRow> for Tenant {
    type Error = PortError;

    fn try_from(row: TenantRow) -> Result<Self, PortError> {
        Ok(Tenant {
            id: parse_id::<TenantId>(&row.id)?,
            name: row.name,
            created_at: from_millis(row.created_at)?,
            updated_at: from_millis(row.updated_at)?,
        })
    }
}

/// A token joined with its user.
#[derive(sqlx::FromRow)]
pub(crate) struct TokenUserRow {
    token_id: String,
    token_hash: String,
    token_created_at: chrono::DateTime<chrono::Utc>,
    token_expires_at: chrono::DateTime<chrono::Utc>,
    #[sqlx(flatten)]
    user: UserRow,
}

impl TokenUserRow {
    /// The token and its user.
    pub(crate) fn into_parts(self) -> Result<(AccessToken, User), PortError> {
        let user = self.user.into_user()?;
        let token = AccessToken {
            id: parse_id::<TokenId>(&self.token_id)?,
            user_id: user.id,
            hash: self.token_hash,
            created_at: from_millis(self.token_created_at)?,
            expires_at: from_millis(self.token_expires_at)?,
        };
        Ok((token, user))
    }
}
