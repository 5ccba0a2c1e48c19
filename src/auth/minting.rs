//! Minting: session tokens for a session (with its organization's role and permissions
//! read now, and the custom session claims), the `__session` cookie that carries them,
//! and tokens from JWT templates for other services. The guard's handshake, the client
//! API and the services all mint through one [`TokenMinter`].

use std::sync::Arc;

use actix_web::cookie::Cookie;
use jsonwebtoken::{Algorithm, EncodingKey};
use serde_json::{Map, Value};

use super::cookies::SessionCookies;
use super::keys::KeyRing;
use super::permissions;
use super::shortcodes::{self, OrgValues, TemplateContext};
use super::template_tokens::{MAX_SESSION_CLAIMS_BYTES, SESSION_RESERVED, TEMPLATE_RESERVED};
use super::tokens::{OrgClaim, SessionTokenInput, SessionTokenIssuer, TEMPLATE_TOKEN_CATEGORY, sign_compact};
use crate::clock::now_ms;
use crate::db::jwt_templates::{self, JwtTemplate};
use crate::db::sessions::Session;
use crate::db::{Db, memberships, sessions, users};
use crate::error::{AppError, AppResult};
use crate::ids::random_token;
use crate::telemetry::Metrics;

pub struct TokenMinter {
    issuer: SessionTokenIssuer,
    keys: Arc<KeyRing>,
    /// `iss` of template tokens: the instance's issuer.
    issuer_url: String,
    cookies: SessionCookies,
    db: Db,
    metrics: Arc<Metrics>,
}

impl TokenMinter {
    pub fn new(
        keys: Arc<KeyRing>,
        issuer_url: String,
        lifetime_secs: i64,
        secure_cookies: bool,
        db: Db,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            issuer: SessionTokenIssuer::new(keys.clone(), issuer_url.clone(), lifetime_secs),
            keys,
            issuer_url,
            cookies: SessionCookies {
                lifetime_secs,
                secure: secure_cookies,
            },
            db,
            metrics,
        }
    }

    /// Seconds a session token lives.
    pub fn lifetime_secs(&self) -> i64 {
        self.issuer.lifetime_secs()
    }

    /// A fresh session token for `session`, with `azp` from the (already checked) Origin
    /// and, when an organization is active, its role and permissions read now. A session
    /// whose membership has gone falls back to the personal account.
    pub async fn session_token(&self, session: &Session, origin: Option<&str>) -> AppResult<String> {
        let mut org = None;
        let mut fea = None;
        if let Some(org_id) = &session.active_organization_id {
            match memberships::org_context(&self.db.pool, &session.user_id, org_id).await? {
                Some(ctx) => {
                    let encoded = permissions::encode(ctx.permissions.iter().map(String::as_str));
                    fea = Some(encoded.fea).filter(|f| !f.is_empty());
                    org = Some(OrgClaim {
                        id: ctx.organization_id,
                        slg: ctx.slug,
                        rol: ctx.role.strip_prefix("org:").unwrap_or(&ctx.role).to_owned(),
                        per: encoded.per,
                        fpm: encoded.fpm,
                    });
                }
                None => {
                    sessions::set_active_organization(&self.db.pool, &session.id, None, now_ms()).await?;
                }
            }
        }
        let org_id = org.as_ref().map(|o| o.id.clone());
        let custom = self
            .custom_session_claims(&session.user_id, &session.id, org_id.as_deref())
            .await?;
        let input = SessionTokenInput {
            user_id: &session.user_id,
            session_id: &session.id,
            azp: origin,
            last_verified_at_ms: session.last_verified_at,
            last_second_factor_at_ms: session.last_second_factor_at,
            act: session.actor.clone(),
            org,
            fea,
            custom,
        };
        let token = self.issuer.issue(input, now_ms()).map_err(AppError::internal)?;
        self.metrics.incr("session_tokens_issued");
        Ok(token)
    }

    /// The `__session` cookie carrying `jwt`, living as long as the token.
    pub fn cookie(&self, jwt: String) -> Cookie<'static> {
        self.cookies.carrying(jwt)
    }

    /// An expired `__session` cookie, sent when the session it held has ended.
    pub fn cleared_cookie(&self) -> Cookie<'static> {
        self.cookies.cleared()
    }

    /// A token from the JWT template named `name` for this user, session and
    /// organization (Clerk's `getToken({ template })`). Unknown template: 404.
    pub async fn template_token_named(
        &self,
        name: &str,
        user_id: &str,
        session_id: &str,
        org_id: Option<&str>,
    ) -> AppResult<String> {
        let template = jwt_templates::find_by_name(&self.db.pool, name)
            .await?
            .ok_or_else(|| AppError::NotFound(format!("no JWT template named `{name}`")))?;
        let ctx = self.template_context(user_id, Some(session_id), org_id).await?;
        self.template_token(&template, &ctx, now_ms())
    }

    /// What shortcodes can read for this user, session and organization.
    pub async fn template_context(
        &self,
        user_id: &str,
        session_id: Option<&str>,
        org_id: Option<&str>,
    ) -> AppResult<TemplateContext> {
        let user = users::find_by_id(&self.db.pool, user_id)
            .await?
            .ok_or_else(|| AppError::Unauthorized("the session's user no longer exists".to_owned()))?;
        let org = match org_id {
            Some(org_id) => memberships::org_context(&self.db.pool, user_id, org_id)
                .await?
                .map(|m| OrgValues {
                    id: m.organization_id,
                    slug: m.slug,
                    name: m.name,
                    role: m.role,
                }),
            None => None,
        };
        Ok(TemplateContext {
            user_id: user.id,
            email: user.email,
            first_name: user.first_name,
            last_name: user.last_name,
            public_metadata: user.public_metadata,
            user_created_at: user.created_at / 1000,
            org,
            session_id: session_id.map(str::to_owned),
        })
    }

    /// Renders and signs a template token. RS256 templates use the instance's active
    /// key (with its `kid`) or, with a custom key, their own; HS256 templates their secret.
    pub fn template_token(&self, template: &JwtTemplate, ctx: &TemplateContext, now_ms: i64) -> AppResult<String> {
        let Value::Object(mut claims) = shortcodes::render(&template.claims, ctx) else {
            return Err(AppError::internal("a stored template is not an object"));
        };
        let iat = now_ms / 1000;
        for key in TEMPLATE_RESERVED {
            claims.remove(*key);
        }
        claims.insert("iss".into(), Value::from(self.issuer_url.clone()));
        claims.insert("sub".into(), Value::from(ctx.user_id.clone()));
        claims.insert("iat".into(), Value::from(iat));
        claims.insert("nbf".into(), Value::from(iat - template.allowed_clock_skew));
        claims.insert("exp".into(), Value::from(iat + template.lifetime));
        claims.insert("jti".into(), Value::from(random_token(15)));
        let token = match (template.signing_algorithm.as_str(), &template.signing_key) {
            ("HS256", Some(secret)) => {
                let key = EncodingKey::from_secret(secret.as_bytes());
                sign_compact(&key, Algorithm::HS256, None, TEMPLATE_TOKEN_CATEGORY, &claims)
            }
            ("RS256", Some(pem)) => {
                let (key, kid) = super::keys::custom_rsa_key(pem).map_err(AppError::internal)?;
                sign_compact(&key, Algorithm::RS256, Some(&kid), TEMPLATE_TOKEN_CATEGORY, &claims)
            }
            _ => {
                return self
                    .keys
                    .signing()
                    .sign_compact(TEMPLATE_TOKEN_CATEGORY, &claims)
                    .map_err(AppError::internal);
            }
        };
        token.map_err(AppError::internal)
    }

    /// The rendered custom claims for a session token, or none when they would make the
    /// token too large (logged: a user's data can grow after the template was saved).
    async fn custom_session_claims(
        &self,
        user_id: &str,
        session_id: &str,
        org_id: Option<&str>,
    ) -> AppResult<Map<String, Value>> {
        let template = jwt_templates::session_template(&self.db.pool).await?;
        if template.as_object().is_none_or(Map::is_empty) {
            return Ok(Map::new());
        }
        let ctx = self.template_context(user_id, Some(session_id), org_id).await?;
        let Value::Object(mut claims) = shortcodes::render(&template, &ctx) else {
            return Ok(Map::new());
        };
        claims.retain(|k, _| !SESSION_RESERVED.contains(&k.as_str()));
        let size = Value::Object(claims.clone()).to_string().len();
        if size > MAX_SESSION_CLAIMS_BYTES {
            tracing::warn!(
                user_id,
                size,
                limit = MAX_SESSION_CLAIMS_BYTES,
                "custom session claims too large: token issued without them"
            );
            self.metrics.incr("custom_claims_dropped");
            return Ok(Map::new());
        }
        Ok(claims)
    }
}
