//! The active organization itself: rename it or change its slug, delete it.

use actix_web::{HttpResponse, delete, patch, web};
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_actix_web::service_config::ServiceConfig;

use crate::auth::extractors::{DeleteOrganization, ManageOrganization, RequirePermission, Reverified};
use crate::db::organizations::Organization;
use crate::error::{AppError, AppResult, ErrorBody, FieldErrors};
use crate::routes::organizations::{check_name, valid_slug};
use crate::services;
use crate::state::AppState;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(update_organization).service(delete_organization);
}

/// Deleting an organization needs a password proven within this many minutes.
pub const DELETE_ORGANIZATION_REVERIFY_MINUTES: i64 = 10;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateOrganization {
    #[schema(example = "Acme Corporation")]
    pub name: Option<String>,
    /// Lowercase letters, digits and dashes.
    #[schema(example = "acme-corp")]
    pub slug: Option<String>,
}

/// Renames the active organization and/or changes its slug (`organization.updated`).
#[utoipa::path(
    tag = "admin",
    security(("session_token" = ["org:admin"])),
    request_body = UpdateOrganization,
    responses(
        (status = 200, body = Organization),
        (status = 400, description = "No active organization", body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, description = "Not an admin (as the membership is now)", body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "The slug is taken", body = ErrorBody),
        (status = 422, body = ErrorBody),
    )
)]
#[patch("/admin/organization")]
#[tracing::instrument(skip_all, fields(org_id = %admin.org_id))]
async fn update_organization(
    state: web::Data<AppState>,
    admin: RequirePermission<ManageOrganization>,
    body: web::Json<UpdateOrganization>,
) -> AppResult<web::Json<Organization>> {
    let body = body.into_inner();
    let mut fields = FieldErrors::new();
    let name = body.name.as_deref().map(str::trim);
    if let Some(name) = name {
        check_name(name, &mut fields);
    }
    let slug = body.slug.as_deref().map(str::trim);
    if let Some(slug) = slug
        && !valid_slug(slug)
    {
        fields.insert(
            "slug".into(),
            "must be 1 to 64 lowercase letters, digits or dashes".into(),
        );
    }
    if name.is_none() && slug.is_none() {
        fields.insert("name".into(), "give name, slug or both".into());
    }
    if !fields.is_empty() {
        return Err(AppError::Validation(fields));
    }
    let org = services::organizations::update(&state, &admin.org_id, name, slug, &admin.user_id).await?;
    Ok(web::Json(org))
}

/// Deletes the active organization (`organization.deleted`): its memberships,
/// invitations, items and settings go; sessions that had it active fall back to the
/// personal account. Needs a password proof within the last 10 minutes.
#[utoipa::path(
    tag = "admin",
    security(("session_token" = ["org:admin"])),
    responses(
        (status = 204),
        (status = 400, description = "No active organization", body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, description = "Not an admin, or `reverification_required`", body = ErrorBody),
        (status = 404, body = ErrorBody),
    )
)]
#[delete("/admin/organization")]
#[tracing::instrument(skip_all, fields(org_id = %admin.org_id))]
async fn delete_organization(
    state: web::Data<AppState>,
    _fresh: Reverified<DELETE_ORGANIZATION_REVERIFY_MINUTES>,
    admin: RequirePermission<DeleteOrganization>,
) -> AppResult<HttpResponse> {
    services::organizations::delete(&state, &admin.org_id, &admin.user_id).await?;
    Ok(HttpResponse::NoContent().finish())
}
