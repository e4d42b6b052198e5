//! Argon2id password hashing. Hashing is deliberately slow and memory-hard, so every call runs
//! on tokio's blocking pool (never stalling the async worker threads), at most one per CPU at
//! once, on memory reused from one hash to the next (see [`crate::slots`]).

use crate::slots::HashingSlots;
use anyhow::Context;
use argon2::password_hash::{Output, ParamsString, PasswordHash, Salt, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use async_trait::async_trait;
use flow_domain::ports::PasswordHasher;
use rand::TryRngCore;
use rand::rngs::OsRng;
use std::sync::Arc;

/// Hashes passwords with Argon2id into PHC strings (`$argon2id$v=19$m=...`).
///
/// Verification reads the parameters from the stored hash, so hashes made with other
/// parameters (for example older defaults) still verify. Clones share one set of hashing
/// slots: at most [`Argon2Hasher::concurrency`] hashes run at once, and the process keeps
/// about that many times the memory cost for hashing, however many requests arrive.
#[derive(Debug, Clone)]
pub struct Argon2Hasher {
    params: Params,
    slots: Arc<HashingSlots>,
}

impl Argon2Hasher {
    /// A hasher with the given Argon2 cost parameters, running as many hashes at once as
    /// there are CPUs.
    pub fn new(params: Params) -> Self {
        let cpus = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
        Self::with_concurrency(params, cpus)
    }

    /// A hasher with the given Argon2 cost parameters, running at most `concurrency` hashes
    /// (at least one) at once.
    pub fn with_concurrency(params: Params, concurrency: usize) -> Self {
        let slots = Arc::new(HashingSlots::new(concurrency, params.block_count()));
        Self { params, slots }
    }

    /// A hasher with `memory_kib` of memory and `iterations` passes on one lane.
    ///
    /// # Errors
    /// Costs outside what Argon2 accepts (memory below 8 KiB, zero iterations).
    pub fn with_cost(memory_kib: u32, iterations: u32) -> anyhow::Result<Self> {
        let params = Params::new(memory_kib, iterations, Params::MIN_P_COST, None)
            .map_err(|e| anyhow::anyhow!("invalid Argon2 cost: {e}"))?;
        Ok(Self::new(params))
    }

    /// A hasher with the smallest costs Argon2 allows: fast, for tests only.
    pub fn for_tests() -> Self {
        // 8 KiB, one pass, one lane: always valid, so the fallback is never used.
        let params =
            Params::new(Params::MIN_M_COST, Params::MIN_T_COST, Params::MIN_P_COST, None).unwrap_or_default();
        Self::new(params)
    }

    /// How many hashes run at once at most.
    pub fn concurrency(&self) -> usize {
        self.slots.concurrency()
    }
}

impl Default for Argon2Hasher {
    /// The argon2 crate's recommended defaults (19 MiB, 2 passes, 1 lane).
    fn default() -> Self {
        Self::new(Params::default())
    }
}

/// Fresh random salt bytes of the recommended length, from the operating system's generator.
fn new_salt() -> anyhow::Result<[u8; Salt::RECOMMENDED_LENGTH]> {
    let mut bytes = [0u8; Salt::RECOMMENDED_LENGTH];
    OsRng.try_fill_bytes(&mut bytes).context("the OS random generator failed")?;
    Ok(bytes)
}

/// The PHC string of `password` hashed with Argon2id, `params` and `salt`, on `memory`.
fn hash_with(password: &[u8], params: &Params, salt: &[u8], memory: &mut [Block]) -> anyhow::Result<String> {
    let output_len = params.output_len().unwrap_or(Params::DEFAULT_OUTPUT_LEN);
    let mut out = vec![0u8; output_len];
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone())
        .hash_password_into_with_memory(password, salt, &mut out, memory)
        .map_err(|e| anyhow::anyhow!("password hashing failed: {e}"))?;
    let salt = SaltString::encode_b64(salt).map_err(|e| anyhow::anyhow!("cannot encode salt: {e}"))?;
    let phc = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(params).map_err(|e| anyhow::anyhow!("cannot encode params: {e}"))?,
        salt: Some(salt.as_salt()),
        hash: Some(Output::new(&out).map_err(|e| anyhow::anyhow!("cannot encode hash: {e}"))?),
    };
    Ok(phc.to_string())
}

/// A stored hash taken apart: what recomputing it needs, and the output to compare with.
struct Stored {
    argon2: Argon2<'static>,
    blocks: usize,
    salt: Vec<u8>,
    expected: Output,
}

impl Stored {
    /// `None` when `hash` is not a well-formed Argon2 PHC string (a malformed hash never
    /// verifies).
    fn parse(hash: &str) -> Option<Self> {
        let parsed = PasswordHash::new(hash).ok()?;
        let algorithm = Algorithm::try_from(parsed.algorithm).ok()?;
        let version = parsed.version.map(Version::try_from).transpose().ok()?.unwrap_or_default();
        let params = Params::try_from(&parsed).ok()?;
        let (salt, expected) = (parsed.salt?, parsed.hash?);
        let mut buf = [0u8; Salt::MAX_LENGTH];
        let salt = salt.decode_b64(&mut buf).ok()?.to_vec();
        let blocks = params.block_count();
        Some(Self { argon2: Argon2::new(algorithm, version, params), blocks, salt, expected })
    }

    /// Whether `password` gives the stored output (compared in constant time).
    fn matches(&self, password: &[u8], memory: &mut [Block]) -> bool {
        let mut out = vec![0u8; self.expected.len()];
        self.argon2.hash_password_into_with_memory(password, &self.salt, &mut out, memory).is_ok()
            && Output::new(&out).is_ok_and(|computed| computed == self.expected)
    }
}

#[async_trait]
impl PasswordHasher for Argon2Hasher {
    async fn hash(&self, password: &str) -> anyhow::Result<String> {
        let params = self.params.clone();
        let password = password.to_owned();
        let salt = new_salt()?;
        self.slots
            .run(params.block_count(), move |memory| hash_with(password.as_bytes(), &params, &salt, memory))
            .await?
    }

    async fn verify(&self, password: &str, hash: &str) -> anyhow::Result<bool> {
        let Some(stored) = Stored::parse(hash) else { return Ok(false) };
        let password = password.to_owned();
        self.slots.run(stored.blocks, move |memory| stored.matches(password.as_bytes(), memory)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use argon2::PasswordVerifier as _;

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
        // A stored hash costing more memory than this hasher's slots still verifies.
        let costly =
            Argon2Hasher::new(Params::new(64, 1, 1, None).expect("params")).hash("pw").await.expect("hash");
        assert!(cheap.verify("pw", &costly).await.expect("verify"));
        assert!(!cheap.verify("other", &costly).await.expect("verify"));
    }

    #[tokio::test]
    async fn agrees_with_the_argon2_crate_both_ways() {
        let params = Params::new(64, 2, 1, None).expect("params");
        let ours = Argon2Hasher::new(params.clone());
        let reference = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
        let hash = ours.hash("pw").await.expect("hash");
        let parsed = PasswordHash::new(&hash).expect("PHC string");
        assert!(reference.verify_password(b"pw", &parsed).is_ok(), "the crate verifies ours");
        let salt = SaltString::encode_b64(&[7u8; 16]).expect("salt");
        let theirs =
            argon2::PasswordHasher::hash_password(&reference, b"pw", &salt).expect("hash").to_string();
        assert!(ours.verify("pw", &theirs).await.expect("verify"), "we verify the crate's");
        assert!(!ours.verify("pw!", &theirs).await.expect("verify"));
        // Argon2i and Argon2d hashes verify too, as before.
        let argon2i =
            Argon2::new(Algorithm::Argon2i, Version::V0x13, Params::new(64, 2, 1, None).expect("params"));
        let theirs = argon2::PasswordHasher::hash_password(&argon2i, b"pw", &salt).expect("hash").to_string();
        assert!(ours.verify("pw", &theirs).await.expect("verify"));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_hashing_is_bounded_and_reuses_memory() {
        // 256 KiB per hash: slow enough that 32 concurrent calls overlap.
        let hasher = Argon2Hasher::with_concurrency(Params::new(256, 2, 1, None).expect("params"), 2);
        assert_eq!(hasher.concurrency(), 2);
        let calls = (0..32).map(|i| {
            let hasher = hasher.clone();
            tokio::spawn(async move {
                let password = format!("pw{i}");
                let hash = hasher.hash(&password).await.expect("hash");
                assert!(hasher.verify(&password, &hash).await.expect("verify"));
            })
        });
        for call in calls.collect::<Vec<_>>() {
            call.await.expect("call");
        }
        let allocated = hasher.slots.allocated();
        assert!((1..=2).contains(&allocated), "64 hashes on at most 2 memory blocks, got {allocated}");
        assert_eq!(hasher.slots.idle_permits(), 2, "every slot given back");
    }
}
