//! Turns a bearer token into an [`AuthObject`]: our own session tokens, and (when
//! configured) a Clerk instance's, through a cache of verified tokens.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use dashmap::DashMap;

use super::clerk::{ClerkError, ClerkVerifier};
use super::context::{AuthObject, SignedOutReason};
use super::tokens::{CLOCK_SKEW_SECS, SessionTokenVerifier, UnverifiedToken};

/// Verified tokens kept at most: beyond it a new token is verified on each request
/// (about 30 µs) until housekeeping sweeps out expired entries. Bounds memory whatever
/// the number of live tokens.
pub const MAX_CACHED_TOKENS: usize = 8_192;

/// Whether a verified token may still be served from a cache at `now` (its `exp`, with
/// the verifier's skew).
fn unexpired(auth: &AuthObject, now: i64) -> bool {
    auth.expires_at + CLOCK_SKEW_SECS > now
}

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
            .filter(|auth| unexpired(auth, now))
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
        self.entries.retain(|_, auth| unexpired(auth, now));
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
        self.check_age(&auth, now)?;
        Ok(auth)
    }

    /// `MAX_TOKEN_AGE`: a token issued longer ago is refused, however long it lives.
    fn check_age(&self, auth: &AuthObject, now: i64) -> Result<(), SignedOutReason> {
        match self.max_token_age {
            Some(max_age) if now - auth.issued_at > max_age => Err(SignedOutReason::TokenTooOld),
            _ => Ok(()),
        }
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

/// Tokens a worker saw lately, as its own copies of the shared cache's objects.
///
/// Every worker serving the same token through the shared cache alone writes the same
/// memory on every request: the map shard's lock and the object's reference count (taken
/// and dropped three times per request). Those lines then travel between the cores on
/// each request. Each worker's guard holds one of these in front of the shared cache
/// (`Guard` gives every clone an empty one): a hit takes an uncontended lock and touches
/// counts no other core writes. Bounded: when full it is emptied (a token then costs one
/// shared lookup and one copy again).
pub struct WorkerTokens {
    /// By a hash of the token's last bytes (its signature), each with the tokens that
    /// share it: finding a token hashes 32 bytes, not the ~800 of a session token, and
    /// compares the whole token only with the entries under that hash. Only verified
    /// tokens are kept, so whoever picks a token's tail cannot fill a slot with them.
    entries: Mutex<Copies>,
    hasher: foldhash::fast::RandomState,
    capacity: usize,
}

#[derive(Default)]
struct Copies {
    by_tail: HashMap<u64, Slot, foldhash::fast::FixedState>,
    count: usize,
}

/// The tokens that share one hash, with this worker's copies.
type Slot = Vec<(Box<[u8]>, Arc<AuthObject>)>;

/// Tokens a worker keeps its own copy of.
pub const WORKER_TOKENS: usize = 512;

/// Bytes of the token's end that are hashed.
const TAIL: usize = 32;

impl Default for WorkerTokens {
    fn default() -> Self {
        Self::with_capacity(WORKER_TOKENS)
    }
}

impl Clone for WorkerTokens {
    /// An empty cache: the copies are this worker's, never another's.
    fn clone(&self) -> Self {
        Self::with_capacity(self.capacity)
    }
}

impl WorkerTokens {
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            entries: Mutex::default(),
            hasher: Default::default(),
            capacity,
        }
    }

    /// [`Authenticator::authenticate`], answered from this worker's copies when it can.
    /// The same checks apply to a copy (expiry, `MAX_TOKEN_AGE`); revocation is the
    /// caller's, as for the shared cache. Bytes that are not UTF-8 are the empty token.
    pub async fn authenticate(
        &self,
        shared: &Authenticator,
        token: &[u8],
        now: i64,
    ) -> Result<Arc<AuthObject>, SignedOutReason> {
        use std::hash::BuildHasher;
        let key = self.hasher.hash_one(&token[token.len().saturating_sub(TAIL)..]);
        let hit = self.lock().by_tail.get(&key).and_then(|slot| {
            slot.iter()
                .find(|(known, auth)| **known == *token && unexpired(auth, now))
                .map(|(_, auth)| auth.clone())
        });
        if let Some(auth) = hit {
            shared.check_age(&auth, now)?;
            return Ok(auth);
        }
        let text = std::str::from_utf8(token).unwrap_or_default();
        let auth = shared.authenticate(text, now).await?;
        let copy = Arc::new(auth.unshared_copy());
        let mut copies = self.lock();
        if copies.count >= self.capacity {
            *copies = Copies::default();
        }
        let slot = copies.by_tail.entry(key).or_default();
        // A dead copy of the same token (expired, or refused since) makes room.
        let before = slot.len();
        slot.retain(|(known, _)| **known != *token);
        let removed = before - slot.len();
        slot.push((token.into(), copy.clone()));
        copies.count = copies.count + 1 - removed;
        Ok(copy)
    }

    pub fn len(&self) -> usize {
        self.lock().count
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Copies> {
        // A panic while holding it leaves a map of whole entries: still usable.
        self.entries.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::keys::{KeyRing, generate_pem};
    use crate::auth::tokens::{SessionTokenInput, SessionTokenIssuer, TokenError};

    /// An authenticator (tokens live 60 s, `MAX_TOKEN_AGE` 30 s), a way to issue its
    /// tokens (issued now, for the user given), and now in seconds.
    fn authenticator() -> (Authenticator, impl Fn(&str) -> String, i64) {
        let keys = Arc::new(KeyRing::from_pems(&("k".into(), generate_pem().unwrap()), &[]).unwrap());
        let issuer = SessionTokenIssuer::new(keys.clone(), "iss".into(), 60);
        let authenticator = Authenticator::new(SessionTokenVerifier::new(keys, "iss".into(), vec![]), None, Some(30));
        let now_ms = crate::clock::now_ms();
        let token = move |user_id: &str| {
            issuer
                .issue(
                    SessionTokenInput {
                        user_id,
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
                .unwrap()
        };
        (authenticator, token, now_ms / 1000)
    }

    #[tokio::test]
    async fn a_worker_serves_its_own_copies_under_the_same_checks() {
        let (shared, issue, now) = authenticator();
        let token = issue("user_1");
        let worker = WorkerTokens::with_capacity(2);
        let first = worker.authenticate(&shared, token.as_bytes(), now).await.unwrap();
        let second = worker.authenticate(&shared, token.as_bytes(), now).await.unwrap();
        assert!(Arc::ptr_eq(&first, &second), "the second lookup is the worker's copy");
        let from_shared = shared.authenticate(&token, now).await.unwrap();
        assert!(!Arc::ptr_eq(&first, &from_shared), "the copy is not the shared object");
        assert_eq!(first.user_id, from_shared.user_id);
        assert_eq!(first.user_id_header, from_shared.user_id_header);
        assert_eq!(first.json(), from_shared.json());
        // The copy is held to the same rules as the shared entry.
        assert_eq!(
            worker
                .authenticate(&shared, token.as_bytes(), now + 31)
                .await
                .unwrap_err(),
            SignedOutReason::TokenTooOld
        );
        assert!(matches!(
            worker.authenticate(&shared, token.as_bytes(), now + 70).await,
            Err(SignedOutReason::InvalidToken(TokenError::Expired))
        ));
        assert!(worker.authenticate(&shared, b"garbage", now).await.is_err());
        assert!(
            worker.authenticate(&shared, b"\xff\xfe", now).await.is_err(),
            "not UTF-8"
        );
        // A forgery that ends as the kept token does (same hash) is not served its copy.
        let mut forged = token.clone().into_bytes();
        forged[0] = if forged[0] == b'e' { b'f' } else { b'e' };
        assert!(worker.authenticate(&shared, &forged, now).await.is_err());
        assert_eq!(worker.len(), 1, "failures are not kept");
        // Bounded: a full cache is emptied before the next token goes in.
        worker
            .authenticate(&shared, issue("user_2").as_bytes(), now)
            .await
            .unwrap();
        assert_eq!(worker.len(), 2);
        worker
            .authenticate(&shared, issue("user_3").as_bytes(), now)
            .await
            .unwrap();
        assert_eq!(worker.len(), 1, "full: emptied, then the new token kept");
        let clone = worker.clone();
        assert!(clone.is_empty(), "a clone starts with no copies");
    }

    #[tokio::test]
    async fn tokens_are_verified_once_then_served_from_the_cache() {
        let (authenticator, issue, now) = authenticator();
        let token = issue("user_1");
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
