//! Credentials ports: password hashing and bearer-token minting.

use async_trait::async_trait;

/// Hashes and verifies passwords (Argon2id in production, off the async worker threads).
#[cfg_attr(any(test, feature = "mock"), mockall::automock)]
#[async_trait]
pub trait PasswordHasher: Send + Sync {
    /// A PHC string for `password`.
    ///
    /// # Errors
    /// Hashing failures.
    async fn hash(&self, password: &str) -> anyhow::Result<String>;

    /// Whether `password` matches `hash`; a malformed hash is `false`, not an error.
    ///
    /// # Errors
    /// Only when the work cannot be run.
    async fn verify(&self, password: &str, hash: &str) -> anyhow::Result<bool>;
}

/// Mints opaque bearer tokens and hashes them for storage.
#[cfg_attr(any(test, feature = "mock"), mockall::automock)]
pub trait TokenMinter: Send + Sync {
    /// A new random token of at least 256 bits, URL-safe.
    fn mint(&self) -> String;
    /// The storage hash of `token` (hex SHA-256); equal tokens give equal hashes.
    fn hash(&self, token: &str) -> String;
}
