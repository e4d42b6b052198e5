//! Opaque bearer tokens: 256 random bits from the OS, base64url without padding; stored only as
//! their hex SHA-256 hash.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use flow_domain::ports::TokenMinter;
use rand::rngs::OsRng;
use rand::{RngCore as _, TryRngCore as _};
use sha2::{Digest as _, Sha256};

/// Bytes of randomness in a token (256 bits).
const TOKEN_BYTES: usize = 32;

/// Mints random bearer tokens and hashes them for storage.
#[derive(Debug, Clone, Copy, Default)]
pub struct RandomTokenMinter;

impl RandomTokenMinter {
    /// A minter.
    pub fn new() -> Self {
        Self
    }
}

impl TokenMinter for RandomTokenMinter {
    /// 32 bytes from the OS generator, base64url without padding (43 characters). Should the OS
    /// generator fail, the thread-local CSPRNG (seeded from the OS) is used instead.
    fn mint(&self) -> String {
        let mut bytes = [0u8; TOKEN_BYTES];
        if OsRng.try_fill_bytes(&mut bytes).is_err() {
            rand::rng().fill_bytes(&mut bytes);
        }
        URL_SAFE_NO_PAD.encode(bytes)
    }

    fn hash(&self, token: &str) -> String {
        let digest = Sha256::digest(token.as_bytes());
        digest.iter().map(|b| format!("{b:02x}")).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn tokens_are_random_url_safe_and_256_bits() {
        let minter = RandomTokenMinter::new();
        let tokens: HashSet<String> = (0..100).map(|_| minter.mint()).collect();
        assert_eq!(tokens.len(), 100);
        for token in &tokens {
            assert_eq!(token.len(), 43);
            assert!(token.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
            assert_eq!(URL_SAFE_NO_PAD.decode(token).expect("base64url").len(), TOKEN_BYTES);
        }
    }

    #[test]
    fn hash_is_hex_sha256_and_stable() {
        let minter = RandomTokenMinter::new();
        assert_eq!(minter.hash("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        let token = minter.mint();
        assert_eq!(minter.hash(&token), minter.hash(&token));
        assert_ne!(minter.hash(&token), minter.hash(&minter.mint()));
    }
}
