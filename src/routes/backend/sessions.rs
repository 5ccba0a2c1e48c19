//! Sessions of a user, and revoking one.

use actix_web::{get, post, web};
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_actix_web::service_config::ServiceConfig;

use crate::auth::secret_key::BackendKey;
use crate::db::pagination::{Page, PageQuery};
use crate::db::sessions::{self, Session};
use crate::error::{AppError, AppResult, ErrorBody};
use crate::ids::SessionId;
use crate::services;
use crate::state::AppState;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(list_sessions).service(revoke_session);
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SessionsQuery {
    /// Whose sessions (required).
    pub user_id: String,
    pub limit: Option<String>,
    pub cursor: Option<String>,
}

/// A user's sessions in every status, newest first.
#[utoipa::path(
    tag = "backend",
    security(("secret_key" = [])),
    params(SessionsQuery),
    responses((status = 200, body = Page<Session>), (status = 401, body = ErrorBody), (status = 422, body = ErrorBody))
)]
#[get("/sessions")]
async fn list_sessions(
    state: web::Data<AppState>,
    _key: BackendKey,
    query: web::Query<SessionsQuery>,
) -> AppResult<web::Json<Page<Session>>> {
    let query = query.into_inner();
    let page = PageQuery {
        limit: query.limit,
        cursor: query.cursor,
    }
    .parse()?;
    let rows = sessions::list_for_user(&state.db.pool, &query.user_id, &page).await?;
    Ok(web::Json(Page::from_rows(rows, page.limit, |s| {
        (s.created_at, s.id.as_str())
    })))
}

/// Revokes a session: its token stops working on its next request, on every instance.
#[utoipa::path(
    tag = "backend",
    security(("secret_key" = [])),
    params(("sid" = String, Path)),
    responses(
        (status = 200, description = "The session, now `revoked` (or as it already was)", body = Session),
        (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody),
    )
)]
#[post("/sessions/{sid}/revoke")]
#[tracing::instrument(skip_all, fields(sid = %sid))]
async fn revoke_session(
    state: web::Data<AppState>,
    _key: BackendKey,
    sid: web::Path<SessionId>,
) -> AppResult<web::Json<Session>> {
    let not_found = || AppError::NotFound(format!("no session `{sid}`"));
    let session = sessions::find(&state.db.pool, &sid).await?.ok_or_else(not_found)?;
    let revoked = services::sessions::revoke(&state, &session.id).await?;
    Ok(web::Json(revoked.unwrap_or(session)))
}
