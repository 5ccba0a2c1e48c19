//! The auth object: what the guard middleware knows about a request's session,
//! Clerk's `auth()` with `has()`.

use std::sync::OnceLock;

use actix_web::http::header::HeaderValue;
use actix_web::web::Bytes;
use serde::Serialize;
use serde_json::value::RawValue;
use utoipa::ToSchema;

use super::permissions::{self, ADMIN_ROLE};
use super::tokens::{SessionClaims, TokenError};
use crate::error::AppError;

/// Why a request has no session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignedOutReason {
    NoCredentials,
    InvalidToken(TokenError),
    /// `iat` older than `MAX_TOKEN_AGE`.
    TokenTooOld,
    /// The token is valid but its session has been signed out or revoked.
    SessionStopped,
    /// A Clerk token, and Clerk's keys cannot be fetched (and none are cached).
    KeysUnavailable,
    /// A `gk_…` key that is unknown, revoked or expired.
    InvalidApiKey,
    /// An API key could not be looked up (the database is away for a moment).
    Unavailable,
}

impl SignedOutReason {
    pub fn to_error(&self) -> AppError {
        match self {
            Self::NoCredentials => AppError::Unauthorized("sign in to continue: no session token".to_owned()),
            Self::InvalidToken(e) => AppError::Unauthorized(format!("invalid session token: {e}")),
            Self::TokenTooOld => {
                AppError::SessionExpired("the session token is older than MAX_TOKEN_AGE: refresh it".to_owned())
            }
            Self::SessionStopped => AppError::Unauthorized("the session has been signed out or revoked".to_owned()),
            Self::InvalidApiKey => AppError::Unauthorized("invalid API key: unknown, revoked or expired".to_owned()),
            Self::Unavailable => {
                AppError::ServiceUnavailable("the database is unavailable for a moment: retry shortly".to_owned())
            }
            Self::KeysUnavailable => AppError::ServiceUnavailable(
                "Clerk's signing keys cannot be fetched right now: retry shortly".to_owned(),
            ),
        }
    }
}

/// What the middleware resolved, stored in the request's extensions (except
/// `SignedOut(NoCredentials)`, which is what no state means: see the extractors).
#[derive(Debug, Clone)]
pub enum AuthState {
    SignedIn(std::sync::Arc<AuthObject>),
    SignedOut(SignedOutReason),
}

/// A role or a permission to check with [`AuthObject::has`].
#[derive(Debug, Clone, Copy)]
pub enum Check<'a> {
    Role(&'a str),
    Permission(&'a str),
}

/// The signed-in session, decoded from its token without touching the database.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AuthObject {
    /// `user` (a session token) or `api_key` (an organization's `gk_…` key).
    #[schema(example = "user")]
    pub actor_type: &'static str,
    /// The signed-in user; `null` for an API key.
    #[serde(rename = "user_id")]
    #[schema(example = "user_01jd3m5x0e8k2q9v7w4h6r1t3y")]
    pub public_user_id: Option<String>,
    /// The key, for an API key (`ak_…`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_key_id: Option<String>,
    /// The principal: the user's id, or the key's (rate limits, item ownership).
    #[serde(skip)]
    pub user_id: String,
    #[schema(example = "sess_01jd3m5x0e8k2q9v7w4h6r1t3y")]
    pub session_id: String,
    pub org_id: Option<String>,
    /// With the `org:` prefix, e.g. `org:admin`.
    pub org_role: Option<String>,
    pub org_slug: Option<String>,
    /// Decoded from the token's `fea`, `o.per` and `o.fpm`.
    pub org_permissions: Vec<String>,
    /// An impersonated session: who acts (the token's `act`, e.g. `{"sub": "support_ana"}`);
    /// `null` otherwise.
    #[schema(value_type = Option<Object>)]
    pub actor: Option<serde_json::Value>,
    // Kept as the JSON text it serializes to: a cached token's auth object stays small.
    /// Every claim of the session token.
    #[schema(value_type = Object)]
    pub session_claims: Box<RawValue>,
    #[serde(skip)]
    pub issued_at: i64,
    #[serde(skip)]
    pub expires_at: i64,
    /// Minutes since the password was last proven (`fva[0]`), as of issue.
    #[serde(skip)]
    pub factor_age_minutes: Option<i64>,
    /// Minutes since a second factor was last proven (`fva[1]`), as of issue; `None`
    /// when the session never proved one.
    #[serde(skip)]
    pub second_factor_age_minutes: Option<i64>,
    /// The `x-user-id` response header, made once per token (a cached token reuses it).
    #[serde(skip)]
    pub user_id_header: Option<HeaderValue>,
    /// This object as JSON, made on first use: a cached token answers `GET /api/me`
    /// without serializing again.
    #[serde(skip)]
    json: OnceLock<Bytes>,
}

impl AuthObject {
    /// Decodes verified claims (ours or Clerk's: the same v2 format).
    pub fn from_claims(claims: &SessionClaims) -> Self {
        let (org_id, org_role, org_slug, org_permissions) = match &claims.o {
            Some(o) => (
                Some(o.id.clone()),
                Some(if o.rol.starts_with("org:") {
                    o.rol.clone()
                } else {
                    format!("org:{}", o.rol)
                }),
                Some(o.slg.clone()),
                permissions::decode(claims.fea.as_deref().unwrap_or_default(), &o.per, &o.fpm),
            ),
            None => (None, None, None, Vec::new()),
        };
        Self {
            actor_type: "user",
            public_user_id: Some(claims.sub.clone()),
            api_key_id: None,
            user_id: claims.sub.clone(),
            session_id: claims.sid.clone(),
            org_id,
            org_role,
            org_slug,
            org_permissions,
            actor: claims.act.clone(),
            session_claims: serde_json::value::to_raw_value(claims)
                .unwrap_or_else(|_| RawValue::from_string("{}".to_owned()).expect("{} is JSON")),
            issued_at: claims.iat,
            expires_at: claims.exp,
            factor_age_minutes: claims.fva.map(|fva| fva[0]).filter(|m| *m >= 0),
            second_factor_age_minutes: claims.fva.map(|fva| fva[1]).filter(|m| *m >= 0),
            user_id_header: HeaderValue::from_str(&claims.sub).ok(),
            json: OnceLock::new(),
        }
    }

    /// An organization's API key: its scopes are its permissions; its id stands for the
    /// user (principal) and for the session (revocation).
    pub fn from_api_key(key: &crate::db::api_keys::ApiKey, now_secs: i64) -> Self {
        Self {
            actor_type: "api_key",
            public_user_id: None,
            api_key_id: Some(key.id.clone()),
            user_id: key.id.clone(),
            session_id: key.id.clone(),
            org_id: Some(key.organization_id.clone()),
            org_role: None,
            org_slug: None,
            org_permissions: key.scopes.clone(),
            actor: None,
            session_claims: RawValue::from_string("{}".to_owned()).expect("{} is JSON"),
            issued_at: now_secs,
            expires_at: key.expire_at.map_or(i64::MAX, |ms| ms / 1000),
            factor_age_minutes: None,
            second_factor_age_minutes: None,
            user_id_header: None,
            json: OnceLock::new(),
        }
    }

    /// Whether an organization API key (not a user) is calling.
    pub fn is_api_key(&self) -> bool {
        self.api_key_id.is_some()
    }

    /// A copy that shares no reference count with this one: its `x-user-id` header and
    /// its JSON are its own (cloning a `HeaderValue` or `Bytes` shares one count).
    pub fn unshared_copy(&self) -> Self {
        Self {
            user_id_header: self
                .user_id_header
                .as_ref()
                .and_then(|value| HeaderValue::from_bytes(value.as_bytes()).ok()),
            json: OnceLock::new(),
            ..self.clone()
        }
    }

    /// This object as JSON (`GET /api/me`).
    pub fn json(&self) -> Bytes {
        self.json
            .get_or_init(|| Bytes::from(serde_json::to_vec(self).unwrap_or_default()))
            .clone()
    }

    /// Clerk's `has()`: false without an active organization; `org:admin` holds every
    /// permission.
    pub fn has(&self, check: Check<'_>) -> bool {
        let Some(role) = self.org_role.as_deref() else {
            return false;
        };
        match check {
            Check::Role(wanted) => role == wanted,
            Check::Permission(wanted) => role == ADMIN_ROLE || self.org_permissions.iter().any(|p| p == wanted),
        }
    }

    /// Minutes since the password was last proven, now (the token's `fva` ages with it).
    pub fn factor_age_now(&self, now_secs: i64) -> Option<i64> {
        self.factor_age_minutes
            .map(|age| age + (now_secs - self.issued_at).max(0) / 60)
    }

    /// Refuses an impersonated session (403): what only the account's owner may do
    /// (the password, the second factor, deleting the account).
    pub fn forbid_impersonation(&self) -> Result<(), crate::error::AppError> {
        match &self.actor {
            Some(_) => Err(crate::error::AppError::Forbidden(
                "an impersonated session cannot do this: only the account's owner can".to_owned(),
            )),
            None => Ok(()),
        }
    }

    /// Minutes since a second factor was last proven, now (`None`: never).
    pub fn second_factor_age_now(&self, now_secs: i64) -> Option<i64> {
        self.second_factor_age_minutes
            .map(|age| age + (now_secs - self.issued_at).max(0) / 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::tokens::OrgClaim;

    fn claims(o: Option<OrgClaim>, fea: Option<&str>) -> SessionClaims {
        SessionClaims {
            sub: "user_1".into(),
            sid: "sess_1".into(),
            iss: "iss".into(),
            azp: None,
            iat: 1000,
            nbf: 990,
            exp: 1060,
            jti: None,
            v: 2,
            fva: Some([3, -1]),
            sts: Some("active".into()),
            o,
            fea: fea.map(Into::into),
            act: None,
            custom: Default::default(),
        }
    }

    #[test]
    fn has_is_false_without_an_organization() {
        let auth = AuthObject::from_claims(&claims(None, None));
        assert!(!auth.has(Check::Role("org:admin")));
        assert!(!auth.has(Check::Permission("org:data:read")));
        assert_eq!(auth.factor_age_now(1000 + 120), Some(5));
    }

    #[test]
    fn decodes_clerk_claims_into_role_and_permissions() {
        let o = OrgClaim {
            id: "org_1".into(),
            slg: "acme".into(),
            rol: "member".into(),
            per: "read,manage".into(),
            fpm: "3,2".into(),
        };
        let auth = AuthObject::from_claims(&claims(Some(o), Some("o:dashboard,o:impersonation")));
        assert_eq!(auth.org_role.as_deref(), Some("org:member"));
        assert!(auth.has(Check::Role("org:member")));
        assert!(!auth.has(Check::Role("org:admin")));
        assert!(auth.has(Check::Permission("org:dashboard:read")));
        assert!(auth.has(Check::Permission("org:impersonation:manage")));
        assert!(!auth.has(Check::Permission("org:impersonation:read")));
    }

    #[test]
    fn admins_hold_every_permission() {
        let o = OrgClaim {
            id: "org_1".into(),
            slg: "acme".into(),
            rol: "admin".into(),
            per: "".into(),
            fpm: "".into(),
        };
        let auth = AuthObject::from_claims(&claims(Some(o), None));
        assert!(auth.has(Check::Permission("org:anything:at_all")));
    }
}
