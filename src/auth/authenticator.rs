//! Turns a bearer token into an [`AuthObject`]: our own session tokens, and (when
//! configured) a Clerk instance's, through a cache of verified tokens.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use aws_lc_rs::digest;

use super::clerk::{ClerkError, ClerkVerifier};
use super::context::{AuthObject, SignedOutReason};
use super::tokens::{CLOCK_SKEW_SECS, SessionTokenVerifier, UnverifiedToken};

const MAX_CACHED_TOKENS: usize = 50_000;

/// Verified tokens by SHA-256 of the token: a token's signature is checked once, and
/// later requests with it cost a hash and a lookup. Entries die at `exp`; the map is
/// bounded (expired entries are swept when it fills, and it is cleared if still full).
#[derive(Default)]
pub struct VerifiedTokenCache {
    entries: RwLock<HashMap<[u8; 32], Arc<AuthObject>>>,
}

impl VerifiedTokenCache {
    fn key(token: &str) -> [u8; 32] {
        let hash = digest::digest(&digest::SHA256, token.as_bytes());
        let mut key = [0u8; 32];
        key.copy_from_slice(hash.as_ref());
        key
    }

    fn get(&self, key: &[u8; 32], now: i64) -> Option<Arc<AuthObject>> {
        let entries = self.entries.read().expect("token cache lock");
        entries
            .get(key)
            .filter(|auth| auth.expires_at + CLOCK_SKEW_SECS > now)
            .cloned()
    }

    fn insert(&self, key: [u8; 32], auth: Arc<AuthObject>, now: i64) {
        let mut entries = self.entries.write().expect("token cache lock");
        if entries.len() >= MAX_CACHED_TOKENS {
            entries.retain(|_, a| a.expires_at + CLOCK_SKEW_SECS > now);
            if entries.len() >= MAX_CACHED_TOKENS {
                entries.clear();
            }
        }
        entries.insert(key, auth);
    }

    pub fn len(&self) -> usize {
        self.entries.read().expect("token cache lock").len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Turns a bearer token into an [`AuthObject`], through the cache: our own session
/// tokens, and (when configured) a Clerk instance's, by the issuer they claim.
pub struct Authenticator {
    verifier: SessionTokenVerifier,
    clerk: Option<ClerkVerifier>,
    cache: VerifiedTokenCache,
    max_token_age: Option<i64>,
}

impl Authenticator {
    pub fn new(verifier: SessionTokenVerifier, clerk: Option<ClerkVerifier>, max_token_age: Option<i64>) -> Self {
        Self {
            verifier,
            clerk,
            cache: VerifiedTokenCache::default(),
            max_token_age,
        }
    }

    pub async fn authenticate(&self, token: &str, now: i64) -> Result<Arc<AuthObject>, SignedOutReason> {
        let key = VerifiedTokenCache::key(token);
        let auth = match self.cache.get(&key, now) {
            Some(auth) => auth,
            None => {
                let parsed = UnverifiedToken::parse(token).map_err(SignedOutReason::InvalidToken)?;
                let claims = match &self.clerk {
                    Some(clerk) if clerk.claims_to_issue(&parsed) => {
                        clerk.verify(&parsed, now).await.map_err(|e| match e {
                            ClerkError::Token(e) => SignedOutReason::InvalidToken(e),
                            ClerkError::KeysUnavailable => SignedOutReason::KeysUnavailable,
                        })?
                    }
                    _ => self
                        .verifier
                        .verify_parsed(&parsed, now)
                        .map_err(SignedOutReason::InvalidToken)?,
                };
                let auth = Arc::new(AuthObject::from_claims(&claims));
                self.cache.insert(key, auth.clone(), now);
                auth
            }
        };
        if let Some(max_age) = self.max_token_age
            && now - auth.issued_at > max_age
        {
            return Err(SignedOutReason::TokenTooOld);
        }
        Ok(auth)
    }

    pub fn cache(&self) -> &VerifiedTokenCache {
        &self.cache
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::keys::{KeyRing, generate_pem};
    use crate::auth::tokens::{SessionTokenInput, SessionTokenIssuer, TokenError};

    #[tokio::test]
    async fn tokens_are_verified_once_then_served_from_the_cache() {
        let keys = Arc::new(KeyRing::from_pems(&("k".into(), generate_pem().unwrap()), &[]).unwrap());
        let issuer = SessionTokenIssuer::new(keys.clone(), "iss".into(), 60);
        let authenticator = Authenticator::new(SessionTokenVerifier::new(keys, "iss".into(), vec![]), None, Some(30));
        let now_ms = crate::clock::now_ms();
        let now = now_ms / 1000;
        let token = issuer
            .issue(
                SessionTokenInput {
                    user_id: "user_1",
                    session_id: "sess_1",
                    azp: None,
                    last_verified_at_ms: now_ms,
                    org: None,
                    fea: None,
                    custom: Default::default(),
                },
                now_ms,
            )
            .unwrap();
        let first = authenticator.authenticate(&token, now).await.unwrap();
        let second = authenticator.authenticate(&token, now).await.unwrap();
        assert!(Arc::ptr_eq(&first, &second), "the second lookup is the cached object");
        assert_eq!(authenticator.cache().len(), 1);
        assert_eq!(
            authenticator.authenticate(&token, now + 31).await.unwrap_err(),
            SignedOutReason::TokenTooOld
        );
        // Past exp (+ skew) the cached entry is dead and verification refuses the token.
        assert!(matches!(
            authenticator.authenticate(&token, now + 70).await,
            Err(SignedOutReason::InvalidToken(TokenError::Expired))
        ));
        assert!(authenticator.authenticate("garbage", now).await.is_err());
        assert_eq!(authenticator.cache().len(), 1, "failures are not cached");
    }
}
