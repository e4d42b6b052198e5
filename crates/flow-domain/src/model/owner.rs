//! Owners of flows and templates: the users and tenants allowed to see and act on them.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Whether an owner is a user or a tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum OwnerType {
    /// A user account.
    User,
    /// A whole tenant.
    Tenant,
}

/// One owner entry: `{id, type}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Owner {
    /// The user's or tenant's id.
    pub id: Uuid,
    /// What `id` names.
    #[serde(rename = "type")]
    pub owner_type: OwnerType,
}

impl Owner {
    /// A user owner.
    pub fn user(id: Uuid) -> Self {
        Self { id, owner_type: OwnerType::User }
    }
    /// A tenant owner.
    pub fn tenant(id: Uuid) -> Self {
        Self { id, owner_type: OwnerType::Tenant }
    }
}

/// Adds `owner` to `owners` unless an entry with the same id and type is already there.
pub(crate) fn add_owner(owners: &mut Vec<Owner>, owner: Owner) {
    if !owners.contains(&owner) {
        owners.push(owner);
    }
}
