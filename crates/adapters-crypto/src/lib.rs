//! Credentials adapters for FlowMate: Argon2id password hashing run off the async worker threads
//! ([`Argon2Hasher`]) and random opaque bearer tokens stored as SHA-256 hashes
//! ([`RandomTokenMinter`]).

mod password;
mod slots;
mod token;

pub use password::Argon2Hasher;
pub use token::RandomTokenMinter;
