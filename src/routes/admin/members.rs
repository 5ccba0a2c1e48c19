//! Members of the active organization.

use actix_web::{HttpResponse, delete, get, patch, post, web};
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_actix_web::service_config::ServiceConfig;

use crate::auth::extractors::{RequireAdmin, Reverified};
use crate::db::memberships::{self, Membership};
use crate::db::pagination::{Page, PageQuery};
use crate::db::users;
use crate::error::{AppError, AppResult, ErrorBody, FieldErrors};
use crate::ids::{IdKind, UserId, has_prefix};
use crate::services;
use crate::state::AppState;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(list_members)
        .service(add_member)
        .service(update_member)
        .service(remove_member);
}

/// Removing a member is sensitive: the admin's password must have been proven within
/// this many minutes (else 403 `reverification_required`).
pub const REMOVE_MEMBER_REVERIFY_MINUTES: i64 = 10;

/// Members of the active organization, newest first.
#[utoipa::path(
    tag = "admin",
    security(("session_token" = ["org:admin"])),
    params(PageQuery),
    responses(
        (status = 200, body = Page<Membership>),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 422, body = ErrorBody),
    )
)]
#[get("/admin/members")]
#[tracing::instrument(skip_all, fields(org_id = %admin.org_id))]
async fn list_members(
    state: web::Data<AppState>,
    admin: RequireAdmin,
    query: web::Query<PageQuery>,
) -> AppResult<web::Json<Page<Membership>>> {
    let page = query.parse()?;
    let rows = memberships::list(&state.db.pool, &admin.org_id, &page).await?;
    Ok(web::Json(Page::from_rows(rows, page.limit, |m| {
        (m.created_at, m.id.as_str())
    })))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddMember {
    /// The user to add (or give `email`).
    pub user_id: Option<String>,
    pub email: Option<String>,
    #[schema(example = "org:member")]
    pub role: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateMember {
    #[schema(example = "org:admin")]
    pub role: String,
}

/// Adds a user to the active organization.
#[utoipa::path(
    tag = "admin",
    security(("session_token" = ["org:admin"])),
    request_body = AddMember,
    responses(
        (status = 201, body = Membership),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, description = "No such user", body = ErrorBody),
        (status = 409, description = "Already a member", body = ErrorBody),
        (status = 422, body = ErrorBody),
    )
)]
#[post("/admin/members")]
#[tracing::instrument(skip_all, fields(org_id = %admin.org_id))]
async fn add_member(
    state: web::Data<AppState>,
    admin: RequireAdmin,
    body: web::Json<AddMember>,
) -> AppResult<HttpResponse> {
    let body = body.into_inner();
    let user = match (body.user_id.as_deref(), body.email.as_deref()) {
        (Some(id), None) if has_prefix(id, IdKind::User) => users::find_by_id(&state.db.pool, id).await?,
        (Some(_), None) => None,
        (None, Some(email)) if email.len() <= 254 => users::find_by_email(&state.db.pool, email).await?,
        (None, Some(_)) => None,
        _ => {
            let mut fields = FieldErrors::new();
            fields.insert("user_id".into(), "give exactly one of user_id and email".into());
            fields.insert("email".into(), "give exactly one of user_id and email".into());
            return Err(AppError::Validation(fields));
        }
    };
    services::memberships::check_role(&state, &body.role).await?;
    let user = user.ok_or_else(|| AppError::NotFound("no such user".to_owned()))?;
    let membership = services::memberships::add(&state, &admin.org_id, &user.id, &body.role, &admin.user_id).await?;
    Ok(HttpResponse::Created().json(membership))
}

/// Changes a member's role. Demoting the last admin is 409.
#[utoipa::path(
    tag = "admin",
    security(("session_token" = ["org:admin"])),
    params(("user_id" = String, Path)),
    request_body = UpdateMember,
    responses(
        (status = 200, body = Membership),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "The last admin cannot be demoted", body = ErrorBody),
        (status = 422, body = ErrorBody),
    )
)]
#[patch("/admin/members/{user_id}")]
#[tracing::instrument(skip_all, fields(org_id = %admin.org_id, user_id = %user_id))]
async fn update_member(
    state: web::Data<AppState>,
    admin: RequireAdmin,
    user_id: web::Path<UserId>,
    body: web::Json<UpdateMember>,
) -> AppResult<web::Json<Membership>> {
    let role = body.into_inner().role;
    let updated = services::memberships::change_role(&state, &admin.org_id, &user_id, &role, &admin.user_id).await?;
    Ok(web::Json(updated))
}

/// Removes a member. Removing the last admin is 409. Needs a password proof within
/// the last 10 minutes (`fva`), else 403 `reverification_required`.
#[utoipa::path(
    tag = "admin",
    security(("session_token" = ["org:admin"])),
    params(("user_id" = String, Path)),
    responses(
        (status = 204),
        (status = 401, body = ErrorBody),
        (status = 403, description = "Not an admin, or `reverification_required`", body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "The last admin cannot be removed", body = ErrorBody),
    )
)]
#[delete("/admin/members/{user_id}")]
#[tracing::instrument(skip_all, fields(org_id = %admin.org_id, user_id = %user_id))]
async fn remove_member(
    state: web::Data<AppState>,
    admin: RequireAdmin,
    _fresh: Reverified<REMOVE_MEMBER_REVERIFY_MINUTES>,
    user_id: web::Path<UserId>,
) -> AppResult<HttpResponse> {
    services::memberships::remove(&state, &admin.org_id, &user_id, &admin.user_id).await?;
    Ok(HttpResponse::NoContent().finish())
}
