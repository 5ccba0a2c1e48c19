//! Invitations to the active organization.

use actix_web::{HttpResponse, get, post, web};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use utoipa_actix_web::service_config::ServiceConfig;

use crate::auth::extractors::{ManageMembers, RequirePermission};
use crate::auth::password::check_email;
use crate::clock::now_ms;
use crate::db::invitations::{self, Invitation};
use crate::db::pagination::{Page, PageQuery};
use crate::error::{AppError, AppResult, ErrorBody, FieldErrors};
use crate::ids::InvitationId;
use crate::services;
use crate::state::AppState;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(create_invitation)
        .service(list_invitations)
        .service(revoke_invitation);
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateInvitation {
    #[schema(example = "bob@example.com")]
    pub email: String,
    #[schema(example = "org:member")]
    pub role: String,
}

/// Invites an address with a role and emails it a link to
/// `PUBLIC_URL/accept-invitation?ticket=…` (`organizationInvitation.created`).
#[utoipa::path(
    tag = "admin",
    security(("session_token" = ["org:admin"])),
    request_body = CreateInvitation,
    responses(
        (status = 201, body = Invitation),
        (status = 400, description = "No active organization", body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, description = "Not an admin (as the membership is now)", body = ErrorBody),
        (status = 409, description = "Already a member, or already invited (pending)", body = ErrorBody),
        (status = 422, description = "A bad email, or an unknown role (`fields.role`)", body = ErrorBody),
    )
)]
#[post("/admin/invitations")]
#[tracing::instrument(skip_all, fields(org_id = %admin.org_id))]
async fn create_invitation(
    state: web::Data<AppState>,
    admin: RequirePermission<ManageMembers>,
    body: web::Json<CreateInvitation>,
) -> AppResult<HttpResponse> {
    let body = body.into_inner();
    let mut fields = FieldErrors::new();
    check_email(&body.email, &mut fields);
    if !fields.is_empty() {
        return Err(AppError::Validation(fields));
    }
    let invitation = services::invitations::create(
        &state,
        &admin.org_id,
        body.email.trim(),
        &body.role,
        &admin.user_id,
        now_ms(),
    )
    .await?;
    Ok(HttpResponse::Created().json(invitation))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct InvitationQuery {
    /// `pending`, `accepted`, `revoked` or `expired`.
    pub status: Option<String>,
    /// 1 to 100, default 20.
    pub limit: Option<String>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// The organization's invitations, newest first, optionally of one status.
#[utoipa::path(
    tag = "admin",
    security(("session_token" = ["org:admin"])),
    params(InvitationQuery),
    responses(
        (status = 200, body = Page<Invitation>),
        (status = 400, description = "No active organization", body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 422, body = ErrorBody),
    )
)]
#[get("/admin/invitations")]
#[tracing::instrument(skip_all, fields(org_id = %admin.org_id))]
async fn list_invitations(
    state: web::Data<AppState>,
    admin: RequirePermission<ManageMembers>,
    query: web::Query<InvitationQuery>,
) -> AppResult<web::Json<Page<Invitation>>> {
    let query = query.into_inner();
    let status = query.status.filter(|s| !s.is_empty());
    let mut fields = FieldErrors::new();
    if let Some(s) = status.as_deref()
        && !matches!(s, "pending" | "accepted" | "revoked" | "expired")
    {
        fields.insert("status".into(), "must be pending, accepted, revoked or expired".into());
    }
    let page = PageQuery {
        limit: query.limit,
        cursor: query.cursor,
    }
    .parse();
    let page = match page {
        Ok(page) if fields.is_empty() => page,
        Ok(_) => return Err(AppError::Validation(fields)),
        Err(AppError::Validation(more)) => {
            fields.extend(more);
            return Err(AppError::Validation(fields));
        }
        Err(other) => return Err(other),
    };
    let rows = invitations::list(&state.db.pool, &admin.org_id, status.as_deref(), &page, now_ms()).await?;
    Ok(web::Json(Page::from_rows(rows, page.limit, |i| {
        (i.created_at, i.id.as_str())
    })))
}

/// Revokes a pending invitation (`organizationInvitation.revoked`): its link stops working.
#[utoipa::path(
    tag = "admin",
    security(("session_token" = ["org:admin"])),
    params(("id" = String, Path, description = "`orginv_…`")),
    responses(
        (status = 200, body = Invitation),
        (status = 400, description = "No active organization", body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "Not pending", body = ErrorBody),
    )
)]
#[post("/admin/invitations/{id}/revoke")]
#[tracing::instrument(skip_all, fields(org_id = %admin.org_id, invitation = %id))]
async fn revoke_invitation(
    state: web::Data<AppState>,
    admin: RequirePermission<ManageMembers>,
    id: web::Path<InvitationId>,
) -> AppResult<web::Json<Invitation>> {
    let revoked = services::invitations::revoke(&state, &admin.org_id, &id, &admin.user_id, now_ms()).await?;
    Ok(web::Json(revoked))
}
