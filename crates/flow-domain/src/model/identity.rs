//! Users, tenants and access tokens.

use crate::ids::{TenantId, TokenId, UserId};
use crate::permission::{Permission, PermissionSet};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::str::FromStr;

/// Account state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "UPPERCASE")]
pub enum UserStatus {
    /// May log in.
    #[default]
    Active,
    /// Not yet confirmed; may not log in.
    Pending,
    /// Locked out.
    Disabled,
}

impl UserStatus {
    /// The wire name.
    pub fn as_str(&self) -> &'static str {
        match self {
            UserStatus::Active => "ACTIVE",
            UserStatus::Pending => "PENDING",
            UserStatus::Disabled => "DISABLED",
        }
    }
}

impl FromStr for UserStatus {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        match s {
            "ACTIVE" => Ok(UserStatus::Active),
            "PENDING" => Ok(UserStatus::Pending),
            "DISABLED" => Ok(UserStatus::Disabled),
            _ => Err(()),
        }
    }
}

/// A user account. The password hash is never part of it: it lives only in storage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct User {
    /// Its id.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = Uuid))]
    pub id: UserId,
    /// Login name; unique among users who can log in, and per tenant among end users.
    pub username: String,
    /// Given name.
    pub firstname: Option<String>,
    /// Family name.
    pub lastname: Option<String>,
    /// Account state.
    pub status: UserStatus,
    /// The tenant the user belongs to.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = Uuid))]
    pub tenant: Option<TenantId>,
    /// Granted permissions.
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<String>))]
    pub permissions: Vec<Permission>,
    /// `false` for impersonated end users, who act only through tokens issued for them.
    pub can_login: bool,
    /// Creation time.
    #[serde(with = "super::millis")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub created_at: DateTime<Utc>,
    /// Last change.
    #[serde(with = "super::millis")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub updated_at: DateTime<Utc>,
}

impl User {
    /// The user's permissions as a grant set.
    pub fn permission_set(&self) -> PermissionSet {
        PermissionSet::new(self.permissions.clone())
    }
}

/// A user to be inserted, with its password hash (absent for end users who cannot log in).
#[derive(Debug, Clone)]
pub struct NewUser {
    /// The account.
    pub user: User,
    /// PHC string of the Argon2id hash.
    pub password_hash: Option<String>,
}

/// What saving a user does to the tokens issued for it, in the same transaction: a changed
/// password, a reset or a disabled account ends the user's other sessions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenRevocation {
    /// Every token stays valid.
    KeepAll,
    /// Every token of the user is revoked.
    RevokeAll,
    /// Every token of the user but this one is revoked (the token that changed its own
    /// user's password keeps its session).
    RevokeAllBut(TokenId),
}

/// A tenant: an organisation whose users, flows and templates are isolated from all others.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Tenant {
    /// Its id.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = Uuid))]
    pub id: TenantId,
    /// Unique name.
    pub name: String,
    /// Creation time.
    #[serde(with = "super::millis")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub created_at: DateTime<Utc>,
    /// Last change.
    #[serde(with = "super::millis")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub updated_at: DateTime<Utc>,
}

/// An issued bearer token. Only the SHA-256 of the secret is stored.
#[derive(Debug, Clone, PartialEq)]
pub struct AccessToken {
    /// Its id (returned by login as `id`).
    pub id: TokenId,
    /// The account it acts for.
    pub user_id: UserId,
    /// Hex SHA-256 of the secret.
    pub hash: String,
    /// Issue time.
    pub created_at: DateTime<Utc>,
    /// Sliding expiry: pushed out on use.
    pub expires_at: DateTime<Utc>,
}
