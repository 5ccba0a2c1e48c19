//! Session tokens: Clerk session token v2 claims in a compact JWS, signed with the
//! key ring's active key and verified by `kid` with the algorithm the key carries.
//!
//! The header is written here rather than by `jsonwebtoken::encode` because it carries
//! Clerk's token-category claim (`cat`), which tells session tokens from template tokens.

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey};
use serde::{Deserialize, Serialize};

use super::keys::KeyRing;
use crate::ids::random_token;

/// Category header of session tokens (the value Clerk uses).
pub const SESSION_TOKEN_CATEGORY: &str = "cl_B7d4PD111AAA";
/// Category header of JWT template tokens; such a token is never a session token.
pub const TEMPLATE_TOKEN_CATEGORY: &str = "cl_B7d4PD222AAA";
/// Tokens longer than this are refused before any parsing.
pub const MAX_TOKEN_LEN: usize = 8 * 1024;
/// Clock skew tolerated on `exp`, `nbf` and `iat`, in seconds.
pub const CLOCK_SKEW_SECS: i64 = 5;

/// The organization claim `o` of a v2 session token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrgClaim {
    pub id: String,
    pub slg: String,
    /// Role without the `org:` prefix.
    pub rol: String,
    /// Comma-separated permission names (the `<per>` of `org:<feature>:<per>`).
    pub per: String,
    /// Comma-separated bitmasks, one per org feature of `fea`.
    pub fpm: String,
}

/// Clerk session token v2 claims.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionClaims {
    pub sub: String,
    pub sid: String,
    pub iss: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub azp: Option<String>,
    pub iat: i64,
    pub nbf: i64,
    pub exp: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
    #[serde(default)]
    pub v: u8,
    /// Minutes since the first and the second factor were last verified (-1: never).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fva: Option<[i64; 2]>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sts: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub o: Option<OrgClaim>,
    /// Comma-separated features (`o:dashboard,o:impersonation`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fea: Option<String>,
    /// An impersonated session: who is acting (`{"sub": "<actor>"}`), as Clerk's tokens say.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub act: Option<serde_json::Value>,
    /// Custom claims of the session token template, and anything else in the token.
    #[serde(flatten)]
    pub custom: serde_json::Map<String, serde_json::Value>,
}

#[derive(Debug, Serialize, Deserialize)]
struct Header {
    alg: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    cat: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    kid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    typ: Option<String>,
}

/// A token could not be signed (the claims did not serialize, or the key refused).
#[derive(Debug, thiserror::Error)]
#[error("could not sign a token: {0}")]
pub struct SignError(pub String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the token is not a well-formed JWT")]
    Malformed,
    #[error("the token's key id is not known")]
    UnknownKey,
    #[error("the token's algorithm does not match its key")]
    AlgorithmMismatch,
    #[error("the token's signature is invalid")]
    BadSignature,
    #[error("the token is not a session token")]
    WrongCategory,
    #[error("the token has expired")]
    Expired,
    #[error("the token is not valid yet")]
    NotYetValid,
    #[error("the token's issuer is not trusted")]
    WrongIssuer,
    #[error("the token's authorized party is not an allowed origin")]
    ForeignAuthorizedParty,
}

/// Signs a compact JWS with the given header fields, with any `jsonwebtoken` key (a
/// key parsed for each signature: the instance's own key signs through
/// [`super::keys::SigningKey::sign_compact`], which keeps it parsed).
pub fn sign_compact(
    key: &EncodingKey,
    algorithm: Algorithm,
    kid: Option<&str>,
    category: &str,
    claims: &impl Serialize,
) -> Result<String, jsonwebtoken::errors::Error> {
    let mut message = signing_input(algorithm, kid, category, claims)?;
    let signature = jsonwebtoken::crypto::sign(message.as_bytes(), key, algorithm)?;
    message.push('.');
    message.push_str(&signature);
    Ok(message)
}

/// `base64url(header) . base64url(claims)`, the part of a compact JWS that is signed.
pub(super) fn signing_input(
    algorithm: Algorithm,
    kid: Option<&str>,
    category: &str,
    claims: &impl Serialize,
) -> Result<String, serde_json::Error> {
    let header = Header {
        alg: algorithm_name(algorithm).to_owned(),
        cat: Some(category.to_owned()),
        kid: kid.map(str::to_owned),
        typ: Some("JWT".to_owned()),
    };
    let mut message = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&header)?);
    message.push('.');
    message.push_str(&URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims)?));
    Ok(message)
}

fn algorithm_name(algorithm: Algorithm) -> &'static str {
    match algorithm {
        Algorithm::HS256 => "HS256",
        Algorithm::HS384 => "HS384",
        Algorithm::HS512 => "HS512",
        Algorithm::RS256 => "RS256",
        Algorithm::RS384 => "RS384",
        Algorithm::RS512 => "RS512",
        Algorithm::ES256 => "ES256",
        Algorithm::ES384 => "ES384",
        Algorithm::PS256 => "PS256",
        Algorithm::PS384 => "PS384",
        Algorithm::PS512 => "PS512",
        Algorithm::EdDSA => "EdDSA",
        _ => "unsupported",
    }
}

/// What a new session token says about its session.
pub struct SessionTokenInput<'a> {
    pub user_id: &'a str,
    pub session_id: &'a str,
    /// The request's `Origin`, already checked against the allowed origins.
    pub azp: Option<&'a str>,
    pub last_verified_at_ms: i64,
    /// When the session last proved a second factor (`None`: never; `fva[1]` is -1).
    pub last_second_factor_at_ms: Option<i64>,
    pub org: Option<OrgClaim>,
    pub fea: Option<String>,
    /// The actor of an impersonated session (`act`).
    pub act: Option<serde_json::Value>,
    pub custom: serde_json::Map<String, serde_json::Value>,
}

/// Mints session tokens with the active key.
#[derive(Clone)]
pub struct SessionTokenIssuer {
    keys: Arc<KeyRing>,
    issuer: String,
    lifetime_secs: i64,
}

impl SessionTokenIssuer {
    pub fn new(keys: Arc<KeyRing>, issuer: String, lifetime_secs: i64) -> Self {
        Self {
            keys,
            issuer,
            lifetime_secs,
        }
    }

    pub fn lifetime_secs(&self) -> i64 {
        self.lifetime_secs
    }

    pub fn claims(&self, input: SessionTokenInput<'_>, now_ms: i64) -> SessionClaims {
        let iat = now_ms / 1000;
        let verified_minutes = ((now_ms - input.last_verified_at_ms).max(0)) / 60_000;
        let second_minutes = input
            .last_second_factor_at_ms
            .map_or(-1, |at| ((now_ms - at).max(0)) / 60_000);
        SessionClaims {
            sub: input.user_id.to_owned(),
            sid: input.session_id.to_owned(),
            iss: self.issuer.clone(),
            azp: input.azp.map(str::to_owned),
            iat,
            // As Clerk does: valid from a little before issue, for verifiers whose clock is behind.
            nbf: iat - 10,
            exp: iat + self.lifetime_secs,
            jti: Some(random_token(15)),
            v: 2,
            fva: Some([verified_minutes, second_minutes]),
            sts: Some("active".to_owned()),
            o: input.org,
            fea: input.fea,
            act: input.act,
            custom: input.custom,
        }
    }

    pub fn sign(&self, claims: &SessionClaims) -> Result<String, SignError> {
        self.keys.signing().sign_compact(SESSION_TOKEN_CATEGORY, claims)
    }

    pub fn issue(&self, input: SessionTokenInput<'_>, now_ms: i64) -> Result<String, SignError> {
        self.sign(&self.claims(input, now_ms))
    }
}

/// Verifies session tokens of this instance (RFC 8725: the algorithm comes from the
/// key named by `kid`, never from the token).
#[derive(Clone)]
pub struct SessionTokenVerifier {
    keys: Arc<KeyRing>,
    issuer: String,
    allowed_origins: Arc<[String]>,
}

impl SessionTokenVerifier {
    pub fn new(keys: Arc<KeyRing>, issuer: String, allowed_origins: Vec<String>) -> Self {
        Self {
            keys,
            issuer,
            allowed_origins: allowed_origins.into(),
        }
    }

    pub fn verify(&self, token: &str, now_secs: i64) -> Result<SessionClaims, TokenError> {
        self.verify_parsed(&UnverifiedToken::parse(token)?, now_secs)
    }

    pub fn verify_parsed(&self, token: &UnverifiedToken<'_>, now_secs: i64) -> Result<SessionClaims, TokenError> {
        let kid = token.kid().ok_or(TokenError::UnknownKey)?;
        let key = self.keys.verification_key(kid).ok_or(TokenError::UnknownKey)?;
        let claims = token.verify_with(&key.decoding, key.algorithm)?;
        check_claims(
            &claims,
            &self.issuer,
            now_secs,
            |azp| self.allowed_origins.iter().any(|o| o == azp),
            false,
        )?;
        Ok(claims)
    }
}

/// A compact JWS whose header has been read and nothing verified yet. Session-token
/// verifiers (ours and Clerk's) share it: the key is chosen by `kid`, and the token's
/// `alg` must be the key's own.
pub struct UnverifiedToken<'a> {
    parts: TokenParts<'a>,
    header: Header,
}

impl<'a> UnverifiedToken<'a> {
    /// Splits and reads the header; template tokens are refused here.
    pub fn parse(token: &'a str) -> Result<Self, TokenError> {
        let parts = split_token(token)?;
        let header: Header = decode_segment(parts.header)?;
        if header.cat.as_deref() == Some(TEMPLATE_TOKEN_CATEGORY) {
            return Err(TokenError::WrongCategory);
        }
        Ok(Self { parts, header })
    }

    pub fn kid(&self) -> Option<&str> {
        self.header.kid.as_deref()
    }

    /// The `iss` the payload claims, unverified: it only picks which verifier to ask.
    pub fn claimed_issuer(&self) -> Option<String> {
        #[derive(Deserialize)]
        struct Iss {
            iss: Option<String>,
        }
        decode_segment::<Iss>(self.parts.payload).ok().and_then(|p| p.iss)
    }

    /// Checks the signature with `key` (whose algorithm the token must name) and
    /// decodes the claims.
    pub fn verify_with(
        &self,
        key: &jsonwebtoken::DecodingKey,
        algorithm: Algorithm,
    ) -> Result<SessionClaims, TokenError> {
        if self.header.alg != algorithm_name(algorithm) {
            return Err(TokenError::AlgorithmMismatch);
        }
        let valid = jsonwebtoken::crypto::verify(self.parts.signature, self.parts.message.as_bytes(), key, algorithm)
            .map_err(|_| TokenError::BadSignature)?;
        if !valid {
            return Err(TokenError::BadSignature);
        }
        decode_segment(self.parts.payload)
    }
}

/// `iss`, the times and `azp` (`azp_required`: it must be present).
pub fn check_claims(
    claims: &SessionClaims,
    issuer: &str,
    now_secs: i64,
    azp_allowed: impl Fn(&str) -> bool,
    azp_required: bool,
) -> Result<(), TokenError> {
    if claims.iss != issuer {
        return Err(TokenError::WrongIssuer);
    }
    check_times(claims.exp, claims.nbf, claims.iat, now_secs)?;
    match &claims.azp {
        Some(azp) if !azp_allowed(azp) => Err(TokenError::ForeignAuthorizedParty),
        None if azp_required => Err(TokenError::ForeignAuthorizedParty),
        _ => Ok(()),
    }
}

/// `exp`, `nbf` and `iat` against the clock, with [`CLOCK_SKEW_SECS`] either way.
pub fn check_times(exp: i64, nbf: i64, iat: i64, now_secs: i64) -> Result<(), TokenError> {
    if exp + CLOCK_SKEW_SECS <= now_secs {
        return Err(TokenError::Expired);
    }
    if nbf - CLOCK_SKEW_SECS > now_secs || iat - CLOCK_SKEW_SECS > now_secs {
        return Err(TokenError::NotYetValid);
    }
    Ok(())
}

struct TokenParts<'a> {
    header: &'a str,
    payload: &'a str,
    signature: &'a str,
    message: &'a str,
}

fn split_token(token: &str) -> Result<TokenParts<'_>, TokenError> {
    if token.is_empty() || token.len() > MAX_TOKEN_LEN {
        return Err(TokenError::Malformed);
    }
    let (message, signature) = token.rsplit_once('.').ok_or(TokenError::Malformed)?;
    let (header, payload) = message.split_once('.').ok_or(TokenError::Malformed)?;
    if header.is_empty() || payload.is_empty() || signature.is_empty() || payload.contains('.') {
        return Err(TokenError::Malformed);
    }
    Ok(TokenParts {
        header,
        payload,
        signature,
        message,
    })
}

fn decode_segment<T: for<'de> Deserialize<'de>>(segment: &str) -> Result<T, TokenError> {
    let bytes = URL_SAFE_NO_PAD.decode(segment).map_err(|_| TokenError::Malformed)?;
    serde_json::from_slice(&bytes).map_err(|_| TokenError::Malformed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::keys::generate_pem;

    const ISS: &str = "http://127.0.0.1:8080";

    fn ring() -> Arc<KeyRing> {
        Arc::new(KeyRing::from_pems(&("test".into(), generate_pem().unwrap()), &[]).unwrap())
    }

    fn pair(keys: &Arc<KeyRing>) -> (SessionTokenIssuer, SessionTokenVerifier) {
        (
            SessionTokenIssuer::new(keys.clone(), ISS.into(), 60),
            SessionTokenVerifier::new(keys.clone(), ISS.into(), vec!["http://localhost:8080".into()]),
        )
    }

    fn input<'a>() -> SessionTokenInput<'a> {
        SessionTokenInput {
            user_id: "user_1",
            session_id: "sess_1",
            azp: Some("http://localhost:8080"),
            last_verified_at_ms: 0,
            last_second_factor_at_ms: None,
            org: None,
            fea: None,
            act: None,
            custom: Default::default(),
        }
    }

    fn forge(header: serde_json::Value, claims: &SessionClaims, signature: &str) -> String {
        format!(
            "{}.{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).unwrap()),
            signature
        )
    }

    #[test]
    fn issued_tokens_verify_with_clerk_v2_claims() {
        let keys = ring();
        let (issuer, verifier) = pair(&keys);
        let now = 1_700_000_000_000;
        let token = issuer.issue(input(), now).unwrap();
        let claims = verifier.verify(&token, now / 1000).unwrap();
        assert_eq!(claims.sub, "user_1");
        assert_eq!(claims.sid, "sess_1");
        assert_eq!(claims.v, 2);
        assert_eq!(claims.exp - claims.iat, 60);
        assert_eq!(claims.sts.as_deref(), Some("active"));
        assert_eq!(claims.fva, Some([28_333_333, -1]));
    }

    #[test]
    fn attacks_are_refused() {
        let keys = ring();
        let (issuer, verifier) = pair(&keys);
        let now = 1_700_000_000_000;
        let now_s = now / 1000;
        let claims = issuer.claims(input(), now);
        let kid = keys.signing().kid.clone();
        let good = issuer.sign(&claims).unwrap();

        // alg none, with and without a signature.
        let none = forge(
            serde_json::json!({"alg": "none", "kid": kid, "typ": "JWT"}),
            &claims,
            "x",
        );
        assert_eq!(verifier.verify(&none, now_s), Err(TokenError::AlgorithmMismatch));
        assert_eq!(
            verifier.verify(&none.replace(".x", "."), now_s),
            Err(TokenError::Malformed)
        );

        // HS256 signed with the public key's bytes (HS/RS confusion).
        let public = keys.jwks().keys[0].clone();
        let jsonwebtoken::jwk::AlgorithmParameters::RSA(rsa) = &public.algorithm else {
            panic!()
        };
        let hs_key = EncodingKey::from_secret(rsa.n.as_bytes());
        let hs = sign_compact(&hs_key, Algorithm::HS256, Some(&kid), SESSION_TOKEN_CATEGORY, &claims).unwrap();
        assert_eq!(verifier.verify(&hs, now_s), Err(TokenError::AlgorithmMismatch));

        // Tampered payload.
        let mut tampered_claims = claims.clone();
        tampered_claims.sub = "user_admin".into();
        let signature = good.rsplit('.').next().unwrap();
        let tampered = forge(
            serde_json::json!({"alg": "RS256", "cat": SESSION_TOKEN_CATEGORY, "kid": kid, "typ": "JWT"}),
            &tampered_claims,
            signature,
        );
        assert_eq!(verifier.verify(&tampered, now_s), Err(TokenError::BadSignature));

        // Time.
        assert_eq!(verifier.verify(&good, now_s + 66), Err(TokenError::Expired));
        assert!(verifier.verify(&good, now_s + 64).is_ok(), "within skew");
        assert_eq!(verifier.verify(&good, now_s - 16), Err(TokenError::NotYetValid));

        // Issuer, azp, unknown kid, category.
        let other = SessionTokenVerifier::new(
            keys.clone(),
            "https://evil.example".into(),
            vec!["http://localhost:8080".into()],
        );
        assert_eq!(other.verify(&good, now_s), Err(TokenError::WrongIssuer));
        let strict = SessionTokenVerifier::new(keys.clone(), ISS.into(), vec!["https://app.example".into()]);
        assert_eq!(strict.verify(&good, now_s), Err(TokenError::ForeignAuthorizedParty));
        let stranger = ring();
        let (foreign_issuer, _) = pair(&stranger);
        let foreign = foreign_issuer.issue(input(), now).unwrap();
        assert_eq!(verifier.verify(&foreign, now_s), Err(TokenError::UnknownKey));
        let template = sign_compact(
            &keys.signing().encoding,
            Algorithm::RS256,
            Some(&kid),
            TEMPLATE_TOKEN_CATEGORY,
            &claims,
        )
        .unwrap();
        assert_eq!(verifier.verify(&template, now_s), Err(TokenError::WrongCategory));

        // Garbage.
        for junk in [
            "",
            "a",
            "a.b",
            "a.b.c",
            "...",
            "a.b.c.d",
            &"x".repeat(MAX_TOKEN_LEN + 1),
        ] {
            assert!(verifier.verify(junk, now_s).is_err(), "{junk}");
        }
    }

    /// Property: no input makes token parsing or verification panic: random text, and
    /// well-formed segments holding random JSON-ish headers and payloads.
    #[test]
    fn no_token_input_panics() {
        let keys = ring();
        let (_, verifier) = pair(&keys);
        let pieces = [
            "{",
            "}",
            "\"alg\"",
            ":",
            "\"RS256\"",
            "\"none\"",
            ",",
            "\"kid\"",
            "null",
            "[",
            "]",
            "1e999",
            "\"\\u0000\"",
            "\"cat\"",
            "\"cl_B7d4PD222AAA\"",
            "\"iss\"",
            "-1",
            "true",
            "\"exp\"",
            "99999999999999999999",
        ];
        let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let mut segment = || -> String {
            let n = (next() % 12) as usize;
            let text: String = (0..n)
                .map(|_| pieces[(next() % pieces.len() as u64) as usize])
                .collect();
            if next() % 2 == 0 {
                URL_SAFE_NO_PAD.encode(text)
            } else {
                text
            }
        };
        for i in 0..20_000 {
            let token = match i % 4 {
                0 => segment(),
                1 => format!("{}.{}", segment(), segment()),
                _ => format!("{}.{}.{}", segment(), segment(), segment()),
            };
            if let Ok(parsed) = UnverifiedToken::parse(&token) {
                let _ = parsed.claimed_issuer();
                let _ = parsed.kid();
            }
            assert!(verifier.verify(&token, 1_700_000_000).is_err());
        }
    }
}
