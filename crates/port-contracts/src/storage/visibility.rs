//! Callers and resources for the visibility contracts: every kind of caller of SPEC §3 and
//! resources owned in every way that matters to `Actor::can_see`.

use flow_domain::actor::Actor;
use flow_domain::ids::{TenantId, UserId};
use flow_domain::model::Owner;
use flow_domain::permission::{Permission, PermissionSet};
use uuid::Uuid;

/// Two tenants and one caller of each kind.
#[derive(Debug, Clone)]
pub struct Actors {
    /// The first tenant.
    pub t1: TenantId,
    /// The second tenant.
    pub t2: TenantId,
    /// System administrator (no tenant).
    pub admin: Actor,
    /// Tenant administrator of `t1`.
    pub tenant_admin: Actor,
    /// Member of `t1`.
    pub member: Actor,
    /// Another member of `t1`.
    pub colleague: Actor,
    /// Member of `t2`.
    pub foreign: Actor,
    /// A user without tenant.
    pub loner: Actor,
    /// A user without tenant holding `tenant.all` (which then grants nothing more).
    pub loner_with_tenant_all: Actor,
}

fn actor(tenant: Option<TenantId>, permission: Permission) -> Actor {
    Actor {
        user_id: UserId::new(),
        tenant,
        permissions: PermissionSet::new(vec![permission, Permission::FlowsRead]),
        token_id: None,
    }
}

impl Actors {
    /// Fresh tenants and callers.
    pub fn new() -> Self {
        let (t1, t2) = (TenantId::new(), TenantId::new());
        Self {
            t1,
            t2,
            admin: actor(None, Permission::All),
            tenant_admin: actor(Some(t1), Permission::TenantAll),
            member: actor(Some(t1), Permission::FlowsRead),
            colleague: actor(Some(t1), Permission::FlowsWrite),
            foreign: actor(Some(t2), Permission::FlowsRead),
            loner: actor(None, Permission::FlowsRead),
            loner_with_tenant_all: actor(None, Permission::TenantAll),
        }
    }

    /// Every caller.
    pub fn all(&self) -> Vec<Actor> {
        vec![
            self.admin.clone(),
            self.tenant_admin.clone(),
            self.member.clone(),
            self.colleague.clone(),
            self.foreign.clone(),
            self.loner.clone(),
            self.loner_with_tenant_all.clone(),
        ]
    }
}

impl Default for Actors {
    fn default() -> Self {
        Self::new()
    }
}

/// `(tenant, owners)` of the sample resources.
#[derive(Debug, Clone)]
pub struct Sample {
    /// One entry per resource to create.
    pub cases: Vec<(Option<TenantId>, Vec<Owner>)>,
}

impl Sample {
    /// Resources owned by a member, by a tenant, by a colleague, by nobody, listing a member
    /// from another tenant, and tenant-less ones.
    pub fn new(a: &Actors) -> Self {
        let user = |actor: &Actor| Owner::user(actor.user_id.0);
        let cases = vec![
            (Some(a.t1), vec![user(&a.member), Owner::tenant(a.t1.0)]),
            (Some(a.t1), vec![Owner::tenant(a.t1.0)]),
            (Some(a.t1), vec![user(&a.colleague)]),
            (Some(a.t1), vec![]),
            // Lists t1's member and t1 itself, but belongs to t2: never visible to t1's callers.
            (Some(a.t2), vec![user(&a.member), Owner::tenant(a.t1.0)]),
            (Some(a.t2), vec![user(&a.foreign), Owner::tenant(a.t2.0)]),
            (None, vec![user(&a.loner)]),
            (None, vec![user(&a.loner_with_tenant_all)]),
            (None, vec![user(&a.member)]),
            (None, vec![Owner::user(Uuid::now_v7())]),
        ];
        Self { cases }
    }
}
