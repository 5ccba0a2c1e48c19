//! The client API (Clerk's Frontend API): sign-up, sign-in, and the sessions of this
//! device, named by the `__client` cookie.

mod sessions;
mod sign_in;

use actix_web::cookie::{Cookie, SameSite, time::Duration as CookieDuration};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_actix_web::service_config::ServiceConfig;

use crate::auth::permissions;
use crate::auth::tokens::OrgClaim;
use crate::clock::now_ms;
use crate::db::memberships;
use crate::db::sessions::Session;
use crate::db::users::User;
use crate::error::AppResult;
use crate::startup::AppState;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(sign_in::sign_up)
        .service(sign_in::sign_in)
        .service(sessions::get_client)
        .service(sessions::refresh_token)
        .service(sessions::end_session)
        .service(sessions::end_all_sessions)
        .service(sessions::touch_session)
        .service(sessions::verify_session)
        .service(sessions::template_token);
}

/// The session cookie read by the middleware after the `Authorization` header.
pub const SESSION_COOKIE: &str = "__session";

/// Answer of sign-up and sign-in.
#[derive(Serialize, ToSchema)]
pub struct AuthResponse {
    pub user: User,
    pub session: Session,
    /// A session token (also set as the `__session` cookie).
    pub jwt: String,
}

#[derive(Serialize, ToSchema)]
pub struct TokenResponse {
    pub jwt: String,
}

/// A session with a fresh token (switching organization, reverification).
#[derive(Serialize, ToSchema)]
pub struct AuthSessionResponse {
    pub session: Session,
    pub jwt: String,
}

#[derive(Serialize, ToSchema)]
pub struct SessionResponse {
    pub session: Session,
}

/// This device and its live sessions.
#[derive(Serialize, ToSchema)]
pub struct ClientResponse {
    #[schema(example = "client_01jd3m5x0e8k2q9v7w4h6r1t3y")]
    pub id: String,
    pub sessions: Vec<Session>,
    pub last_active_session_id: Option<String>,
}

impl AppState {
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
                    crate::db::sessions::set_active_organization(&self.db.pool, &session.id, None, now_ms()).await?;
                }
            }
        }
        let org_id = org.as_ref().map(|o| o.id.clone());
        let custom = self
            .custom_session_claims(&session.user_id, &session.id, org_id.as_deref())
            .await?;
        let input = crate::auth::tokens::SessionTokenInput {
            user_id: &session.user_id,
            session_id: &session.id,
            azp: origin,
            last_verified_at_ms: session.last_verified_at,
            org,
            fea,
            custom,
        };
        let token = self
            .issuer
            .issue(input, crate::clock::now_ms())
            .map_err(crate::error::AppError::internal)?;
        self.metrics.incr("session_tokens_issued");
        Ok(token)
    }

    /// The `__session` cookie carrying `jwt`, living as long as the token.
    pub fn session_cookie(&self, jwt: String) -> Cookie<'static> {
        Cookie::build(SESSION_COOKIE, jwt)
            .path("/")
            .http_only(true)
            .same_site(SameSite::Lax)
            .secure(self.config.is_production())
            .max_age(CookieDuration::seconds(self.issuer.lifetime_secs()))
            .finish()
    }

    /// An expired `__session` cookie, sent when the session it held has ended.
    pub fn cleared_session_cookie(&self) -> Cookie<'static> {
        let mut cookie = self.session_cookie(String::new());
        cookie.make_removal();
        cookie
    }
}
