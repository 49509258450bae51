//! Secrets: officers' passwords (argon2id) and bearer tokens for officers and devices.
//!
//! Tokens are 256 random bits, base64url, with a readable prefix (`gwo_` officer session,
//! `gwd_` device). Only their SHA-256 is stored: a token is high-entropy, so a fast hash is
//! enough and a stolen database yields no usable token. Password hashing is deliberately slow,
//! so it runs on the blocking pool, never on the async workers.

use argon2::password_hash::{
    rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString,
};
use argon2::Argon2;
use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};

/// Prefix of officer session tokens.
pub const OFFICER_TOKEN_PREFIX: &str = "gwo_";
/// Prefix of device tokens.
pub const DEVICE_TOKEN_PREFIX: &str = "gwd_";

#[derive(Debug, thiserror::Error)]
pub enum CredentialError {
    #[error("password hashing failed: {0}")]
    Hash(String),
    #[error("the hashing task failed")]
    Task(#[from] tokio::task::JoinError),
}

/// A fresh token with the given prefix, and the hash to store.
pub fn new_token(prefix: &str) -> (String, Vec<u8>) {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    let token = format!(
        "{prefix}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    );
    let hash = hash_token(&token);
    (token, hash)
}

/// The stored form of a token.
pub fn hash_token(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

/// Hashes a password with argon2id and a random salt (PHC string).
pub async fn hash_password(password: String) -> Result<String, CredentialError> {
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut OsRng);
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|hash| hash.to_string())
            .map_err(|e| CredentialError::Hash(e.to_string()))
    })
    .await?
}

/// A hash of a random password nobody knows, verified against when the username is unknown so
/// that the reply takes as long as for a known one.
fn dummy_hash() -> &'static str {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY.get_or_init(|| {
        let (secret, _) = new_token("");
        let salt = SaltString::generate(&mut OsRng);
        Argon2::default()
            .hash_password(secret.as_bytes(), &salt)
            .map(|hash| hash.to_string())
            .unwrap_or_default()
    })
}

/// Checks a password against a stored PHC hash (constant-time inside argon2). With no stored
/// hash, spends the same time and answers false.
pub async fn verify_password(
    password: String,
    stored: Option<String>,
) -> Result<bool, CredentialError> {
    tokio::task::spawn_blocking(move || {
        let known = stored.is_some();
        let stored = stored.unwrap_or_else(|| dummy_hash().to_owned());
        let parsed =
            PasswordHash::new(&stored).map_err(|e| CredentialError::Hash(e.to_string()))?;
        let matches = Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok();
        Ok(known && matches)
    })
    .await?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_prefixed_unique_and_hashed() {
        let (a, hash_a) = new_token(DEVICE_TOKEN_PREFIX);
        let (b, _) = new_token(DEVICE_TOKEN_PREFIX);
        assert!(a.starts_with("gwd_"));
        assert_ne!(a, b);
        assert_eq!(hash_token(&a), hash_a);
        assert_eq!(hash_a.len(), 32);
    }

    #[tokio::test]
    async fn a_password_verifies_against_its_hash_and_nothing_else() {
        let hash = hash_password("correct horse".into()).await.unwrap();
        assert!(verify_password("correct horse".into(), Some(hash.clone()))
            .await
            .unwrap());
        assert!(!verify_password("wrong horse".into(), Some(hash))
            .await
            .unwrap());
        assert!(!verify_password("anything".into(), None).await.unwrap());
    }
}
