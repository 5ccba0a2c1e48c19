//! The client API (Clerk's Frontend API): sign-up, sign-in, and the sessions of this
//! device, named by the `__client` cookie.

mod device;
mod invitations;
mod oauth;
mod passwordless;
mod recovery;
mod sign_in;
mod tickets;

pub use recovery::Accepted;

use actix_web::{HttpResponse, HttpResponseBuilder, get, web};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_actix_web::service_config::ServiceConfig;

use crate::auth::cookies::ClientCookie;
use crate::auth::request::ClientContext;
use crate::db::sessions::Session;
use crate::db::sign_in_attempts::SignInAttempt;
use crate::db::users::User;
use crate::error::AppResult;
use crate::services::sign_in::SignInOutcome;
use crate::state::AppState;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(sign_in::sign_up)
        .service(sign_in::sign_in)
        .service(sign_in::verify_sign_up)
        .service(sign_in::second_factor)
        .service(recovery::request_reset)
        .service(recovery::reset_password)
        .service(passwordless::request_code)
        .service(passwordless::sign_in_with_code)
        .service(passwordless::sign_in_with_link)
        .service(invitations::preview)
        .service(tickets::accept_ticket)
        .service(oauth::start)
        .service(oauth::callback)
        .service(environment)
        .service(device::get_client)
        .service(device::refresh_token)
        .service(device::end_session)
        .service(device::end_all_sessions)
        .service(device::touch_session)
        .service(device::verify_session)
        .service(device::template_token);
}

/// Answer of every sign-in or sign-up that opened a session.
#[derive(Serialize, ToSchema)]
pub struct AuthResponse {
    /// `complete`: the session is open.
    #[schema(example = "complete")]
    pub status: &'static str,
    pub user: User,
    pub session: Session,
    /// A session token (also set as the `__session` cookie).
    pub jwt: String,
}

/// What a first factor answers: `complete` (a session), or `needs_second_factor`.
/// (A type for the API document; handlers answer with either struct directly.)
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
#[allow(clippy::large_enum_variant)]
pub enum FirstFactorResponse {
    Complete(AuthResponse),
    NeedsSecondFactor(NeedsSecondFactorResponse),
}

/// A first factor proven by a user with a second factor: no session, no token yet.
#[derive(Serialize, ToSchema)]
pub struct NeedsSecondFactorResponse {
    #[schema(example = "needs_second_factor")]
    pub status: &'static str,
    pub sign_in: SignInAttempt,
}

/// The answer to a completed sign-in: the device cookie points at the client (under a
/// fresh key), the token is minted and set as `__session`, and the body says `complete`.
/// A sign-in that needs the second factor answers 200 `needs_second_factor` with the
/// attempt; the cookie then points at the client the attempt belongs to, and no session
/// or token exists.
pub async fn signed_in(
    state: &AppState,
    cookie: &ClientCookie,
    ctx: &ClientContext,
    outcome: SignInOutcome,
    mut builder: HttpResponseBuilder,
) -> AppResult<HttpResponse> {
    let (user, session) = match outcome {
        SignInOutcome::Complete { user, session } => (user, session),
        SignInOutcome::NeedsSecondFactor { attempt } => {
            cookie.sign_in(&attempt.client_id);
            return Ok(HttpResponse::Ok().json(NeedsSecondFactorResponse {
                status: "needs_second_factor",
                sign_in: attempt,
            }));
        }
    };
    let jwt = open_on_device(state, cookie, ctx, &session).await?;
    Ok(builder.cookie(state.tokens.cookie(jwt.clone())).json(AuthResponse {
        status: "complete",
        user,
        session,
        jwt,
    }))
}

/// Points the device cookie at the session's client (under a fresh key, so a cookie
/// planted before sign-in never carries the session) and mints its first token.
pub async fn open_on_device(
    state: &AppState,
    cookie: &ClientCookie,
    ctx: &ClientContext,
    session: &Session,
) -> AppResult<String> {
    cookie.sign_in(&session.client_id);
    state.tokens.session_token(session, ctx.origin.as_deref()).await
}

/// A browser signed in by a navigation (an emailed link, a ticket, an OAuth callback):
/// the cookies set, and a 303 to `location`.
pub async fn signed_in_redirect(
    state: &AppState,
    cookie: &ClientCookie,
    ctx: &ClientContext,
    outcome: SignInOutcome,
    location: &str,
) -> AppResult<HttpResponse> {
    let session = match outcome {
        SignInOutcome::Complete { session, .. } => session,
        SignInOutcome::NeedsSecondFactor { attempt } => {
            // The sign-in page asks for the second factor, then goes on to `location`.
            cookie.sign_in(&attempt.client_id);
            let next = format!(
                "/sign-in?second_factor={}&redirect_url={}",
                attempt.id,
                crate::auth::guard::percent_encode(location)
            );
            return Ok(HttpResponse::SeeOther()
                .insert_header((actix_web::http::header::LOCATION, next))
                .finish());
        }
    };
    let jwt = open_on_device(state, cookie, ctx, &session).await?;
    Ok(HttpResponse::SeeOther()
        .cookie(state.tokens.cookie(jwt))
        .insert_header((actix_web::http::header::LOCATION, location))
        .finish())
}

/// What pages and SDKs need to know about how users sign in here.
#[derive(Serialize, ToSchema)]
pub struct Environment {
    /// Names of the configured OAuth / OpenID Connect providers.
    pub oauth_providers: Vec<String>,
    /// `optional`, `required` or `off`.
    #[schema(example = "optional")]
    pub email_verification: &'static str,
    pub password_sign_in: bool,
}

/// How users can sign in on this instance.
#[utoipa::path(tag = "client", responses((status = 200, body = Environment)))]
#[get("/environment")]
async fn environment(state: web::Data<AppState>) -> web::Json<Environment> {
    web::Json(Environment {
        oauth_providers: state.oauth.names(),
        email_verification: state.config.email.verification.as_str(),
        password_sign_in: true,
    })
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
