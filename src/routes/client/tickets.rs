//! `GET /v1/tickets/accept?ticket=…`: opens an actor token's URL (support impersonation).

use actix_web::http::header;
use actix_web::{HttpResponse, get, web};
use serde::Deserialize;
use utoipa::IntoParams;

use super::signed_in_redirect;
use crate::auth::cookies::ClientCookie;
use crate::auth::request::NavigationContext;
use crate::error::{AppError, AppResult};
use crate::services::users;
use crate::state::AppState;

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TicketQuery {
    /// The ticket of the actor token's URL.
    pub ticket: Option<String>,
}

/// Signs this browser in as the actor token's user, in an impersonated session (its
/// tokens carry `act`), and redirects to `/account`. Single use: a used, revoked, expired
/// or unknown ticket (or a banned user) redirects to `/sign-in?error=ticket_invalid`,
/// with no session.
#[utoipa::path(
    tag = "client",
    params(TicketQuery),
    responses(
        (status = 303, description = "Signed in (cookies set) and sent to `/account`; or sent to `/sign-in?error=ticket_invalid`"),
    )
)]
#[get("/tickets/accept")]
#[tracing::instrument(skip_all)]
pub async fn accept_ticket(
    state: web::Data<AppState>,
    ctx: NavigationContext,
    cookie: ClientCookie,
    query: web::Query<TicketQuery>,
) -> AppResult<HttpResponse> {
    let ticket = query.ticket.as_deref().unwrap_or_default();
    let ctx = ctx.0;
    let invalid = || {
        HttpResponse::SeeOther()
            .insert_header((header::LOCATION, "/sign-in?error=ticket_invalid"))
            .finish()
    };
    match users::accept_actor_ticket(&state, ticket, cookie.client_id().as_deref(), &ctx).await {
        Ok(Some(outcome)) => signed_in_redirect(&state, &cookie, &ctx, outcome, "/account").await,
        Ok(None) | Err(AppError::UserBanned) => Ok(invalid()),
        Err(other) => Err(other),
    }
}
