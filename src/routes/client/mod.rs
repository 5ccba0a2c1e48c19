//! The client API (Clerk's Frontend API): sign-up, sign-in, and the sessions of this
//! device, named by the `__client` cookie.

mod device;
mod sign_in;

use serde::Serialize;
use utoipa::ToSchema;
use utoipa_actix_web::service_config::ServiceConfig;

use crate::db::sessions::Session;
use crate::db::users::User;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(sign_in::sign_up)
        .service(sign_in::sign_in)
        .service(device::get_client)
        .service(device::refresh_token)
        .service(device::end_session)
        .service(device::end_all_sessions)
        .service(device::touch_session)
        .service(device::verify_session)
        .service(device::template_token);
}

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
