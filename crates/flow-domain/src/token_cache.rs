//! A read-through cache of bearer-token lookups, so an authenticated request does not read the
//! token and its user from storage every time.
//!
//! One [`TokenCache`] gives two views, which every part of the process must use:
//! - [`TokenCache::tokens`], a [`TokenRepository`]: `find_valid` answers from the cache (entries
//!   live at most the configured time to live, and a token is never answered past its own
//!   expiry); extending or revoking a token forgets it;
//! - [`TokenCache::users`], a [`UserRepository`]: passes everything through, and forgets every
//!   cached token when a user is saved or deleted (status, permissions, tenant or password may
//!   have changed; user writes are rare).
//!
//! So a logout, a disabled account, a changed password (which revokes the user's other tokens
//! in storage) or a changed permission is seen by the next request to this process. Another process (several `api` processes on one database) sees it once the entry
//! expires: the time to live bounds how long a revoked token can still be used there. A read
//! that races a write never caches what it read before the write (a generation counter). Unknown
//! tokens are never cached.

use crate::error::PortError;
use crate::event::Event;
use crate::expiring::ExpiringMap;
use crate::ids::{TenantId, TokenId, UserId};
use crate::model::{AccessToken, NewUser, TokenRevocation, User};
use crate::ports::{TokenRepository, UserRepository};
use crate::query::{Page, UserQuery};
use crate::time::Clock;
use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use std::sync::Arc;

/// The most tokens kept; when full, the cache starts over (a bound, not an eviction policy).
pub const MAX_CACHED_TOKENS: usize = 10_000;

/// The shared state of both views.
struct Shared {
    tokens: Arc<dyn TokenRepository>,
    users: Arc<dyn UserRepository>,
    /// Lookups by token hash.
    lookups: ExpiringMap<String, (AccessToken, User)>,
}

/// A cache of token lookups over `tokens` and `users`; see the module documentation.
#[derive(Clone)]
pub struct TokenCache {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for TokenCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenCache").field("ttl", &self.shared.lookups.ttl()).finish_non_exhaustive()
    }
}

impl TokenCache {
    /// A cache keeping each lookup at most `ttl` (zero: nothing is cached).
    pub fn new(
        tokens: Arc<dyn TokenRepository>,
        users: Arc<dyn UserRepository>,
        clock: Arc<dyn Clock>,
        ttl: Duration,
    ) -> Self {
        let shared = Shared { tokens, users, lookups: ExpiringMap::new(clock, ttl, MAX_CACHED_TOKENS) };
        Self { shared: Arc::new(shared) }
    }

    /// The tokens, with cached lookups.
    pub fn tokens(&self) -> Arc<dyn TokenRepository> {
        Arc::new(TokensView(Arc::clone(&self.shared)))
    }

    /// The users; every write through this view empties the cache.
    pub fn users(&self) -> Arc<dyn UserRepository> {
        Arc::new(UsersView(Arc::clone(&self.shared)))
    }

    /// How many lookups are cached now (expired ones included until replaced).
    pub fn len(&self) -> usize {
        self.shared.lookups.len()
    }

    /// Whether nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Shared {
    async fn find_valid(
        &self,
        hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<(AccessToken, User)>, PortError> {
        let unexpired = |(token, _): &(AccessToken, User)| token.expires_at > now;
        self.lookups.read_through(hash, unexpired, || self.tokens.find_valid(hash, now)).await
    }

    fn forget_token(&self, id: TokenId) {
        self.lookups.forget_where(|_, (token, _)| token.id == id);
    }

    fn forget_all(&self) {
        self.lookups.forget_where(|_, _| true);
    }
}

/// The tokens view.
struct TokensView(Arc<Shared>);

#[async_trait]
impl TokenRepository for TokensView {
    async fn insert(&self, token: &AccessToken) -> Result<(), PortError> {
        self.0.tokens.insert(token).await
    }

    async fn find_valid(
        &self,
        hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<(AccessToken, User)>, PortError> {
        self.0.find_valid(hash, now).await
    }

    async fn extend(&self, id: TokenId, expires_at: DateTime<Utc>) -> Result<(), PortError> {
        // Forgotten whatever the outcome: a failed write may still have been applied.
        let extended = self.0.tokens.extend(id, expires_at).await;
        self.0.forget_token(id);
        extended
    }

    async fn revoke(&self, id: TokenId) -> Result<(), PortError> {
        let revoked = self.0.tokens.revoke(id).await;
        self.0.forget_token(id);
        revoked
    }
}

/// The users view.
struct UsersView(Arc<Shared>);

#[async_trait]
impl UserRepository for UsersView {
    async fn insert(&self, user: &NewUser, events: &[Event]) -> Result<(), PortError> {
        self.0.users.insert(user, events).await
    }

    async fn get(&self, id: UserId) -> Result<Option<User>, PortError> {
        self.0.users.get(id).await
    }

    async fn find_login(&self, username: &str) -> Result<Option<(User, Option<String>)>, PortError> {
        self.0.users.find_login(username).await
    }

    async fn find_end_user(&self, tenant: TenantId, username: &str) -> Result<Option<User>, PortError> {
        self.0.users.find_end_user(tenant, username).await
    }

    async fn list(&self, query: &UserQuery) -> Result<Page<User>, PortError> {
        self.0.users.list(query).await
    }

    async fn save(
        &self,
        user: &User,
        password_hash: Option<String>,
        revocation: TokenRevocation,
        events: &[Event],
    ) -> Result<(), PortError> {
        let saved = self.0.users.save(user, password_hash, revocation, events).await;
        self.0.forget_all();
        saved
    }

    async fn delete(&self, id: UserId, events: &[Event]) -> Result<(), PortError> {
        let deleted = self.0.users.delete(id, events).await;
        self.0.forget_all();
        deleted
    }

    async fn count(&self) -> Result<u64, PortError> {
        self.0.users.count().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::UserStatus;
    use crate::permission::Permission;
    use crate::ports::{MockTokenRepository, MockUserRepository};
    use crate::time::ManualClock;
    use futures::executor::block_on;

    fn user() -> User {
        let now = Utc::now();
        User {
            id: UserId::new(),
            username: "ada".into(),
            firstname: None,
            lastname: None,
            status: UserStatus::Active,
            tenant: None,
            permissions: vec![Permission::All],
            can_login: true,
            created_at: now,
            updated_at: now,
        }
    }

    fn token(user: &User, expires_at: DateTime<Utc>) -> AccessToken {
        AccessToken {
            id: TokenId::new(),
            user_id: user.id,
            hash: "h".into(),
            created_at: Utc::now(),
            expires_at,
        }
    }

    fn cache(tokens: MockTokenRepository, users: MockUserRepository, clock: &Arc<ManualClock>) -> TokenCache {
        TokenCache::new(Arc::new(tokens), Arc::new(users), clock.clone(), Duration::seconds(1))
    }

    #[test]
    fn looks_up_once_within_the_time_to_live_then_again() {
        let clock = Arc::new(ManualClock::new(Utc::now()));
        let user = user();
        let stored = token(&user, clock.now() + Duration::hours(1));
        let mut tokens = MockTokenRepository::new();
        tokens.expect_find_valid().times(2).returning(move |_, _| Ok(Some((stored.clone(), user.clone()))));
        let cache = cache(tokens, MockUserRepository::new(), &clock);
        let view = cache.tokens();
        for _ in 0..3 {
            assert!(block_on(view.find_valid("h", clock.now())).unwrap().is_some());
        }
        clock.advance(Duration::milliseconds(1_001));
        assert!(block_on(view.find_valid("h", clock.now())).unwrap().is_some());
        assert_eq!(cache.len(), 1);
    }

    #[test]
    fn a_cached_token_is_never_answered_past_its_own_expiry() {
        let clock = Arc::new(ManualClock::new(Utc::now()));
        let user = user();
        let stored = token(&user, clock.now() + Duration::milliseconds(500));
        let mut tokens = MockTokenRepository::new();
        let mut calls = 0;
        tokens.expect_find_valid().times(2).returning(move |_, _| {
            calls += 1;
            Ok((calls == 1).then(|| (stored.clone(), user.clone())))
        });
        let cache = cache(tokens, MockUserRepository::new(), &clock);
        let view = cache.tokens();
        assert!(block_on(view.find_valid("h", clock.now())).unwrap().is_some());
        clock.advance(Duration::milliseconds(600));
        assert!(block_on(view.find_valid("h", clock.now())).unwrap().is_none());
    }

    #[test]
    fn revoking_or_extending_forgets_the_token() {
        let clock = Arc::new(ManualClock::new(Utc::now()));
        let user = user();
        let stored = token(&user, clock.now() + Duration::hours(1));
        let id = stored.id;
        let mut tokens = MockTokenRepository::new();
        let mut calls = 0;
        tokens.expect_find_valid().times(3).returning(move |_, _| {
            calls += 1;
            Ok((calls < 3).then(|| (stored.clone(), user.clone())))
        });
        tokens.expect_extend().times(1).returning(|_, _| Ok(()));
        tokens.expect_revoke().times(1).returning(|_| Ok(()));
        let cache = cache(tokens, MockUserRepository::new(), &clock);
        let view = cache.tokens();
        assert!(block_on(view.find_valid("h", clock.now())).unwrap().is_some());
        block_on(view.extend(id, clock.now() + Duration::hours(2))).unwrap();
        assert!(cache.is_empty());
        assert!(block_on(view.find_valid("h", clock.now())).unwrap().is_some());
        block_on(view.revoke(id)).unwrap();
        assert!(block_on(view.find_valid("h", clock.now())).unwrap().is_none());
    }

    #[test]
    fn a_user_write_forgets_every_token_and_unknown_tokens_are_not_cached() {
        let clock = Arc::new(ManualClock::new(Utc::now()));
        let user = user();
        let stored = token(&user, clock.now() + Duration::hours(1));
        let (found_user, saved_user) = (user.clone(), user.clone());
        let mut tokens = MockTokenRepository::new();
        tokens
            .expect_find_valid()
            .returning(move |hash, _| Ok((hash == "h").then(|| (stored.clone(), found_user.clone()))));
        let mut users = MockUserRepository::new();
        users.expect_save().times(1).returning(|_, _, _, _| Ok(()));
        let cache = cache(tokens, users, &clock);
        assert!(block_on(cache.tokens().find_valid("h", clock.now())).unwrap().is_some());
        assert!(block_on(cache.tokens().find_valid("unknown", clock.now())).unwrap().is_none());
        assert_eq!(cache.len(), 1);
        block_on(cache.users().save(&saved_user, None, TokenRevocation::KeepAll, &[])).unwrap();
        assert!(cache.is_empty());
    }
}
