//! Organization API keys as a second kind of principal. A key is `gk_` + 43 characters
//! of base64url (256 random bits); only its SHA-256 is stored. A request's key is hashed
//! and looked up in a small cache (30 s), else in the database (which also marks it
//! used); a revoked key's id goes through the same revocation list as a stopped
//! session (NOTIFY across instances), and the cache forgets an entry before that list
//! does, so a revocation is never undone by a stale cache entry.

use std::sync::Arc;

use aws_lc_rs::digest;
use dashmap::DashMap;

use super::context::{AuthObject, SignedOutReason};
use crate::db::{Db, api_keys};

/// The prefix that marks a bearer token as an API key.
pub const PREFIX: &str = "gk_";
/// How long a looked-up key is trusted without the database (well under the revocation
/// list's window: session token lifetime + skew).
pub const CACHE_TTL_MS: i64 = 30_000;
const MAX_CACHED_KEYS: usize = 4_096;

/// A new secret: `gk_` + 256 random bits, base64url.
pub fn new_secret() -> String {
    format!("{PREFIX}{}", crate::ids::random_token(32))
}

/// What is stored of a secret: its SHA-256, hex.
pub fn hash(secret: &str) -> String {
    crate::ids::hex(&digest_of(secret))
}

fn digest_of(secret: &str) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(digest::digest(&digest::SHA256, secret.as_bytes()).as_ref());
    out
}

#[derive(Default)]
pub struct ApiKeyCache {
    /// By the secret's digest (no allocation on a hit).
    entries: DashMap<[u8; 32], (Arc<AuthObject>, i64), foldhash::fast::RandomState>,
}

impl ApiKeyCache {
    /// The key's auth object, or why not. The lookup is by hash (an index probe, or a map
    /// lookup keyed by the hash): the secret is never compared byte by byte.
    pub async fn authenticate(&self, db: &Db, secret: &str, now_ms: i64) -> Result<Arc<AuthObject>, SignedOutReason> {
        if secret.len() > 128 || !secret.starts_with(PREFIX) {
            return Err(SignedOutReason::InvalidApiKey);
        }
        let digest = digest_of(secret);
        if let Some(entry) = self.entries.get(&digest)
            && now_ms - entry.1 < CACHE_TTL_MS
            && entry.0.expires_at > now_ms / 1000
        {
            return Ok(entry.0.clone());
        }
        // Boxed: the query's future is large, and a cache hit should not carry its size.
        let key = match Box::pin(api_keys::authenticate(&db.pool, &crate::ids::hex(&digest), now_ms)).await {
            Ok(Some(key)) => key,
            Ok(None) => {
                self.entries.remove(&digest);
                return Err(SignedOutReason::InvalidApiKey);
            }
            Err(e) => {
                tracing::warn!(error = %e, "could not look an API key up");
                return Err(SignedOutReason::Unavailable);
            }
        };
        let auth = Arc::new(AuthObject::from_api_key(&key, now_ms / 1000));
        if self.entries.len() >= MAX_CACHED_KEYS {
            self.entries.retain(|_, entry| now_ms - entry.1 < CACHE_TTL_MS);
        }
        if self.entries.len() < MAX_CACHED_KEYS {
            self.entries.insert(digest, (auth.clone(), now_ms));
        }
        Ok(auth)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_long_prefixed_and_hashed() {
        let secret = new_secret();
        assert!(secret.starts_with("gk_") && secret.len() >= 40, "{secret}");
        assert_ne!(new_secret(), secret);
        assert_eq!(hash(&secret).len(), 64);
        assert_eq!(
            hash("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
