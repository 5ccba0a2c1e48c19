//! `/api/me/identities…`: the user's accounts at sign-in providers.

use actix_web::{HttpResponse, delete, get, web};
use serde::Serialize;
use utoipa::ToSchema;

use crate::auth::extractors::Auth;
use crate::clock::now_ms;
use crate::db::identities::{self, Identity};
use crate::error::{AppResult, ErrorBody};
use crate::ids::IdentityId;
use crate::services::oauth;
use crate::state::AppState;

#[derive(Serialize, ToSchema)]
pub struct IdentityList {
    pub data: Vec<Identity>,
}

/// The user's linked identities (OAuth / OpenID Connect providers), oldest first.
#[utoipa::path(
    tag = "me",
    security(("session_token" = [])),
    responses((status = 200, body = IdentityList), (status = 401, body = ErrorBody))
)]
#[get("/me/identities")]
#[tracing::instrument(skip_all, fields(user_id = %auth.user_id))]
pub async fn list_identities(state: web::Data<AppState>, auth: Auth) -> AppResult<web::Json<IdentityList>> {
    let data = identities::list_for_user(&state.db.pool, &auth.user_id).await?;
    Ok(web::Json(IdentityList { data }))
}

/// Unlinks an identity: the provider no longer signs this user in. The last way to sign
/// in (no password and no other identity) cannot be removed: 409. Another user's
/// identity: 404.
#[utoipa::path(
    tag = "me",
    security(("session_token" = [])),
    params(("id" = String, Path, description = "`idn_…`")),
    responses(
        (status = 204),
        (status = 401, body = ErrorBody),
        (status = 403, description = "An impersonated session", body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "The last way to sign in", body = ErrorBody),
    )
)]
#[delete("/me/identities/{id}")]
#[tracing::instrument(skip_all, fields(user_id = %auth.user_id, identity_id = %id))]
pub async fn unlink_identity(
    state: web::Data<AppState>,
    auth: Auth,
    id: web::Path<IdentityId>,
) -> AppResult<HttpResponse> {
    auth.forbid_impersonation()?;
    oauth::unlink(&state, &auth.user_id, id.as_str(), now_ms()).await?;
    Ok(HttpResponse::NoContent().finish())
}
