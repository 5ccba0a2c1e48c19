//! Trusting a real Clerk instance: its v2 session tokens are verified with Clerk's key
//! (`CLERK_JWT_KEY`, a PEM: no network) or its JWKS (`CLERK_JWKS_URL`: fetched, cached
//! about 5 minutes, refetched on an unknown `kid` at most once per
//! `CLERK_JWKS_MIN_REFETCH`), and resolve to the same `Auth` as ours. RS256 only.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::{AlgorithmParameters, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey};
use tokio::sync::{Mutex, RwLock};

use super::tokens::{SessionClaims, TokenError, UnverifiedToken, check_claims};
use crate::config::ClerkConfig;

/// How long fetched keys are used before a refetch.
pub const JWKS_TTL: Duration = Duration::from_secs(300);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClerkError {
    #[error(transparent)]
    Token(#[from] TokenError),
    /// No usable keys: the JWKS could not be fetched and none are cached.
    #[error("Clerk's signing keys cannot be fetched right now")]
    KeysUnavailable,
}

#[derive(Debug, thiserror::Error)]
#[error("CLERK_JWT_KEY: {0}")]
pub struct ClerkKeyError(String);

enum Keys {
    /// From `CLERK_JWT_KEY`: used for any `kid`.
    Static(DecodingKey),
    Jwks(JwksCache),
}

pub struct ClerkVerifier {
    issuer: String,
    authorized_parties: Vec<String>,
    azp_required: bool,
    keys: Keys,
}

impl ClerkVerifier {
    /// `None` when Clerk is not configured. Without `CLERK_AUTHORIZED_PARTIES`, an `azp`
    /// is optional but, when present, must be one of `allowed_origins`.
    pub fn from_config(config: &ClerkConfig, allowed_origins: &[String]) -> Result<Option<Self>, ClerkKeyError> {
        let Some(issuer) = config.issuer.clone() else {
            return Ok(None);
        };
        let keys = match (&config.jwt_key, &config.jwks_url) {
            (Some(pem), _) => Keys::Static(
                DecodingKey::from_rsa_pem(pem.replace("\\n", "\n").as_bytes())
                    .map_err(|e| ClerkKeyError(format!("not an RSA public key PEM ({e})")))?,
            ),
            (None, Some(url)) => Keys::Jwks(JwksCache::new(url.clone(), config.jwks_min_refetch)),
            (None, None) => return Ok(None),
        };
        Ok(Some(Self {
            issuer: issuer.trim_end_matches('/').to_owned(),
            azp_required: !config.authorized_parties.is_empty(),
            authorized_parties: if config.authorized_parties.is_empty() {
                allowed_origins.to_vec()
            } else {
                config.authorized_parties.clone()
            },
            keys,
        }))
    }

    /// True when the token claims to come from this Clerk instance.
    pub fn claims_to_issue(&self, token: &UnverifiedToken<'_>) -> bool {
        token
            .claimed_issuer()
            .is_some_and(|iss| iss.trim_end_matches('/') == self.issuer)
    }

    pub async fn verify(&self, token: &UnverifiedToken<'_>, now_secs: i64) -> Result<SessionClaims, ClerkError> {
        let claims = match &self.keys {
            Keys::Static(key) => token.verify_with(key, Algorithm::RS256)?,
            Keys::Jwks(cache) => {
                let kid = token.kid().ok_or(TokenError::UnknownKey)?;
                let key = cache.key(kid).await?;
                token.verify_with(&key, Algorithm::RS256)?
            }
        };
        // Clerk's `iss` may or may not end with a slash; compare without it.
        let normalised = SessionClaims {
            iss: claims.iss.trim_end_matches('/').to_owned(),
            ..claims
        };
        let parties = &self.authorized_parties;
        check_claims(
            &normalised,
            &self.issuer,
            now_secs,
            |azp| parties.iter().any(|p| p == azp),
            self.azp_required,
        )?;
        Ok(normalised)
    }
}

struct Fetched {
    keys: HashMap<String, DecodingKey>,
    at: Instant,
}

/// Clerk's JWKS, fetched lazily, cached [`JWKS_TTL`], refetched for an unknown `kid` at
/// most once per `min_refetch`; one fetch at a time.
struct JwksCache {
    url: String,
    http: reqwest::Client,
    min_refetch: Duration,
    fetched: RwLock<Option<Fetched>>,
    last_attempt: Mutex<Option<Instant>>,
}

impl JwksCache {
    fn new(url: String, min_refetch: Duration) -> Self {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(2))
            .timeout(Duration::from_secs(5))
            .build()
            .expect("an HTTP client builds");
        Self {
            url,
            http,
            min_refetch,
            fetched: RwLock::default(),
            last_attempt: Mutex::default(),
        }
    }

    async fn key(&self, kid: &str) -> Result<DecodingKey, ClerkError> {
        {
            let fetched = self.fetched.read().await;
            if let Some(f) = fetched.as_ref()
                && f.at.elapsed() < JWKS_TTL
                && let Some(key) = f.keys.get(kid)
            {
                return Ok(key.clone());
            }
        }
        self.refresh().await;
        let fetched = self.fetched.read().await;
        match fetched.as_ref() {
            // Keys past their TTL still verify when a refetch failed: better than failing every request.
            Some(f) => f
                .keys
                .get(kid)
                .cloned()
                .ok_or(ClerkError::Token(TokenError::UnknownKey)),
            None => Err(ClerkError::KeysUnavailable),
        }
    }

    /// Refetches unless another fetch happened within `min_refetch` (the lock makes
    /// concurrent callers wait for one fetch instead of each making their own).
    async fn refresh(&self) {
        let mut last = self.last_attempt.lock().await;
        if last.is_some_and(|at| at.elapsed() < self.min_refetch) {
            return;
        }
        *last = Some(Instant::now());
        match self.fetch().await {
            Ok(keys) => {
                tracing::info!(url = %self.url, keys = keys.len(), "fetched Clerk JWKS");
                *self.fetched.write().await = Some(Fetched {
                    keys,
                    at: Instant::now(),
                });
            }
            Err(e) => tracing::warn!(url = %self.url, error = %e, "could not fetch Clerk JWKS"),
        }
    }

    async fn fetch(&self) -> Result<HashMap<String, DecodingKey>, Box<dyn std::error::Error + Send + Sync>> {
        let response = self.http.get(&self.url).send().await?.error_for_status()?;
        let set: JwkSet = response.json().await?;
        let mut keys = HashMap::new();
        for jwk in set.keys {
            // RS256 only: other key types and algorithms are skipped, never trusted.
            let rs256 = jwk
                .common
                .key_algorithm
                .is_none_or(|alg| alg == jsonwebtoken::jwk::KeyAlgorithm::RS256);
            if let (Some(kid), AlgorithmParameters::RSA(_), true) = (&jwk.common.key_id, &jwk.algorithm, rs256) {
                keys.insert(kid.clone(), DecodingKey::from_jwk(&jwk)?);
            }
        }
        Ok(keys)
    }
}
