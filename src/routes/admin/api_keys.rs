//! The active organization's API keys.

use actix_web::{HttpResponse, delete, get, post, web};
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_actix_web::service_config::ServiceConfig;

use crate::auth::extractors::{ManageOrganization, RequirePermission};
use crate::db::api_keys::{self, ApiKey};
use crate::db::pagination::{Page, PageQuery};
use crate::error::{AppResult, ErrorBody};
use crate::ids::ApiKeyId;
use crate::services::api_keys::{self as key_service, CreatedApiKey};
use crate::state::AppState;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(create_key).service(list_keys).service(revoke_key);
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateApiKey {
    #[schema(example = "nightly export")]
    pub name: String,
    /// Permissions of the instance the key holds (e.g. `org:data:read`).
    #[schema(example = json!(["org:data:read"]))]
    pub scopes: Vec<String>,
    /// 60 to 31536000; absent: the key does not expire.
    pub expires_in_seconds: Option<i64>,
}

/// Makes an API key for the organization (`apiKey.created`); its `secret` (`gk_…`) is
/// shown only in this answer.
#[utoipa::path(
    tag = "admin",
    security(("session_token" = ["org:admin"])),
    request_body = CreateApiKey,
    responses(
        (status = 201, body = CreatedApiKey),
        (status = 400, description = "No active organization", body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 422, description = "An unknown scope (`fields.scopes`), a bad name or lifetime", body = ErrorBody),
    )
)]
#[post("/admin/api-keys")]
#[tracing::instrument(skip_all, fields(org_id = %admin.org_id))]
async fn create_key(
    state: web::Data<AppState>,
    admin: RequirePermission<ManageOrganization>,
    body: web::Json<CreateApiKey>,
) -> AppResult<HttpResponse> {
    let body = body.into_inner();
    let created = key_service::create(
        &state,
        &admin.org_id,
        &body.name,
        &body.scopes,
        body.expires_in_seconds,
        &admin.user_id,
    )
    .await?;
    Ok(HttpResponse::Created()
        .insert_header((actix_web::http::header::CACHE_CONTROL, "no-store"))
        .json(created))
}

/// The organization's live keys, newest first (never their secrets).
#[utoipa::path(
    tag = "admin",
    security(("session_token" = ["org:admin"])),
    params(PageQuery),
    responses(
        (status = 200, body = Page<ApiKey>),
        (status = 400, description = "No active organization", body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 422, body = ErrorBody),
    )
)]
#[get("/admin/api-keys")]
#[tracing::instrument(skip_all, fields(org_id = %admin.org_id))]
async fn list_keys(
    state: web::Data<AppState>,
    admin: RequirePermission<ManageOrganization>,
    query: web::Query<PageQuery>,
) -> AppResult<web::Json<Page<ApiKey>>> {
    let page = query.parse()?;
    let rows = api_keys::list(&state.db.pool, &admin.org_id, &page).await?;
    Ok(web::Json(Page::from_rows(rows, page.limit, |k| {
        (k.created_at, k.id.as_str())
    })))
}

/// Revokes a key (`apiKey.revoked`): it stops on its next request, on every instance.
#[utoipa::path(
    tag = "admin",
    security(("session_token" = ["org:admin"])),
    params(("id" = String, Path, description = "`ak_…`")),
    responses(
        (status = 204),
        (status = 400, description = "No active organization", body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, description = "No such live key in this organization", body = ErrorBody),
    )
)]
#[delete("/admin/api-keys/{id}")]
#[tracing::instrument(skip_all, fields(org_id = %admin.org_id, key = %id))]
async fn revoke_key(
    state: web::Data<AppState>,
    admin: RequirePermission<ManageOrganization>,
    id: web::Path<ApiKeyId>,
) -> AppResult<HttpResponse> {
    key_service::revoke(&state, &admin.org_id, &id, &admin.user_id).await?;
    Ok(HttpResponse::NoContent().finish())
}
