//! The client API (Clerk's Frontend API): sign-up, sign-in, and the sessions of this
//! device, named by the `__client` cookie.

mod sessions;
mod sign_in;

use actix_web::cookie::{Cookie, SameSite, time::Duration as CookieDuration};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_actix_web::service_config::ServiceConfig;

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
        .service(sessions::end_all_sessions);
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
    /// A fresh session token for `session`, with `azp` from the (already checked) Origin.
    pub fn session_token(&self, session: &Session, origin: Option<&str>) -> AppResult<String> {
        let input = crate::auth::tokens::SessionTokenInput {
            user_id: &session.user_id,
            session_id: &session.id,
            azp: origin,
            last_verified_at_ms: session.last_verified_at,
            org: None,
            fea: None,
            custom: Default::default(),
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
