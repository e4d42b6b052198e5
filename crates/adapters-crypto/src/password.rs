//! Argon2id password hashing. Hashing is deliberately slow, so every call runs on tokio's
//! blocking pool and never stalls the async worker threads.

use anyhow::Context;
use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, Salt, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use async_trait::async_trait;
use flow_domain::ports::PasswordHasher;
use rand::TryRngCore;
use rand::rngs::OsRng;

/// Hashes passwords with Argon2id into PHC strings (`$argon2id$v=19$m=...`).
///
/// Verification reads the parameters from the stored hash, so hashes made with other
/// parameters (for example older defaults) still verify.
#[derive(Debug, Clone)]
pub struct Argon2Hasher {
    params: Params,
}

impl Argon2Hasher {
    /// A hasher with the given Argon2 cost parameters.
    pub fn new(params: Params) -> Self {
        Self { params }
    }

    /// A hasher with `memory_kib` of memory and `iterations` passes on one lane.
    ///
    /// # Errors
    /// Costs outside what Argon2 accepts (memory below 8 KiB, zero iterations).
    pub fn with_cost(memory_kib: u32, iterations: u32) -> anyhow::Result<Self> {
        let params = Params::new(memory_kib, iterations, Params::MIN_P_COST, None)
            .map_err(|e| anyhow::anyhow!("invalid Argon2 cost: {e}"))?;
        Ok(Self { params })
    }

    /// A hasher with the smallest costs Argon2 allows: fast, for tests only.
    pub fn for_tests() -> Self {
        // 8 KiB, one pass, one lane: always valid, so the fallback is never used.
        let params =
            Params::new(Params::MIN_M_COST, Params::MIN_T_COST, Params::MIN_P_COST, None).unwrap_or_default();
        Self { params }
    }

    fn argon2(&self) -> Argon2<'static> {
        Argon2::new(Algorithm::Argon2id, Version::V0x13, self.params.clone())
    }
}

impl Default for Argon2Hasher {
    /// The argon2 crate's recommended defaults (19 MiB, 2 passes, 1 lane).
    fn default() -> Self {
        Self::new(Params::default())
    }
}

/// A fresh random salt of the recommended length, from the operating system's generator.
fn new_salt() -> anyhow::Result<SaltString> {
    let mut bytes = [0u8; Salt::RECOMMENDED_LENGTH];
    OsRng.try_fill_bytes(&mut bytes).context("the OS random generator failed")?;
    SaltString::encode_b64(&bytes).map_err(|e| anyhow::anyhow!("cannot encode salt: {e}"))
}

#[async_trait]
impl PasswordHasher for Argon2Hasher {
    async fn hash(&self, password: &str) -> anyhow::Result<String> {
        let argon2 = self.argon2();
        let password = password.to_owned();
        tokio::task::spawn_blocking(move || {
            let salt = new_salt()?;
            argon2
                .hash_password(password.as_bytes(), &salt)
                .map(|hash| hash.to_string())
                .map_err(|e| anyhow::anyhow!("password hashing failed: {e}"))
        })
        .await
        .context("password hashing task failed")?
    }

    async fn verify(&self, password: &str, hash: &str) -> anyhow::Result<bool> {
        let argon2 = self.argon2();
        let password = password.to_owned();
        let hash = hash.to_owned();
        tokio::task::spawn_blocking(move || match PasswordHash::new(&hash) {
            Ok(parsed) => argon2.verify_password(password.as_bytes(), &parsed).is_ok(),
            Err(_) => false,
        })
        .await
        .context("password verification task failed")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_and_verifies() {
        let hasher = Argon2Hasher::for_tests();
        let hash = hasher.hash("correct horse").await.expect("hash");
        assert!(hash.starts_with("$argon2id$v=19$"), "{hash}");
        assert!(hasher.verify("correct horse", &hash).await.expect("verify"));
        assert!(!hasher.verify("wrong horse", &hash).await.expect("verify"));
    }

    #[tokio::test]
    async fn salts_differ_between_hashes() {
        let hasher = Argon2Hasher::for_tests();
        let a = hasher.hash("same").await.expect("hash");
        let b = hasher.hash("same").await.expect("hash");
        assert_ne!(a, b);
    }

    #[tokio::test]
    async fn malformed_hash_is_false_not_error() {
        let hasher = Argon2Hasher::for_tests();
        for bad in ["", "not a hash", "$argon2id$v=19$m=8,t=1,p=1$broken", "$2b$12$abcdefghijklmnopqrstuv"] {
            assert!(!hasher.verify("pw", bad).await.expect("verify"), "{bad:?}");
        }
    }

    #[tokio::test]
    async fn verifies_hashes_made_with_other_parameters() {
        let cheap = Argon2Hasher::for_tests();
        let hash = cheap.hash("pw").await.expect("hash");
        let other = Argon2Hasher::new(Params::new(16, 2, 1, None).expect("params"));
        assert!(other.verify("pw", &hash).await.expect("verify"));
    }
}
