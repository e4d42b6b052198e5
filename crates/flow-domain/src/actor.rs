//! Who is calling, and the permission and ownership policy of SPEC §2 and §3.

use crate::error::{ServiceError, ServiceResult};
use crate::ids::{TenantId, TokenId, UserId};
use crate::model::{Owner, User};
use crate::permission::{Permission, PermissionSet};
use crate::query::Visibility;

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq)]
pub struct Actor {
    /// The user acting.
    pub user_id: UserId,
    /// The user's tenant.
    pub tenant: Option<TenantId>,
    /// What the user may do.
    pub permissions: PermissionSet,
    /// The token the request came with (for logout).
    pub token_id: Option<TokenId>,
}

impl Actor {
    /// The actor for `user`, authenticated by `token_id`.
    pub fn for_user(user: &User, token_id: Option<TokenId>) -> Self {
        Self { user_id: user.id, tenant: user.tenant, permissions: user.permission_set(), token_id }
    }

    /// System administrator (`all`).
    pub fn is_admin(&self) -> bool {
        self.permissions.is_admin()
    }

    /// Tenant administrator of a real tenant (`tenant.all`).
    pub fn is_tenant_admin(&self) -> bool {
        self.permissions.is_tenant_admin() && self.tenant.is_some()
    }

    /// Ok when `permission` is granted, else `403 MISSING_PERMISSION`.
    pub fn require(&self, permission: Permission) -> ServiceResult<()> {
        if self.permissions.grants(permission) { Ok(()) } else { Err(ServiceError::missing_permission()) }
    }

    /// Whether the caller may see a resource of `tenant` owned by `owners`.
    ///
    /// Admins see everything. Everyone else sees only resources of their own tenant, and then
    /// only those listing them or their tenant as owner; tenant admins see all of their tenant.
    /// Anything not visible must be answered exactly as a missing resource.
    pub fn can_see(&self, tenant: Option<TenantId>, owners: &[Owner]) -> bool {
        if self.is_admin() {
            return true;
        }
        if tenant != self.tenant {
            return false;
        }
        if self.is_tenant_admin() {
            return true;
        }
        owners.iter().any(|o| o.id == self.user_id.0 || self.tenant.is_some_and(|t| t.0 == o.id))
    }

    /// The list filter equivalent to [`Actor::can_see`].
    pub fn visibility(&self) -> Visibility {
        if self.is_admin() {
            Visibility::All
        } else if let (true, Some(tenant)) = (self.is_tenant_admin(), self.tenant) {
            Visibility::Tenant(tenant)
        } else {
            let mut owner_ids = vec![self.user_id.0];
            owner_ids.extend(self.tenant.map(|t| t.0));
            Visibility::Owners { tenant: self.tenant, owner_ids }
        }
    }

    /// Whether the caller may see users of `tenant` (admins: all; others: their own tenant).
    pub fn can_see_tenant(&self, tenant: Option<TenantId>) -> bool {
        self.is_admin() || (self.tenant.is_some() && tenant == self.tenant)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    fn actor(perms: Vec<Permission>, tenant: Option<TenantId>) -> Actor {
        Actor { user_id: UserId::new(), tenant, permissions: PermissionSet::new(perms), token_id: None }
    }

    #[test]
    fn ownership_policy() {
        let t1 = TenantId::new();
        let t2 = TenantId::new();
        let member = actor(vec![Permission::FlowsRead], Some(t1));
        let own = [Owner::user(member.user_id.0)];
        let tenant_owned = [Owner::tenant(t1.0)];
        let other_user = [Owner::user(Uuid::now_v7())];
        assert!(member.can_see(Some(t1), &own));
        assert!(member.can_see(Some(t1), &tenant_owned));
        assert!(!member.can_see(Some(t1), &other_user));
        // Never across tenants, even when listed as owner.
        assert!(!member.can_see(Some(t2), &own));
        let tadmin = actor(vec![Permission::TenantAll], Some(t1));
        assert!(tadmin.can_see(Some(t1), &other_user));
        assert!(!tadmin.can_see(Some(t2), &tenant_owned));
        let admin = actor(vec![Permission::All], None);
        assert!(admin.can_see(Some(t2), &other_user));
    }
}
