//! `POST /api/tokens/{template}`: a token from a JWT template for the signed-in user.

use actix_web::{post, web};
use utoipa_actix_web::service_config::ServiceConfig;

use crate::auth::extractors::Auth;
use crate::clock::now_ms;
use crate::db::jwt_templates;
use crate::error::{AppError, AppResult, ErrorBody};
use crate::routes::client::TokenResponse;
use crate::startup::AppState;

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
#[post("/api/tokens/{template}")]
#[tracing::instrument(skip_all, fields(user_id = %auth.user_id, template = %template))]
async fn template_token(
    state: web::Data<AppState>,
    auth: Auth,
    template: web::Path<String>,
) -> AppResult<web::Json<TokenResponse>> {
    let template = jwt_templates::find_by_name(&state.db.pool, &template)
        .await?
        .ok_or_else(|| AppError::NotFound(format!("no JWT template named `{template}`")))?;
    let ctx = state
        .template_context(&auth.user_id, Some(&auth.session_id), auth.org_id.as_deref())
        .await?;
    let jwt = state.template_token(&template, &ctx, now_ms())?;
    Ok(web::Json(TokenResponse { jwt }))
}
