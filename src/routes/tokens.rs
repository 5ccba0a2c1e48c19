//! `POST /api/tokens/{template}`: a token from a JWT template for the signed-in user.

use actix_web::{post, web};
use utoipa_actix_web::service_config::ServiceConfig;

use crate::auth::extractors::Auth;
use crate::error::{AppResult, ErrorBody};
use crate::routes::client::TokenResponse;
use crate::state::AppState;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(template_token);
}

/// A token rendered from the named JWT template (e.g. `supabase`) for the signed-in user,
/// with organization shortcodes from the active organization. Unknown template: 404.
#[utoipa::path(
    tag = "me",
    security(("session_token" = [])),
    params(("template" = String, Path, description = "The template's name")),
    responses(
        (status = 200, body = TokenResponse),
        (status = 401, body = ErrorBody),
        (status = 404, description = "No template with that name", body = ErrorBody),
    )
)]
#[post("/tokens/{template}")]
#[tracing::instrument(skip_all, fields(user_id = %auth.user_id, template = %template))]
async fn template_token(
    state: web::Data<AppState>,
    auth: Auth,
    template: web::Path<String>,
) -> AppResult<web::Json<TokenResponse>> {
    let jwt = state
        .tokens
        .template_token_named(&template, &auth.user_id, &auth.session_id, auth.org_id.as_deref())
        .await?;
    Ok(web::Json(TokenResponse { jwt }))
}
