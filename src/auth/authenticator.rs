//! Turns a bearer token into an [`AuthObject`]: our own session tokens, and (when
//! configured) a Clerk instance's, through a cache of verified tokens.

use std::sync::Arc;

use dashmap::DashMap;

use super::clerk::{ClerkError, ClerkVerifier};
use super::context::{AuthObject, SignedOutReason};
use super::tokens::{CLOCK_SKEW_SECS, SessionTokenVerifier, UnverifiedToken};

/// Verified tokens kept at most: beyond it a new token is verified on each request
/// (about 30 µs) until housekeeping sweeps out expired entries. Bounds memory whatever
/// the number of live tokens.
pub const MAX_CACHED_TOKENS: usize = 8_192;

/// Verified tokens by the token itself: a token's signature is checked once, and later
/// requests with it cost a hash and a comparison in a sharded map (no global lock).
/// Entries die at `exp`: they are ignored after it and removed by [`Self::sweep`].
pub struct VerifiedTokenCache {
    entries: DashMap<Box<str>, Arc<AuthObject>, foldhash::fast::RandomState>,
    capacity: usize,
}

impl Default for VerifiedTokenCache {
    fn default() -> Self {
        Self::with_capacity(MAX_CACHED_TOKENS)
    }
}

impl VerifiedTokenCache {
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            entries: DashMap::with_hasher(foldhash::fast::RandomState::default()),
            capacity,
        }
    }

    fn get(&self, token: &str, now: i64) -> Option<Arc<AuthObject>> {
        self.entries
            .get(token)
            .filter(|auth| auth.expires_at + CLOCK_SKEW_SECS > now)
            .map(|auth| auth.clone())
    }

    /// Keeps a verified token, unless the cache is full (then it is simply not kept:
    /// no scan on the request path).
    fn insert(&self, token: &str, auth: Arc<AuthObject>) {
        if self.entries.len() < self.capacity {
            self.entries.insert(token.into(), auth);
        }
    }

    /// Removes expired entries (housekeeping, every 30 s).
    pub fn sweep(&self, now: i64) {
        self.entries.retain(|_, auth| auth.expires_at + CLOCK_SKEW_SECS > now);
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
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
        let auth = match self.cache.get(token, now) {
            Some(auth) => auth,
            // Boxed: verifying (for Clerk's tokens, fetching keys) makes a large future,
            // which would otherwise enlarge every request's, the cache hit's too.
            None => Box::pin(self.verify(token, now)).await?,
        };
        if let Some(max_age) = self.max_token_age
            && now - auth.issued_at > max_age
        {
            return Err(SignedOutReason::TokenTooOld);
        }
        Ok(auth)
    }

    /// Verifies a token the cache does not hold, and keeps it there.
    async fn verify(&self, token: &str, now: i64) -> Result<Arc<AuthObject>, SignedOutReason> {
        let parsed = UnverifiedToken::parse(token).map_err(SignedOutReason::InvalidToken)?;
        let claims = match &self.clerk {
            Some(clerk) if clerk.claims_to_issue(&parsed) => clerk.verify(&parsed, now).await.map_err(|e| match e {
                ClerkError::Token(e) => SignedOutReason::InvalidToken(e),
                ClerkError::KeysUnavailable => SignedOutReason::KeysUnavailable,
            })?,
            _ => self
                .verifier
                .verify_parsed(&parsed, now)
                .map_err(SignedOutReason::InvalidToken)?,
        };
        let auth = Arc::new(AuthObject::from_claims(&claims));
        self.cache.insert(token, auth.clone());
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
                    last_second_factor_at_ms: None,
                    org: None,
                    fea: None,
                    act: None,
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

    #[test]
    fn the_cache_is_bounded_and_swept() {
        let cache = VerifiedTokenCache::with_capacity(2);
        let auth = |exp: i64| {
            let mut claims = crate::auth::tokens::SessionClaims {
                sub: "user_1".into(),
                sid: "sess_1".into(),
                iss: "iss".into(),
                azp: None,
                iat: 0,
                nbf: 0,
                exp,
                jti: None,
                v: 2,
                fva: None,
                sts: None,
                o: None,
                fea: None,
                act: None,
                custom: Default::default(),
            };
            claims.exp = exp;
            Arc::new(AuthObject::from_claims(&claims))
        };
        cache.insert("a", auth(100));
        cache.insert("b", auth(1_000));
        cache.insert("c", auth(1_000));
        assert_eq!(cache.len(), 2, "a full cache keeps no more");
        assert!(cache.get("a", 50).is_some());
        assert!(cache.get("a", 200).is_none(), "an expired entry is not served");
        cache.sweep(200);
        assert_eq!(cache.len(), 1);
        cache.insert("c", auth(1_000));
        assert!(cache.get("c", 200).is_some());
    }
}
