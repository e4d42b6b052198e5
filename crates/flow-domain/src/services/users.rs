//! User and tenant administration use cases.

use crate::actor::Actor;
use crate::error::{PortError, ServiceError, ServiceResult};
use crate::event::{Event, names};
use crate::ids::{TenantId, UserId};
use crate::model::{NewUser, Tenant, TokenRevocation, User, UserStatus};
use crate::permission::Permission;
use crate::ports::{PasswordHasher, TenantRepository, UserRepository};
use crate::query::{Page, Params, parse_id, parse_page, parse_user_query};
use crate::time::Clock;
use crate::validate::identity::{parse_new_tenant, parse_new_user, parse_user_patch};
use serde_json::Value;
use std::sync::Arc;

/// The 404 message for users.
pub const NO_USER: &str = "User not found";
/// The 404 message for tenants.
pub const NO_TENANT: &str = "Tenant not found";

/// User administration.
pub struct UserService {
    users: Arc<dyn UserRepository>,
    tenants: Arc<dyn TenantRepository>,
    hasher: Arc<dyn PasswordHasher>,
    clock: Arc<dyn Clock>,
}

impl UserService {
    /// A service over the user and tenant stores.
    pub fn new(
        users: Arc<dyn UserRepository>,
        tenants: Arc<dyn TenantRepository>,
        hasher: Arc<dyn PasswordHasher>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self { users, tenants, hasher, clock }
    }

    /// `GET /api/users`: admins see all; others with `tenant.account.read` their tenant.
    ///
    /// # Errors
    /// `Forbidden`, `Validation`.
    pub async fn list(&self, actor: &Actor, params: &Params) -> ServiceResult<Page<User>> {
        actor.require(Permission::TenantAccountRead)?;
        let scope = if actor.is_admin() {
            None
        } else {
            match actor.tenant {
                Some(t) => Some(Some(t)),
                None => return Err(ServiceError::missing_permission()),
            }
        };
        let query = parse_user_query(params, scope)?;
        Ok(self.users.list(&query).await?)
    }

    /// `POST /api/users`: non-admins create only in their tenant and grant only what they hold.
    ///
    /// # Errors
    /// `Forbidden`, `Validation`, `Conflict` on a duplicate username.
    pub async fn create(&self, actor: &Actor, body: &Value) -> ServiceResult<User> {
        actor.require(Permission::TenantAccountCreate)?;
        let input = parse_new_user(body).map_err(ServiceError::Validation)?;
        let tenant = if actor.is_admin() {
            input.tenant
        } else {
            if input.tenant.is_some() && input.tenant != actor.tenant {
                return Err(ServiceError::Forbidden("You can only create users in your own tenant.".into()));
            }
            actor.tenant
        };
        if let Some(held) = input.permissions.iter().find(|p| !actor.permissions.grants(**p)) {
            return Err(ServiceError::Forbidden(format!(
                "You cannot grant the permission {held} you do not hold."
            )));
        }
        if let Some(t) = tenant
            && self.tenants.get(t).await?.is_none()
        {
            return Err(ServiceError::invalid("tenant", "No tenant with this id exists."));
        }
        let password_hash = match &input.password {
            Some(p) => Some(self.hasher.hash(p).await?),
            None => None,
        };
        let now = self.clock.now();
        let user = User {
            id: UserId::new(),
            username: input.username,
            firstname: input.firstname,
            lastname: input.lastname,
            status: input.status,
            tenant,
            permissions: input.permissions,
            can_login: input.can_login,
            created_at: now,
            updated_at: now,
        };
        let event = Event::user_event(names::USER_CREATED, user.id, now);
        match self.users.insert(&NewUser { user: user.clone(), password_hash }, &[event]).await {
            Ok(()) => Ok(user),
            Err(PortError::Duplicate(_)) => {
                Err(ServiceError::Conflict("A user with this username already exists.".into()))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// `GET /api/users/me`.
    ///
    /// # Errors
    /// `Unauthenticated` when the account vanished.
    pub async fn me(&self, actor: &Actor) -> ServiceResult<User> {
        self.users
            .get(actor.user_id)
            .await?
            .ok_or_else(|| ServiceError::Unauthenticated("Account no longer exists.".into()))
    }

    /// `GET /api/users/{id}`: oneself, or with `tenant.account.read` in one's tenant.
    ///
    /// # Errors
    /// `Forbidden`, `InvalidId`, `NotFound`.
    pub async fn get(&self, actor: &Actor, id: &str) -> ServiceResult<User> {
        let id: UserId = parse_id(id)?;
        if id != actor.user_id {
            actor.require(Permission::TenantAccountRead)?;
        }
        self.visible(actor, id).await
    }

    async fn visible(&self, actor: &Actor, id: UserId) -> ServiceResult<User> {
        match self.users.get(id).await? {
            Some(u) if u.id == actor.user_id || actor.can_see_tenant(u.tenant) => Ok(u),
            _ => Err(ServiceError::NotFound(NO_USER.into())),
        }
    }

    /// `PATCH /api/users/{id}`: names and password of oneself; anything with
    /// `tenant.account.update` in one's tenant (granting only held permissions). A new password
    /// or an account leaving `ACTIVE` revokes the user's tokens in the same write (see
    /// [`revocation`]).
    ///
    /// # Errors
    /// `Forbidden`, `InvalidId`, `NotFound`, `Validation`.
    pub async fn update(&self, actor: &Actor, id: &str, body: &Value) -> ServiceResult<User> {
        let id: UserId = parse_id(id)?;
        let patch = parse_user_patch(body).map_err(ServiceError::Validation)?;
        if id != actor.user_id || !patch.is_self_service() {
            actor.require(Permission::TenantAccountUpdate)?;
        }
        let mut user = self.visible(actor, id).await?;
        not_more_privileged(actor, &user)?;
        if let Some(perms) = &patch.permissions {
            if let Some(p) = perms.iter().find(|p| !actor.permissions.grants(**p)) {
                return Err(ServiceError::Forbidden(format!(
                    "You cannot grant the permission {p} you do not hold."
                )));
            }
            user.permissions = perms.clone();
        }
        if let Some(first) = patch.firstname {
            user.firstname = first;
        }
        if let Some(last) = patch.lastname {
            user.lastname = last;
        }
        if let Some(status) = patch.status {
            user.status = status;
        }
        user.updated_at = self.clock.now();
        let password_hash = match &patch.password {
            Some(p) => Some(self.hasher.hash(p).await?),
            None => None,
        };
        let revocation = revocation(actor, &user, password_hash.is_some());
        match self.users.save(&user, password_hash, revocation, &[]).await {
            Ok(()) => Ok(user),
            Err(PortError::NotFound) => Err(ServiceError::NotFound(NO_USER.into())),
            Err(e) => Err(e.into()),
        }
    }

    /// `DELETE /api/users/{id}`: publishes `iam.user.deleted`.
    ///
    /// # Errors
    /// `Forbidden`, `InvalidId`, `NotFound`, `Conflict` for one's own account.
    pub async fn delete(&self, actor: &Actor, id: &str) -> ServiceResult<()> {
        actor.require(Permission::IamAccountDelete)?;
        let id: UserId = parse_id(id)?;
        let user = self.visible(actor, id).await?;
        if user.id == actor.user_id {
            return Err(ServiceError::Conflict("You cannot delete your own account.".into()));
        }
        not_more_privileged(actor, &user)?;
        let event = Event::user_event(names::USER_DELETED, user.id, self.clock.now());
        match self.users.delete(user.id, &[event]).await {
            Ok(()) => Ok(()),
            Err(PortError::NotFound) => Err(ServiceError::NotFound(NO_USER.into())),
            Err(e) => Err(e.into()),
        }
    }
}

/// Which tokens of the changed `user` the change ends: all of them when the account is not
/// `ACTIVE` (disabled or pending: a later re-activation must not revive old sessions); on a new
/// password, all but the caller's token when the user changed its own password (the session
/// that made the change stays open, every other one ends), and all of them when someone else
/// set it (an administrator's reset); otherwise none.
fn revocation(actor: &Actor, user: &User, new_password: bool) -> TokenRevocation {
    if user.status != UserStatus::Active {
        return TokenRevocation::RevokeAll;
    }
    if !new_password {
        return TokenRevocation::KeepAll;
    }
    match actor.token_id {
        Some(own) if user.id == actor.user_id => TokenRevocation::RevokeAllBut(own),
        _ => TokenRevocation::RevokeAll,
    }
}

/// Refuses to let `actor` change or delete another account that holds a permission `actor`
/// does not: otherwise a holder of `tenant.account.update` could reset a tenant admin's password
/// and log in as them.
fn not_more_privileged(actor: &Actor, user: &User) -> ServiceResult<()> {
    if user.id != actor.user_id && user.permissions.iter().any(|p| !actor.permissions.grants(*p)) {
        return Err(ServiceError::Forbidden(
            "You cannot change or delete an account holding permissions you do not hold.".into(),
        ));
    }
    Ok(())
}

/// Tenant administration.
pub struct TenantService {
    tenants: Arc<dyn TenantRepository>,
    clock: Arc<dyn Clock>,
}

impl TenantService {
    /// A service over the tenant store.
    pub fn new(tenants: Arc<dyn TenantRepository>, clock: Arc<dyn Clock>) -> Self {
        Self { tenants, clock }
    }

    /// `POST /api/tenants` (admins).
    ///
    /// # Errors
    /// `Forbidden`, `Validation`, `Conflict` on a duplicate name.
    pub async fn create(&self, actor: &Actor, body: &Value) -> ServiceResult<Tenant> {
        actor.require(Permission::All)?;
        let name = parse_new_tenant(body).map_err(ServiceError::Validation)?;
        let now = self.clock.now();
        let tenant = Tenant { id: TenantId::new(), name, created_at: now, updated_at: now };
        match self.tenants.insert(&tenant).await {
            Ok(()) => Ok(tenant),
            Err(PortError::Duplicate(_)) => {
                Err(ServiceError::Conflict("A tenant with this name already exists.".into()))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// `GET /api/tenants` (admins).
    ///
    /// # Errors
    /// `Forbidden`, `Validation`.
    pub async fn list(&self, actor: &Actor, params: &Params) -> ServiceResult<Page<Tenant>> {
        actor.require(Permission::All)?;
        let mut errors = crate::query::ParamErrors::default();
        let page = parse_page(params, &mut errors);
        errors.into_result(())?;
        Ok(self.tenants.list(page).await?)
    }

    /// `GET /api/tenants/{id}`: admins, or a tenant admin for its own tenant.
    ///
    /// # Errors
    /// `Forbidden`, `InvalidId`, `NotFound`.
    pub async fn get(&self, actor: &Actor, id: &str) -> ServiceResult<Tenant> {
        let id: TenantId = parse_id(id)?;
        if !actor.is_admin() {
            actor.require(Permission::TenantAll)?;
            if actor.tenant != Some(id) {
                return Err(ServiceError::NotFound(NO_TENANT.into()));
            }
        }
        self.tenants.get(id).await?.ok_or_else(|| ServiceError::NotFound(NO_TENANT.into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::TokenId;
    use crate::ports::{MockPasswordHasher, MockTenantRepository, MockUserRepository};
    use crate::time::ManualClock;
    use chrono::Utc;
    use futures::executor::block_on;
    use serde_json::json;
    use std::sync::Mutex;

    fn member(tenant: TenantId, permissions: Vec<Permission>) -> User {
        User {
            id: UserId::new(),
            username: format!("{}@example.com", UserId::new()),
            firstname: None,
            lastname: None,
            status: UserStatus::Active,
            tenant: Some(tenant),
            permissions,
            can_login: true,
            created_at: Utc::now(),
            updated_at: Utc::now(),
        }
    }

    /// The revocation `actor`'s `body` asks of a save of `target`.
    fn revocation_of(actor: &Actor, target: &User, body: serde_json::Value) -> TokenRevocation {
        let mut users = MockUserRepository::new();
        let stored = target.clone();
        users.expect_get().returning(move |_| Ok(Some(stored.clone())));
        let seen = Arc::new(Mutex::new(None));
        let saved = Arc::clone(&seen);
        users.expect_save().times(1).returning(move |_, _, revocation, _| {
            *saved.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(revocation);
            Ok(())
        });
        let mut hasher = MockPasswordHasher::new();
        hasher.expect_hash().returning(|_| Ok("new-hash".into()));
        let clock = Arc::new(ManualClock::new(Utc::now()));
        let service =
            UserService::new(Arc::new(users), Arc::new(MockTenantRepository::new()), Arc::new(hasher), clock);
        block_on(service.update(actor, &target.id.to_string(), &body)).unwrap_or_else(|e| panic!("{e:?}"));
        let revocation = *seen.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        revocation.unwrap_or_else(|| panic!("saved"))
    }

    #[test]
    fn a_password_change_a_reset_and_disabling_revoke_the_users_tokens() {
        let tenant = TenantId::new();
        let me = member(tenant, vec![Permission::FlowsRead]);
        let own_token = TokenId::new();
        let me_acting = Actor::for_user(&me, Some(own_token));
        let admin = member(tenant, vec![Permission::TenantAll]);
        let admin_acting = Actor::for_user(&admin, Some(TokenId::new()));
        let cases = [
            (&me_acting, json!({"password": "a-new-password"}), TokenRevocation::RevokeAllBut(own_token)),
            (&me_acting, json!({"firstname": "Ann"}), TokenRevocation::KeepAll),
            (&admin_acting, json!({"password": "a-new-password"}), TokenRevocation::RevokeAll),
            (&admin_acting, json!({"status": "DISABLED"}), TokenRevocation::RevokeAll),
            (&admin_acting, json!({"status": "PENDING"}), TokenRevocation::RevokeAll),
            (&admin_acting, json!({"permissions": ["flows.write"]}), TokenRevocation::KeepAll),
        ];
        for (actor, body, expected) in cases {
            assert_eq!(revocation_of(actor, &me, body.clone()), expected, "{body}");
        }
    }
}
