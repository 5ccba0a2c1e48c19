//! Signing in without a password: `POST /v1/sign-in/email-code` emails a code and a
//! link; the code goes to `POST /v1/sign-in/email-code/attempt`, the link opens
//! `GET /v1/sign-in/email-link`, which signs that browser in and redirects.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, get, post, web};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use super::recovery::{Accepted, EmailRequest};
use super::{signed_in, signed_in_redirect};
use crate::auth::cookies::ClientCookie;
use crate::auth::password::check_email;
use crate::auth::request::{ClientContext, NavigationContext, same_origin_redirect};
use crate::clock::now_ms;
use crate::db::users::normalize_email;
use crate::error::{AppError, AppResult, ErrorBody, FieldErrors};
use crate::services::email_flows;
use crate::services::sign_in::{FirstFactor, complete};
use crate::state::AppState;

/// Emails a sign-in code and a link (`PUBLIC_URL/v1/sign-in/email-link?token=…`) to the
/// account with this address. Always 202; an unknown address gets nothing (this is
/// sign-in, not sign-up), and at most one such email goes to an address per minute.
#[utoipa::path(
    tag = "client",
    request_body = EmailRequest,
    responses(
        (status = 202, description = "Taken (an email was sent if the address has an account)", body = Accepted),
        (status = 403, description = "Cross-origin request", body = ErrorBody),
        (status = 422, description = "Not an email address", body = ErrorBody),
    )
)]
#[post("/sign-in/email-code")]
#[tracing::instrument(skip_all)]
pub async fn request_code(
    state: web::Data<AppState>,
    _ctx: ClientContext,
    body: web::Json<EmailRequest>,
) -> AppResult<HttpResponse> {
    let mut fields = FieldErrors::new();
    check_email(&body.email, &mut fields);
    if !fields.is_empty() {
        return Err(AppError::Validation(fields));
    }
    email_flows::request_sign_in_code(&state, &body.email, now_ms()).await?;
    Ok(HttpResponse::Accepted().json(Accepted {}))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EmailCodeAttempt {
    #[schema(example = "ada@example.com")]
    pub email: String,
    #[schema(example = "123456")]
    pub code: String,
}

/// Signs in with the emailed code. A wrong, used or expired code and an unknown
/// address get the same 401; failures count in the sign-in throttle (429).
#[utoipa::path(
    tag = "client",
    request_body = EmailCodeAttempt,
    responses(
        (status = 200, description = "Signed in (`__client` and `__session` cookies set); or `needs_second_factor` for a user with a second factor", body = super::FirstFactorResponse),
        (status = 401, description = "Wrong, used or expired code, or an unknown address", body = ErrorBody),
        (status = 403, description = "Cross-origin request", body = ErrorBody),
        (status = 429, description = "Too many failed attempts", body = ErrorBody),
    )
)]
#[post("/sign-in/email-code/attempt")]
#[tracing::instrument(skip_all)]
pub async fn sign_in_with_code(
    state: web::Data<AppState>,
    ctx: ClientContext,
    cookie: ClientCookie,
    body: web::Json<EmailCodeAttempt>,
) -> AppResult<HttpResponse> {
    let email_key = normalize_email(&body.email);
    if let Err(wait) = state.throttle.check(&email_key, &ctx.ip).await {
        return Err(AppError::RateLimited {
            retry_after_secs: wait.as_secs().max(1),
        });
    }
    let now = now_ms();
    let Some((tx, user)) = email_flows::check_sign_in_code(&state, &body.email, &body.code, now).await? else {
        state.throttle.record_failure(&email_key, &ctx.ip).await;
        state.metrics.incr("sign_in_failures");
        let target = crate::db::users::find_by_email(&state.db.pool, &body.email).await?;
        let target = target.as_ref().map(|u| u.id.as_str());
        crate::db::audit::sign_in_failed(&state.db.pool, &body.email, target, "email_code", now).await?;
        return Err(AppError::Unauthorized("invalid email or code".to_owned()));
    };
    state.throttle.record_success(&email_key).await;
    let outcome = complete(
        &state,
        tx,
        cookie.client_id().as_deref(),
        user,
        FirstFactor::EmailCode,
        &ctx,
        now,
    )
    .await?;
    signed_in(&state, &cookie, &ctx, outcome, HttpResponse::Ok()).await
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EmailLinkQuery {
    /// The token from the email.
    pub token: Option<String>,
    /// Where to go once signed in (same-origin only; default `/account`).
    pub redirect_url: Option<String>,
}

/// Opens an emailed sign-in link: signs this browser in (the `__client` and
/// `__session` cookies) and redirects to `redirect_url` (same-origin) or `/account`. A
/// bad, used or expired link redirects to `/sign-in?error=link_invalid`, with no cookie.
#[utoipa::path(
    tag = "client",
    params(EmailLinkQuery),
    responses(
        (status = 303, description = "Signed in (cookies set) and sent on; or sent to `/sign-in?error=link_invalid`"),
    )
)]
#[get("/sign-in/email-link")]
#[tracing::instrument(skip_all)]
pub async fn sign_in_with_link(
    state: web::Data<AppState>,
    req: HttpRequest,
    ctx: NavigationContext,
    cookie: ClientCookie,
    query: web::Query<EmailLinkQuery>,
) -> AppResult<HttpResponse> {
    let now = now_ms();
    let token = query.token.as_deref().unwrap_or_default();
    let Some((tx, user)) = email_flows::use_sign_in_link(&state, token, now).await? else {
        return Ok(see_other("/sign-in?error=link_invalid"));
    };
    let ctx = ctx.0;
    let outcome = complete(
        &state,
        tx,
        cookie.client_id().as_deref(),
        user,
        FirstFactor::EmailLink,
        &ctx,
        now,
    )
    .await?;
    let to = same_origin_redirect(&req, &state.config, query.redirect_url.as_deref());
    signed_in_redirect(&state, &cookie, &ctx, outcome, &to).await
}

fn see_other(location: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, location))
        .finish()
}
