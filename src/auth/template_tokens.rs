//! Tokens for other services from JWT templates (Clerk's `getToken({ template })`),
//! and the custom claims that the session token template adds to session tokens.

use jsonwebtoken::{Algorithm, EncodingKey};
use serde_json::{Map, Value};

use super::shortcodes::{self, OrgValues, TemplateContext};
use super::tokens::{TEMPLATE_TOKEN_CATEGORY, sign_compact};
use crate::db::jwt_templates::JwtTemplate;
use crate::db::{memberships, users};
use crate::error::{AppError, AppResult};
use crate::ids::random_token;
use crate::startup::AppState;

/// Claims a JWT template may not set: the server always sets them.
pub const TEMPLATE_RESERVED: &[&str] = &["iss", "exp", "iat", "nbf", "jti", "sub"];
/// Claims the session token template may not set: the session token's own.
pub const SESSION_RESERVED: &[&str] = &[
    "sub", "sid", "iss", "azp", "iat", "nbf", "exp", "jti", "v", "fva", "sts", "o", "fea",
];
/// Custom session claims above this size (compact JSON) are refused at save time and
/// left out at mint time: a session token must stay well under a 4 KB cookie.
pub const MAX_SESSION_CLAIMS_BYTES: usize = 1200;

impl AppState {
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
    /// key (with its `kid`); HS256 templates their own secret.
    pub fn template_token(&self, template: &JwtTemplate, ctx: &TemplateContext, now_ms: i64) -> AppResult<String> {
        let Value::Object(mut claims) = shortcodes::render(&template.claims, ctx) else {
            return Err(AppError::internal("a stored template is not an object"));
        };
        let iat = now_ms / 1000;
        for key in TEMPLATE_RESERVED {
            claims.remove(*key);
        }
        claims.insert("iss".into(), Value::from(self.config.issuer.clone()));
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
                let (key, kid) = crate::auth::keys::custom_rsa_key(pem).map_err(AppError::internal)?;
                sign_compact(&key, Algorithm::RS256, Some(&kid), TEMPLATE_TOKEN_CATEGORY, &claims)
            }
            _ => {
                let key = self.keys.signing();
                sign_compact(
                    &key.encoding,
                    key.algorithm,
                    Some(&key.kid),
                    TEMPLATE_TOKEN_CATEGORY,
                    &claims,
                )
            }
        };
        token.map_err(AppError::internal)
    }

    /// The rendered custom claims for a session token, or none when they would make the
    /// token too large (logged: a user's data can grow after the template was saved).
    pub async fn custom_session_claims(
        &self,
        user_id: &str,
        session_id: &str,
        org_id: Option<&str>,
    ) -> AppResult<Map<String, Value>> {
        let template = crate::db::jwt_templates::session_template(&self.db.pool).await?;
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
