//! `/api/org/settings`: one JSON object per organization; members read it, admins write it.

use actix_web::{get, put, web};
use utoipa_actix_web::service_config::ServiceConfig;

use crate::auth::extractors::{OrgAuth, RequireAdmin};
use crate::auth::permissions::ADMIN_ROLE;
use crate::clock::now_ms;
use crate::db::{memberships, org_settings};
use crate::error::{AppError, AppResult, ErrorBody};
use crate::state::AppState;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(get_settings).service(put_settings);
}

pub const MAX_SETTINGS_BYTES: usize = 16 * 1024;

/// The caller's role in the organization as it is now (the token may be up to a
/// minute older than a removal or demotion).
async fn current_role(state: &AppState, user_id: &str, org_id: &str) -> AppResult<String> {
    memberships::org_context(&state.db.pool, user_id, org_id)
        .await?
        .map(|m| m.role)
        .ok_or_else(|| AppError::Forbidden("you are not a member of the active organization".to_owned()))
}

/// The active organization's settings (`{}` until set). Any member may read them.
#[utoipa::path(
    tag = "organizations",
    security(("session_token" = [])),
    responses(
        (status = 200, description = "The settings object", body = Object),
        (status = 400, description = "`no_active_organization`", body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
    )
)]
#[get("/org/settings")]
#[tracing::instrument(skip_all, fields(org_id = %org.org_id))]
async fn get_settings(state: web::Data<AppState>, org: OrgAuth) -> AppResult<web::Json<serde_json::Value>> {
    current_role(&state, &org.user_id, &org.org_id).await?;
    let settings = org_settings::get(&state.db.pool, &org.org_id).await?;
    Ok(web::Json(settings.unwrap_or_else(|| serde_json::json!({}))))
}

/// Replaces the active organization's settings with the given JSON object (role `org:admin`).
#[utoipa::path(
    tag = "organizations",
    security(("session_token" = ["org:admin"])),
    request_body(content = Object, description = "Any JSON object, at most 16 KiB"),
    responses(
        (status = 200, description = "The stored settings", body = Object),
        (status = 400, description = "`no_active_organization`", body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, description = "Not `org:admin`", body = ErrorBody),
        (status = 422, description = "Not a JSON object, or too large", body = ErrorBody),
    )
)]
#[put("/org/settings")]
#[tracing::instrument(skip_all, fields(org_id = %admin.org_id))]
async fn put_settings(
    state: web::Data<AppState>,
    admin: RequireAdmin,
    body: web::Json<serde_json::Value>,
) -> AppResult<web::Json<serde_json::Value>> {
    if current_role(&state, &admin.user_id, &admin.org_id).await? != ADMIN_ROLE {
        return Err(AppError::Forbidden("this needs the role org:admin".to_owned()));
    }
    let settings = body.into_inner();
    if !settings.is_object() {
        return Err(AppError::field("body", "must be a JSON object"));
    }
    if settings.to_string().len() > MAX_SETTINGS_BYTES {
        return Err(AppError::field(
            "body",
            format!("must be at most {MAX_SETTINGS_BYTES} bytes of JSON"),
        ));
    }
    org_settings::upsert(&state.db.pool, &admin.org_id, &settings, &admin.user_id, now_ms()).await?;
    Ok(web::Json(settings))
}
