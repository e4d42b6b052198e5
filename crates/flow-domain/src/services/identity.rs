//! Authentication use cases: login, logout, bearer-token authentication with sliding expiry,
//! impersonation of end users, and the first admin.

use super::throttle::LoginThrottle;
use crate::actor::Actor;
use crate::error::{PortError, ServiceError, ServiceResult};
use crate::event::{Event, names};
use crate::ids::{TokenId, UserId};
use crate::model::{AccessToken, NewUser, User, UserStatus};
use crate::permission::Permission;
use crate::ports::{PasswordHasher, TokenMinter, TokenRepository, UserRepository};
use crate::time::Clock;
use crate::validate::identity::{parse_impersonation, parse_login};
use chrono::Duration;
use serde_json::Value;
use std::sync::Arc;

/// The one answer for a wrong username or a wrong password (no user enumeration).
pub const BAD_CREDENTIALS: &str = "Invalid username or password.";
/// The answer for an unknown, expired or revoked token.
pub const BAD_TOKEN: &str = "Token invalid or expired.";

/// A token handed to a client: the secret (shown once) and its id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedToken {
    /// The bearer secret.
    pub token: String,
    /// The token's id.
    pub id: TokenId,
}

/// What start-up did about the first admin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FirstAdmin {
    /// Users already existed; nothing was done.
    AlreadyPresent,
    /// Created with the configured password.
    Created {
        /// Its username.
        username: String,
    },
    /// Created with a generated password, to be shown once.
    CreatedWithPassword {
        /// Its username.
        username: String,
        /// The generated password.
        password: String,
    },
}

/// Authentication use cases.
pub struct AuthService {
    users: Arc<dyn UserRepository>,
    tokens: Arc<dyn TokenRepository>,
    hasher: Arc<dyn PasswordHasher>,
    minter: Arc<dyn TokenMinter>,
    clock: Arc<dyn Clock>,
    throttle: LoginThrottle,
    token_ttl: Duration,
}

/// Tokens are extended at most this often (sliding expiry without a write per request).
const EXTEND_EVERY: Duration = Duration::seconds(60);

impl AuthService {
    /// A service issuing tokens that live `token_ttl` after their last use.
    pub fn new(
        users: Arc<dyn UserRepository>,
        tokens: Arc<dyn TokenRepository>,
        hasher: Arc<dyn PasswordHasher>,
        minter: Arc<dyn TokenMinter>,
        clock: Arc<dyn Clock>,
        throttle: LoginThrottle,
        token_ttl: Duration,
    ) -> Self {
        Self { users, tokens, hasher, minter, clock, throttle, token_ttl }
    }

    /// `POST /login`.
    ///
    /// # Errors
    /// `Validation` for a malformed body; `RateLimited` over the failure limits;
    /// `Unauthenticated` for a wrong username or password (same answer); `Forbidden` for a
    /// disabled or pending account, only after a correct password.
    pub async fn login(&self, body: &Value, address: Option<&str>) -> ServiceResult<IssuedToken> {
        let input = parse_login(body).map_err(ServiceError::Validation)?;
        let user = self.check_password(&input.username, &input.password, address).await?;
        self.issue(user.id).await
    }

    /// Checks a username and password (login, and `Basic` webhook auth) without issuing a
    /// token; failures count towards the login throttle.
    ///
    /// # Errors
    /// As [`AuthService::login`].
    pub async fn check_password(
        &self,
        username: &str,
        password: &str,
        address: Option<&str>,
    ) -> ServiceResult<User> {
        let now = self.clock.now();
        if let Some(retry_after_secs) = self.throttle.retry_after(username, address, now) {
            return Err(ServiceError::RateLimited { retry_after_secs });
        }
        let found = self.users.find_login(username).await?;
        let verified = match &found {
            Some((_, Some(hash))) => self.hasher.verify(password, hash).await?,
            _ => {
                // Spend the same effort as a verification so timing does not reveal users.
                self.hasher.hash(password).await?;
                false
            }
        };
        let Some((user, _)) = found.filter(|_| verified) else {
            self.throttle.record_failure(username, address, now);
            return Err(ServiceError::Unauthenticated(BAD_CREDENTIALS.into()));
        };
        if user.status != UserStatus::Active {
            return Err(ServiceError::Forbidden(format!(
                "Account is {}; it cannot log in.",
                user.status.as_str().to_lowercase()
            )));
        }
        self.throttle.record_success(username);
        Ok(user)
    }

    async fn issue(&self, user_id: UserId) -> ServiceResult<IssuedToken> {
        let now = self.clock.now();
        let secret = self.minter.mint();
        let token = AccessToken {
            id: TokenId::new(),
            user_id,
            hash: self.minter.hash(&secret),
            created_at: now,
            expires_at: now + self.token_ttl,
        };
        self.tokens.insert(&token).await?;
        Ok(IssuedToken { token: secret, id: token.id })
    }

    /// Resolves a bearer token to its actor, pushing its expiry out (sliding).
    ///
    /// # Errors
    /// `Unauthenticated` for unknown, expired or revoked tokens and for accounts no longer
    /// active.
    pub async fn authenticate(&self, bearer: &str) -> ServiceResult<Actor> {
        let now = self.clock.now();
        let hash = self.minter.hash(bearer);
        let Some((token, user)) = self.tokens.find_valid(&hash, now).await? else {
            return Err(ServiceError::Unauthenticated(BAD_TOKEN.into()));
        };
        if user.status != UserStatus::Active {
            return Err(ServiceError::Unauthenticated(BAD_TOKEN.into()));
        }
        let renewed = now + self.token_ttl;
        if renewed - token.expires_at >= EXTEND_EVERY {
            self.tokens.extend(token.id, renewed).await?;
        }
        Ok(Actor::for_user(&user, Some(token.id)))
    }

    /// `POST /logout`: revokes the caller's token.
    ///
    /// # Errors
    /// Storage failures.
    pub async fn logout(&self, actor: &Actor) -> ServiceResult<()> {
        if let Some(id) = actor.token_id {
            self.tokens.revoke(id).await?;
        }
        Ok(())
    }

    /// `POST /impersonate`: finds or creates the end user `username` of the caller's tenant
    /// and issues a token for it.
    ///
    /// # Errors
    /// `Forbidden` (`MISSING_PERMISSION` without `tenant.all`) unless the caller is a tenant
    /// administrator of a tenant; `Validation`.
    pub async fn impersonate(&self, actor: &Actor, body: &Value) -> ServiceResult<IssuedToken> {
        actor.require(Permission::TenantAll)?;
        let username = parse_impersonation(body).map_err(ServiceError::Validation)?;
        let Some(tenant) = actor.tenant.filter(|_| actor.permissions.grants(Permission::TenantAll)) else {
            return Err(ServiceError::Forbidden(
                "Only tenant administrators of a tenant can impersonate.".into(),
            ));
        };
        let user = match self.users.find_end_user(tenant, &username).await? {
            Some(user) => user,
            None => {
                let now = self.clock.now();
                let user = User {
                    id: UserId::new(),
                    username: username.clone(),
                    firstname: None,
                    lastname: None,
                    status: UserStatus::Active,
                    tenant: Some(tenant),
                    permissions: Permission::END_USER.to_vec(),
                    can_login: false,
                    created_at: now,
                    updated_at: now,
                };
                let event = Event::user_event(names::USER_CREATED, user.id, now);
                match self.users.insert(&NewUser { user: user.clone(), password_hash: None }, &[event]).await
                {
                    Ok(()) => user,
                    // Created concurrently by another request: use that one.
                    Err(PortError::Duplicate(_)) => {
                        self.users.find_end_user(tenant, &username).await?.ok_or_else(|| {
                            ServiceError::Conflict("The end user is being created; retry.".into())
                        })?
                    }
                    Err(e) => return Err(e.into()),
                }
            }
        };
        if user.status != UserStatus::Active {
            return Err(ServiceError::Forbidden("The end user's account is not active.".into()));
        }
        self.issue(user.id).await
    }

    /// Creates the first admin when no user exists; `password` `None` generates one.
    ///
    /// # Errors
    /// Storage and hashing failures.
    pub async fn ensure_first_admin(
        &self,
        username: &str,
        password: Option<&str>,
    ) -> ServiceResult<FirstAdmin> {
        if self.users.count().await? > 0 {
            return Ok(FirstAdmin::AlreadyPresent);
        }
        let generated = password.is_none().then(|| self.minter.mint().chars().take(24).collect::<String>());
        let clear = password.map(String::from).or_else(|| generated.clone()).unwrap_or_default();
        let now = self.clock.now();
        let user = User {
            id: UserId::new(),
            username: username.into(),
            firstname: None,
            lastname: None,
            status: UserStatus::Active,
            tenant: None,
            permissions: vec![Permission::All],
            can_login: true,
            created_at: now,
            updated_at: now,
        };
        let hash = self.hasher.hash(&clear).await?;
        let event = Event::user_event(names::USER_CREATED, user.id, now);
        match self.users.insert(&NewUser { user, password_hash: Some(hash) }, &[event]).await {
            Ok(()) => {}
            Err(PortError::Duplicate(_)) => return Ok(FirstAdmin::AlreadyPresent),
            Err(e) => return Err(e.into()),
        }
        Ok(match generated {
            Some(password) => FirstAdmin::CreatedWithPassword { username: username.into(), password },
            None => FirstAdmin::Created { username: username.into() },
        })
    }
}
