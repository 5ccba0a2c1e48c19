//! Password reset: `POST /v1/password-reset` emails a code and a link; `POST
//! /v1/password-reset/attempt` sets a new password with the code, signs this device in,
//! and revokes every other session of the user at once.

use actix_web::{HttpResponse, post, web};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::signed_in;
use crate::auth::cookies::ClientCookie;
use crate::auth::password::{MAX_PASSWORD_BYTES, check_email, check_password_policy};
use crate::auth::request::ClientContext;
use crate::clock::now_ms;
use crate::db::users::normalize_email;
use crate::error::{AppError, AppResult, ErrorBody, FieldErrors};
use crate::services::sign_in::{FirstFactor, complete};
use crate::services::{email_flows, sessions};
use crate::state::AppState;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EmailRequest {
    #[schema(example = "ada@example.com")]
    pub email: String,
}

/// An empty JSON object: the request was taken (what happened is not told).
#[derive(Serialize, ToSchema)]
pub struct Accepted {}

/// Emails a reset code and a link (`PUBLIC_URL/reset-password?email=…&code=…`) to the
/// account with this address. The answer is the same 202 whether or not there is one,
/// and at most one reset email goes to an address per minute.
#[utoipa::path(
    tag = "client",
    request_body = EmailRequest,
    responses(
        (status = 202, description = "Taken (an email was sent if the address has an account)", body = Accepted),
        (status = 403, description = "Cross-origin request", body = ErrorBody),
        (status = 422, description = "Not an email address", body = ErrorBody),
    )
)]
#[post("/password-reset")]
#[tracing::instrument(skip_all)]
pub async fn request_reset(
    state: web::Data<AppState>,
    _ctx: ClientContext,
    body: web::Json<EmailRequest>,
) -> AppResult<HttpResponse> {
    let mut fields = FieldErrors::new();
    check_email(&body.email, &mut fields);
    if !fields.is_empty() {
        return Err(AppError::Validation(fields));
    }
    email_flows::request_password_reset(&state, &body.email, now_ms()).await?;
    Ok(HttpResponse::Accepted().json(Accepted {}))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResetAttempt {
    #[schema(example = "ada@example.com")]
    pub email: String,
    #[schema(example = "123456")]
    pub code: String,
    /// The new password: 8 to 128 bytes, not the email address.
    pub password: String,
}

/// Sets a new password with the emailed code and signs this device in; every other
/// session of the user is revoked at once (`session.revoked` events), and the email
/// address counts as verified. A wrong, used or expired code is 422 `fields.code`; a
/// weak password 422 `fields.password`.
#[utoipa::path(
    tag = "client",
    request_body = ResetAttempt,
    responses(
        (status = 200, description = "Signed in with the new password (`__client` and `__session` cookies set); or `needs_second_factor` for a user with a second factor", body = super::FirstFactorResponse),
        (status = 403, description = "Cross-origin request", body = ErrorBody),
        (status = 422, description = "Wrong or dead code (`fields.code`), or a weak password (`fields.password`)", body = ErrorBody),
        (status = 429, description = "Too many failed attempts", body = ErrorBody),
    )
)]
#[post("/password-reset/attempt")]
#[tracing::instrument(skip_all)]
pub async fn reset_password(
    state: web::Data<AppState>,
    ctx: ClientContext,
    cookie: ClientCookie,
    body: web::Json<ResetAttempt>,
) -> AppResult<HttpResponse> {
    let body = body.into_inner();
    let mut fields = FieldErrors::new();
    check_email(&body.email, &mut fields);
    check_password_policy(&body.password, &body.email, &mut fields);
    if body.password.len() > MAX_PASSWORD_BYTES {
        fields.insert("password".into(), format!("must be at most {MAX_PASSWORD_BYTES} bytes"));
    }
    if body.code.trim().is_empty() {
        fields.insert("code".into(), "is required".into());
    }
    if !fields.is_empty() {
        return Err(AppError::Validation(fields));
    }
    let email_key = normalize_email(&body.email);
    if let Err(wait) = state.throttle.check(&email_key, &ctx.ip).await {
        return Err(AppError::RateLimited {
            retry_after_secs: wait.as_secs().max(1),
        });
    }
    let now = now_ms();
    let (tx, user, stopped) =
        match email_flows::reset_password(&state, &body.email, &body.code, body.password, now).await {
            Ok(done) => done,
            Err(e) => {
                if matches!(e, AppError::Validation(_)) {
                    state.throttle.record_failure(&email_key, &ctx.ip).await;
                }
                return Err(e);
            }
        };
    state.throttle.record_success(&email_key).await;
    let outcome = complete(
        &state,
        tx,
        cookie.client_id().as_deref(),
        user,
        FirstFactor::PasswordReset,
        &ctx,
        now,
    )
    .await?;
    sessions::announce(&state, stopped).await;
    signed_in(&state, &cookie, &ctx, outcome, HttpResponse::Ok()).await
}
