//! Who owns a new or edited flow or template, and in which tenant it lives.

use crate::actor::Actor;
use crate::error::FieldError;
use crate::ids::TenantId;
use crate::model::{Owner, OwnerType};

/// Decides the tenant and owners of a resource written by `actor`.
///
/// Admins may name any tenant and owners. Everyone else writes only into their own tenant and
/// may name only their own tenant as a tenant owner. The caller is added as a user owner (on an
/// edit, unless an admin), and on creation (`current_tenant` is `None`) the resource's tenant as a
/// tenant owner.
pub(crate) fn resolve(
    actor: &Actor,
    tenant: Option<Option<TenantId>>,
    owners: Option<Vec<Owner>>,
    current_tenant: Option<Option<TenantId>>,
) -> Result<(Option<TenantId>, Vec<Owner>), Vec<FieldError>> {
    let mut errors = Vec::new();
    let default_tenant = current_tenant.unwrap_or(actor.tenant);
    let tenant = match tenant {
        Some(t) if !actor.is_admin() && t != default_tenant => {
            errors.push(FieldError::at("tenant", "The tenant of a resource cannot be chosen or changed."));
            default_tenant
        }
        Some(t) => t,
        None => default_tenant,
    };
    let mut owners = owners.unwrap_or_default();
    if !actor.is_admin() {
        for (i, owner) in owners.iter().enumerate() {
            if owner.owner_type == OwnerType::Tenant && Some(owner.id) != actor.tenant.map(|t| t.0) {
                errors.push(FieldError::at(
                    format!("owners[{i}].id"),
                    "Only your own tenant can be named as a tenant owner.",
                ));
            }
        }
    }
    // The creator always owns a new resource; an edit adds a non-admin caller so that they
    // keep access, but never an admin (who sees everything anyway): an admin's edit must not
    // make them an owner, or hand-over of a flow to one user would be impossible.
    let creating = current_tenant.is_none();
    if creating || !actor.is_admin() {
        crate::model::add_owner_pub(&mut owners, Owner::user(actor.user_id.0));
    }
    if let (true, Some(t)) = (creating, tenant) {
        crate::model::add_owner_pub(&mut owners, Owner::tenant(t.0));
    }
    if errors.is_empty() { Ok((tenant, owners)) } else { Err(errors) }
}
