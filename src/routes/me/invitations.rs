//! Invitations to the signed-in user's address, accepting them, and leaving an
//! organization.

use actix_web::{HttpResponse, get, post, web};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::extractors::Auth;
use crate::clock::now_ms;
use crate::error::{AppResult, ErrorBody};
use crate::ids::{InvitationId, OrganizationId};
use crate::services::invitations::{self, Accepted, OrganizationRef};
use crate::state::AppState;

#[derive(Serialize, ToSchema)]
pub struct MyInvitation {
    #[schema(example = "orginv_01jd3m5x0e8k2q9v7w4h6r1t3y")]
    pub id: String,
    pub organization: OrganizationRef,
    #[schema(example = "org:member")]
    pub role: String,
    /// Unix milliseconds.
    pub created_at: i64,
    /// Unix milliseconds.
    pub expire_at: i64,
}

#[derive(Serialize, ToSchema)]
pub struct MyInvitations {
    pub data: Vec<MyInvitation>,
}

/// Pending invitations to the user's email address (newest first).
#[utoipa::path(
    tag = "me",
    security(("session_token" = [])),
    responses((status = 200, body = MyInvitations), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody))
)]
#[get("/me/invitations")]
#[tracing::instrument(skip_all, fields(user_id = %auth.user_id))]
pub async fn my_invitations(state: web::Data<AppState>, auth: Auth) -> AppResult<web::Json<MyInvitations>> {
    let user = super::current_user(&state, &auth.user_id).await?;
    let rows = invitations::pending_for(&state, &user.email, now_ms()).await?;
    let data = rows
        .into_iter()
        .map(|(invitation, org)| MyInvitation {
            id: invitation.id,
            organization: OrganizationRef::from(&org),
            role: invitation.role,
            created_at: invitation.created_at,
            expire_at: invitation.expire_at,
        })
        .collect();
    Ok(web::Json(MyInvitations { data }))
}

/// Accepts one of the user's invitations: the user joins with the invited role and this
/// session's active organization becomes that one (refresh the token to see it). The
/// user's email must be the invited one and verified, else 403.
#[utoipa::path(
    tag = "me",
    security(("session_token" = [])),
    params(("id" = String, Path, description = "`orginv_…`")),
    responses(
        (status = 200, body = Accepted),
        (status = 401, body = ErrorBody),
        (status = 403, description = "Another address, or the address is not verified", body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "Revoked, expired or accepted already; or a member already", body = ErrorBody),
    )
)]
#[post("/me/invitations/{id}/accept")]
#[tracing::instrument(skip_all, fields(user_id = %auth.user_id, invitation = %id))]
pub async fn accept_mine(
    state: web::Data<AppState>,
    auth: Auth,
    id: web::Path<InvitationId>,
) -> AppResult<web::Json<Accepted>> {
    let accepted = invitations::accept_id(&state, &id, &auth.user_id, &auth.session_id, now_ms()).await?;
    Ok(web::Json(accepted))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AcceptTicket {
    /// The `ticket` of the emailed link.
    pub ticket: String,
}

/// Accepts the invitation of an emailed link, signed in (as `POST
/// /api/me/invitations/{id}/accept`).
#[utoipa::path(
    tag = "me",
    security(("session_token" = [])),
    request_body = AcceptTicket,
    responses(
        (status = 200, body = Accepted),
        (status = 401, body = ErrorBody),
        (status = 403, description = "Another address, or the address is not verified", body = ErrorBody),
        (status = 404, description = "No such ticket", body = ErrorBody),
        (status = 409, description = "Revoked, expired or accepted already; or a member already", body = ErrorBody),
    )
)]
#[post("/invitations/accept")]
#[tracing::instrument(skip_all, fields(user_id = %auth.user_id))]
pub async fn accept_ticket(
    state: web::Data<AppState>,
    auth: Auth,
    body: web::Json<AcceptTicket>,
) -> AppResult<web::Json<Accepted>> {
    let accepted = invitations::accept_ticket(&state, &body.ticket, &auth.user_id, &auth.session_id, now_ms()).await?;
    Ok(web::Json(accepted))
}

/// Leaves an organization (`organizationMembership.deleted`); sessions that had it
/// active fall back to the personal account. The last admin cannot leave (409).
#[utoipa::path(
    tag = "me",
    security(("session_token" = [])),
    params(("org_id" = String, Path, description = "`org_…`")),
    responses(
        (status = 204),
        (status = 401, body = ErrorBody),
        (status = 404, description = "Not a member", body = ErrorBody),
        (status = 409, description = "The last admin", body = ErrorBody),
    )
)]
#[post("/me/organizations/{org_id}/leave")]
#[tracing::instrument(skip_all, fields(user_id = %auth.user_id, org_id = %org_id))]
pub async fn leave_organization(
    state: web::Data<AppState>,
    auth: Auth,
    org_id: web::Path<OrganizationId>,
) -> AppResult<HttpResponse> {
    crate::services::organizations::leave(&state, &org_id, &auth.user_id).await?;
    Ok(HttpResponse::NoContent().finish())
}
