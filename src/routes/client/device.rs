//! This device's sessions (named by the `__client` cookie): list, refresh, switch
//! organization, re-verify, template tokens, sign out.

use actix_web::{HttpResponse, delete, get, post, web};

use super::{AuthSessionResponse, ClientResponse, SessionResponse, TokenResponse};
use crate::auth::cookies::ClientCookie;
use crate::auth::password::verify_password;
use crate::auth::request::ClientContext;
use crate::clock::now_ms;
use crate::db::clients::Client;
use crate::db::sessions::{Session, SessionStatus};
use crate::db::{clients, memberships, sessions, users};
use crate::error::{AppError, AppResult, ErrorBody};
use crate::ids::{IdKind, SessionId, has_prefix};
use crate::services;
use crate::services::second_factor::Strategy;
use crate::state::AppState;

/// How often a refresh may write `last_active_at` for one session.
const LAST_ACTIVE_GRANULARITY_MS: i64 = 10_000;

/// The client named by the `__client` cookie, or 401.
async fn current_client(state: &AppState, cookie: &ClientCookie) -> AppResult<Client> {
    let id = cookie
        .client_id()
        .ok_or_else(|| AppError::Unauthorized("no client on this device: sign in first".to_owned()))?;
    clients::find(&state.db.pool, &id)
        .await?
        .ok_or_else(|| AppError::Unauthorized("this device's client no longer exists: sign in again".to_owned()))
}

/// A session of this client; sessions of other devices do not exist from here (404).
async fn client_session(state: &AppState, client: &Client, sid: &SessionId) -> AppResult<Session> {
    let not_found = || AppError::NotFound(format!("no session `{sid}` on this client"));
    sessions::find(&state.db.pool, sid)
        .await?
        .filter(|s| s.client_id == client.id)
        .ok_or_else(not_found)
}

async fn client_response(state: &AppState, client: Client) -> AppResult<ClientResponse> {
    let live = sessions::list_live_for_client(&state.db.pool, &client.id, now_ms()).await?;
    let last_active_session_id = client
        .last_active_session_id
        .filter(|id| live.iter().any(|s| &s.id == id))
        .or_else(|| live.last().map(|s| s.id.clone()));
    Ok(ClientResponse {
        id: client.id,
        sessions: live,
        last_active_session_id,
    })
}

/// This device: its active sessions and the one last active.
#[utoipa::path(
    tag = "client",
    security(("client_cookie" = [])),
    responses((status = 200, body = ClientResponse), (status = 401, body = ErrorBody))
)]
#[get("/client")]
#[tracing::instrument(skip_all)]
pub async fn get_client(state: web::Data<AppState>, cookie: ClientCookie) -> AppResult<web::Json<ClientResponse>> {
    let client = current_client(&state, &cookie).await?;
    Ok(web::Json(client_response(&state, client).await?))
}

/// Refreshes: a new session token for an active session of this device.
#[utoipa::path(
    tag = "client",
    security(("client_cookie" = [])),
    params(("sid" = String, Path, description = "Session id")),
    responses(
        (status = 200, description = "A new token; also set as the `__session` cookie", body = TokenResponse),
        (status = 401, description = "No client, or the session is ended, revoked (`unauthorized`) or expired (`session_expired`)", body = ErrorBody),
        (status = 403, description = "Cross-origin request", body = ErrorBody),
        (status = 404, description = "No such session on this device", body = ErrorBody),
    )
)]
#[post("/client/sessions/{sid}/tokens")]
#[tracing::instrument(skip_all, fields(sid = %sid))]
pub async fn refresh_token(
    state: web::Data<AppState>,
    ctx: ClientContext,
    cookie: ClientCookie,
    sid: web::Path<SessionId>,
) -> AppResult<HttpResponse> {
    let session = live_client_session(&state, &cookie, &sid).await?;
    let now = now_ms();
    sessions::touch_last_active(&state.db.pool, &session.id, now, LAST_ACTIVE_GRANULARITY_MS).await?;
    let jwt = state.tokens.session_token(&session, ctx.origin.as_deref()).await?;
    Ok(HttpResponse::Ok()
        .cookie(state.tokens.cookie(jwt.clone()))
        .json(TokenResponse { jwt }))
}

/// Signs out one session of this device.
#[utoipa::path(
    tag = "client",
    security(("client_cookie" = [])),
    params(("sid" = String, Path, description = "Session id")),
    responses(
        (status = 200, description = "The session, now `ended` (or as it already was)", body = SessionResponse),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
    )
)]
#[post("/client/sessions/{sid}/end")]
#[tracing::instrument(skip_all, fields(sid = %sid))]
pub async fn end_session(
    state: web::Data<AppState>,
    _ctx: ClientContext,
    cookie: ClientCookie,
    sid: web::Path<SessionId>,
) -> AppResult<HttpResponse> {
    let client = current_client(&state, &cookie).await?;
    let session = client_session(&state, &client, &sid).await?;
    let was_current = client.last_active_session_id.as_deref() == Some(session.id.as_str());
    let ended = services::sessions::end(&state, &client, &session.id).await?;
    let mut response = HttpResponse::Ok();
    if was_current {
        response.cookie(state.tokens.cleared_cookie());
    }
    Ok(response.json(SessionResponse {
        session: ended.unwrap_or(session),
    }))
}

/// Signs out every session on this device.
#[utoipa::path(
    tag = "client",
    security(("client_cookie" = [])),
    responses(
        (status = 200, description = "This device, with no sessions left", body = ClientResponse),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
    )
)]
#[delete("/client/sessions")]
#[tracing::instrument(skip_all)]
pub async fn end_all_sessions(
    state: web::Data<AppState>,
    _ctx: ClientContext,
    cookie: ClientCookie,
) -> AppResult<HttpResponse> {
    let client = current_client(&state, &cookie).await?;
    services::sessions::end_all_for_client(&state, &client.id).await?;
    let client = Client {
        last_active_session_id: None,
        ..client
    };
    Ok(HttpResponse::Ok()
        .cookie(state.tokens.cleared_cookie())
        .json(client_response(&state, client).await?))
}

/// A live session of this device, or the error a refresh would give.
async fn live_client_session(state: &AppState, cookie: &ClientCookie, sid: &SessionId) -> AppResult<Session> {
    let client = current_client(state, cookie).await?;
    let session = client_session(state, &client, sid).await?;
    let now = now_ms();
    match session.status {
        SessionStatus::Active if session.expire_at > now => Ok(session),
        SessionStatus::Active | SessionStatus::Expired => {
            services::sessions::expire(state, &session.id).await?;
            Err(AppError::SessionExpired(
                "the session has expired: sign in again".to_owned(),
            ))
        }
        status => Err(AppError::Unauthorized(format!(
            "the session is {}: sign in again",
            status.as_str()
        ))),
    }
}

#[derive(serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TouchRequest {
    /// The organization to make active, or `null` for the personal account.
    #[serde(default)]
    #[schema(example = "org_01jd3m5x0e8k2q9v7w4h6r1t3y")]
    pub active_organization_id: Option<String>,
}

/// Switches the session's active organization (`null`: the personal account) and
/// returns a token for it at once.
#[utoipa::path(
    tag = "client",
    security(("client_cookie" = [])),
    params(("sid" = String, Path, description = "Session id")),
    request_body = TouchRequest,
    responses(
        (status = 200, description = "The session and a token with the new organization claims", body = AuthSessionResponse),
        (status = 401, body = ErrorBody),
        (status = 403, description = "Not a member of that organization, or a cross-origin request", body = ErrorBody),
        (status = 404, body = ErrorBody),
    )
)]
#[post("/client/sessions/{sid}/touch")]
#[tracing::instrument(skip_all, fields(sid = %sid))]
pub async fn touch_session(
    state: web::Data<AppState>,
    ctx: ClientContext,
    cookie: ClientCookie,
    sid: web::Path<SessionId>,
    body: web::Json<TouchRequest>,
) -> AppResult<HttpResponse> {
    let mut session = live_client_session(&state, &cookie, &sid).await?;
    let target = body.into_inner().active_organization_id.filter(|id| !id.is_empty());
    if let Some(org_id) = &target {
        let member = has_prefix(org_id, IdKind::Organization)
            && memberships::org_context(&state.db.pool, &session.user_id, org_id)
                .await?
                .is_some();
        if !member {
            return Err(AppError::Forbidden(
                "you are not a member of that organization".to_owned(),
            ));
        }
    }
    let now = now_ms();
    sessions::set_active_organization(&state.db.pool, &session.id, target.as_deref(), now).await?;
    // Touching a session also makes it this device's active one (Clerk's `setActive`).
    clients::set_last_active_session(&state.db.pool, &session.client_id, Some(&session.id), now).await?;
    sessions::touch_last_active(&state.db.pool, &session.id, now, LAST_ACTIVE_GRANULARITY_MS).await?;
    session.active_organization_id = target;
    let jwt = state.tokens.session_token(&session, ctx.origin.as_deref()).await?;
    Ok(HttpResponse::Ok()
        .cookie(state.tokens.cookie(jwt.clone()))
        .json(AuthSessionResponse { session, jwt }))
}

#[derive(serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VerifyRequest {
    /// The first factor: the account's password.
    pub password: Option<String>,
    /// The second factor instead: `totp` or `backup_code` (with `code`).
    #[schema(example = "totp")]
    pub strategy: Option<String>,
    #[schema(example = "123456")]
    pub code: Option<String>,
}

/// Re-proves a factor for a session (reverification): `{password}` resets the token's
/// `fva[0]`, `{strategy: "totp" | "backup_code", code}` resets `fva[1]` (a backup code
/// used here is used up), so routes guarded by a recent-verification limit accept the
/// new token. Wrong: 422 (`fields.password` or `fields.code`), counted by the sign-in
/// throttle.
#[utoipa::path(
    tag = "client",
    security(("client_cookie" = [])),
    params(("sid" = String, Path, description = "Session id")),
    request_body = VerifyRequest,
    responses(
        (status = 200, description = "The session and a token with `fva` reset", body = AuthSessionResponse),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 422, description = "Wrong password (`fields.password`) or code (`fields.code`)", body = ErrorBody),
        (status = 429, description = "Too many failed attempts", body = ErrorBody),
    )
)]
#[post("/client/sessions/{sid}/verify")]
#[tracing::instrument(skip_all, fields(sid = %sid))]
pub async fn verify_session(
    state: web::Data<AppState>,
    ctx: ClientContext,
    cookie: ClientCookie,
    sid: web::Path<SessionId>,
    body: web::Json<VerifyRequest>,
) -> AppResult<HttpResponse> {
    let mut session = live_client_session(&state, &cookie, &sid).await?;
    let body = body.into_inner();
    let proof = match (body.password, body.strategy, body.code) {
        (Some(password), None, None) => Proof::Password(password),
        (None, Some(strategy), Some(code)) => Proof::SecondFactor(Strategy::parse(&strategy)?, code),
        (None, Some(_), None) => return Err(AppError::field("code", "is required with strategy")),
        _ => {
            return Err(AppError::field(
                "password",
                "give either password, or strategy and code",
            ));
        }
    };
    let user = users::find_by_id(&state.db.pool, &session.user_id)
        .await?
        .ok_or_else(|| AppError::Unauthorized("the session's user no longer exists".to_owned()))?;
    let email_key = users::normalize_email(&user.email);
    if let Err(wait) = state.throttle.check(&email_key, &ctx.ip).await {
        return Err(AppError::RateLimited {
            retry_after_secs: wait.as_secs().max(1),
        });
    }
    let now = now_ms();
    match proof {
        Proof::Password(password) => {
            let fits = password.len() <= crate::auth::password::MAX_PASSWORD_BYTES;
            if !fits || !verify_password(password, user.password_hash.clone()).await? {
                state.throttle.record_failure(&email_key, &ctx.ip).await;
                return Err(AppError::field("password", "is incorrect"));
            }
            sessions::set_verified(&state.db.pool, &session.id, now).await?;
            session.last_verified_at = now;
        }
        Proof::SecondFactor(strategy, code) => {
            let mut tx = state.db.begin().await?;
            // The write first: on SQLite the transaction then holds the write lock.
            sessions::set_second_factor_verified(&mut *tx, &session.id, now).await?;
            if !services::second_factor::check(&state, &mut tx, &user.id, strategy, &code, now).await? {
                drop(tx);
                state.throttle.record_failure(&email_key, &ctx.ip).await;
                return Err(services::second_factor::wrong_code());
            }
            tx.commit().await?;
            session.last_second_factor_at = Some(now);
        }
    }
    let jwt = state.tokens.session_token(&session, ctx.origin.as_deref()).await?;
    Ok(HttpResponse::Ok()
        .cookie(state.tokens.cookie(jwt.clone()))
        .json(AuthSessionResponse { session, jwt }))
}

enum Proof {
    Password(String),
    SecondFactor(Strategy, String),
}

/// A token from a JWT template for a live session of this device (Clerk's
/// `getToken({ template })`). Unlike session tokens it is not set as `__session`: it
/// is meant for another service, and it is not a session token.
#[utoipa::path(
    tag = "client",
    security(("client_cookie" = [])),
    params(("sid" = String, Path, description = "Session id"), ("template" = String, Path, description = "Template name")),
    responses(
        (status = 200, body = TokenResponse),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, description = "No such session on this device, or no such template", body = ErrorBody),
    )
)]
#[post("/client/sessions/{sid}/tokens/{template}")]
#[tracing::instrument(skip_all, fields(sid = %path.0, template = %path.1))]
pub async fn template_token(
    state: web::Data<AppState>,
    _ctx: ClientContext,
    cookie: ClientCookie,
    path: web::Path<(SessionId, String)>,
) -> AppResult<web::Json<TokenResponse>> {
    let (sid, name) = path.into_inner();
    let session = live_client_session(&state, &cookie, &sid).await?;
    let jwt = state
        .tokens
        .template_token_named(
            &name,
            &session.user_id,
            &session.id,
            session.active_organization_id.as_deref(),
        )
        .await?;
    Ok(web::Json(TokenResponse { jwt }))
}
