//! Users, with their `public_metadata`.

use actix_web::{HttpResponse, delete, get, patch, web};
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_actix_web::service_config::ServiceConfig;

use crate::auth::password::check_name;
use crate::auth::secret_key::BackendKey;
use crate::clock::now_ms;
use crate::db::pagination::{Page, PageQuery};
use crate::db::users::{self, User};
use crate::error::{AppError, AppResult, ErrorBody, FieldErrors};
use crate::ids::UserId;
use crate::state::AppState;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(list_users)
        .service(get_user)
        .service(update_user)
        .service(remove_second_factor);
}

/// `public_metadata` is readable in tokens; keep it small.
pub const MAX_METADATA_BYTES: usize = 8 * 1024;

fn not_found(id: &str) -> AppError {
    AppError::NotFound(format!("no user `{id}`"))
}

/// Users, newest first.
#[utoipa::path(
    tag = "backend",
    security(("secret_key" = [])),
    params(PageQuery),
    responses((status = 200, body = Page<User>), (status = 401, body = ErrorBody), (status = 422, body = ErrorBody))
)]
#[get("/users")]
async fn list_users(
    state: web::Data<AppState>,
    _key: BackendKey,
    query: web::Query<PageQuery>,
) -> AppResult<web::Json<Page<User>>> {
    let page = query.parse()?;
    let rows = users::list(&state.db.pool, &page).await?;
    Ok(web::Json(Page::from_rows(rows, page.limit, |u| {
        (u.created_at, u.id.as_str())
    })))
}

#[utoipa::path(
    tag = "backend",
    security(("secret_key" = [])),
    params(("id" = String, Path)),
    responses((status = 200, body = User), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody))
)]
#[get("/users/{id}")]
async fn get_user(state: web::Data<AppState>, _key: BackendKey, id: web::Path<UserId>) -> AppResult<web::Json<User>> {
    let user = users::find_by_id(&state.db.pool, &id)
        .await?
        .ok_or_else(|| not_found(&id))?;
    Ok(web::Json(user))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateUser {
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    /// Replaces the user's public metadata (a JSON object, at most 8 KiB). Session
    /// tokens carry it from their next refresh when the session template reads it.
    #[schema(value_type = Option<Object>)]
    pub public_metadata: Option<serde_json::Value>,
}

#[utoipa::path(
    tag = "backend",
    security(("secret_key" = [])),
    params(("id" = String, Path)),
    request_body = UpdateUser,
    responses((status = 200, body = User), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody))
)]
#[patch("/users/{id}")]
#[tracing::instrument(skip_all, fields(user_id = %id))]
async fn update_user(
    state: web::Data<AppState>,
    _key: BackendKey,
    id: web::Path<UserId>,
    body: web::Json<UpdateUser>,
) -> AppResult<web::Json<User>> {
    let body = body.into_inner();
    let mut fields = FieldErrors::new();
    check_name("first_name", body.first_name.as_deref(), &mut fields);
    check_name("last_name", body.last_name.as_deref(), &mut fields);
    if let Some(metadata) = &body.public_metadata {
        if !metadata.is_object() {
            fields.insert("public_metadata".into(), "must be a JSON object".into());
        } else if metadata.to_string().len() > MAX_METADATA_BYTES {
            fields.insert(
                "public_metadata".into(),
                format!("must be at most {MAX_METADATA_BYTES} bytes of JSON"),
            );
        }
    }
    if !fields.is_empty() {
        return Err(AppError::Validation(fields));
    }
    let user = users::update(
        &state.db.pool,
        &id,
        body.first_name.as_deref(),
        body.last_name.as_deref(),
        body.public_metadata.as_ref(),
        now_ms(),
    )
    .await?
    .ok_or_else(|| not_found(&id))?;
    Ok(web::Json(user))
}

/// Turns a user's second factor off (support, for a user who lost their authenticator
/// and backup codes): the authenticator and backup codes are removed (`user.updated`).
#[utoipa::path(
    tag = "backend",
    security(("secret_key" = [])),
    params(("id" = String, Path)),
    responses(
        (status = 204),
        (status = 401, body = ErrorBody),
        (status = 404, description = "No such user, or no second factor", body = ErrorBody),
    )
)]
#[delete("/users/{id}/mfa")]
#[tracing::instrument(skip_all, fields(user_id = %id))]
async fn remove_second_factor(
    state: web::Data<AppState>,
    _key: BackendKey,
    id: web::Path<UserId>,
) -> AppResult<HttpResponse> {
    users::find_by_id(&state.db.pool, &id)
        .await?
        .ok_or_else(|| not_found(&id))?;
    crate::services::second_factor::remove(&state, &id).await?;
    Ok(HttpResponse::NoContent().finish())
}
