//! `/api/me/sessions…`: the user's sessions on every device (the seeds' SessionList).

use actix_web::{get, post, web};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_actix_web::service_config::ServiceConfig;

use crate::auth::extractors::Auth;
use crate::clock::now_ms;
use crate::db::pagination::{Page, PageQuery};
use crate::db::sessions::{self, Session};
use crate::error::{AppError, AppResult, ErrorBody};
use crate::ids::SessionId;
use crate::services;
use crate::state::AppState;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(list_sessions)
        .service(revoke_all_sessions)
        .service(revoke_session);
}

/// A session, and whether it is the one making the request.
#[derive(Serialize, ToSchema)]
pub struct AccountSession {
    #[serde(flatten)]
    pub session: Session,
    pub current: bool,
}

/// The user's active sessions on every device, newest first; `current` marks this one.
#[utoipa::path(
    tag = "me",
    security(("session_token" = [])),
    params(PageQuery),
    responses((status = 200, body = Page<AccountSession>), (status = 401, body = ErrorBody), (status = 422, body = ErrorBody))
)]
#[get("/me/sessions")]
#[tracing::instrument(skip_all, fields(user_id = %auth.user_id))]
async fn list_sessions(
    state: web::Data<AppState>,
    auth: Auth,
    query: web::Query<PageQuery>,
) -> AppResult<web::Json<Page<AccountSession>>> {
    let page = query.parse()?;
    let rows = sessions::list_live_for_user(&state.db.pool, &auth.user_id, now_ms(), &page).await?;
    let page = Page::from_rows(rows, page.limit, |s| (s.created_at, s.id.as_str()));
    Ok(web::Json(Page {
        data: page
            .data
            .into_iter()
            .map(|session| AccountSession {
                current: session.id == auth.session_id,
                session,
            })
            .collect(),
        next_cursor: page.next_cursor,
    }))
}

/// Revokes one of the user's own sessions (on any device); its token stops working on
/// its next request, on every instance. Another user's session is 404.
#[utoipa::path(
    tag = "me",
    security(("session_token" = [])),
    params(("sid" = String, Path)),
    responses(
        (status = 200, description = "The session, now `revoked` (or as it already was)", body = Session),
        (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody),
    )
)]
#[post("/me/sessions/{sid}/revoke")]
#[tracing::instrument(skip_all, fields(user_id = %auth.user_id, sid = %sid))]
async fn revoke_session(
    state: web::Data<AppState>,
    auth: Auth,
    sid: web::Path<SessionId>,
) -> AppResult<web::Json<Session>> {
    let not_found = || AppError::NotFound(format!("no session `{sid}` of yours"));
    let session = sessions::find(&state.db.pool, &sid)
        .await?
        .filter(|s| s.user_id == auth.user_id)
        .ok_or_else(not_found)?;
    let revoked = services::sessions::revoke(&state, &session.id).await?;
    Ok(web::Json(revoked.unwrap_or(session)))
}

#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct RevokeAll {
    /// Keep the session making the request (default `false`: sign out everywhere).
    #[serde(default)]
    pub keep_current: bool,
}

#[derive(Serialize, ToSchema)]
pub struct RevokedCount {
    pub revoked: usize,
}

/// Signs the user out of every device (optionally keeping this session).
#[utoipa::path(
    tag = "me",
    security(("session_token" = [])),
    request_body(content = Option<RevokeAll>, description = "Optional; an empty body means `{\"keep_current\": false}`"),
    responses(
        (status = 200, body = RevokedCount),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 422, body = ErrorBody),
    )
)]
#[post("/me/sessions/revoke-all")]
#[tracing::instrument(skip_all, fields(user_id = %auth.user_id))]
async fn revoke_all_sessions(
    state: web::Data<AppState>,
    auth: Auth,
    body: web::Bytes,
) -> AppResult<web::Json<RevokedCount>> {
    let options: RevokeAll = if body.iter().all(u8::is_ascii_whitespace) {
        RevokeAll::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| crate::error::json_body_error(&e))?
    };
    let keep = options.keep_current.then_some(auth.session_id.as_str());
    let revoked = services::sessions::revoke_all_for_user(&state, &auth.user_id, keep).await?;
    Ok(web::Json(RevokedCount { revoked: revoked.len() }))
}
