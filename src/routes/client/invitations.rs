//! `GET /v1/invitations/{ticket}`: what an emailed invitation link offers, before the
//! invitee signs in or up (public: the ticket is the secret).

use actix_web::{get, web};

use crate::clock::now_ms;
use crate::error::{AppResult, ErrorBody};
use crate::services::invitations::{self, InvitationPreview};
use crate::state::AppState;

/// The organization, address, role and status of the invitation a ticket names.
/// Unknown: 404.
#[utoipa::path(
    tag = "client",
    params(("ticket" = String, Path, description = "The `ticket` of the emailed link")),
    responses(
        (status = 200, body = InvitationPreview),
        (status = 404, description = "No such ticket", body = ErrorBody),
    )
)]
#[get("/invitations/{ticket}")]
#[tracing::instrument(skip_all)]
pub async fn preview(state: web::Data<AppState>, ticket: web::Path<String>) -> AppResult<web::Json<InvitationPreview>> {
    Ok(web::Json(invitations::preview(&state, &ticket, now_ms()).await?))
}
