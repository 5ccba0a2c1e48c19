//! The signed-in user's second factor: set up an authenticator app (TOTP), turn it off,
//! new backup codes. Each change needs the password proven within the last 10 minutes.

use actix_web::{HttpResponse, delete, post, web};
use serde::Deserialize;
use utoipa::ToSchema;

use super::current_user;
use crate::auth::extractors::{Auth, Reverified};
use crate::error::{AppResult, ErrorBody};
use crate::services::second_factor::{self, BackupCodes, TotpSetup};
use crate::state::AppState;

/// Second-factor changes need a password proof this recent (minutes).
pub const MFA_REVERIFY_MINUTES: i64 = 10;

/// Starts setting up an authenticator app: the seed (base32), its `otpauth://` URI and
/// the URI as a QR code (SVG drawn by this server). Not active until
/// `POST /api/me/mfa/totp/attempt` with a code from the app.
#[utoipa::path(
    tag = "me",
    security(("session_token" = [])),
    responses(
        (status = 201, body = TotpSetup),
        (status = 401, body = ErrorBody),
        (status = 403, description = "`reverification_required` (prove the password again), or an impersonated session", body = ErrorBody),
        (status = 409, description = "An authenticator is already on", body = ErrorBody),
    )
)]
#[post("/me/mfa/totp")]
#[tracing::instrument(skip_all, fields(user_id = %fresh.user_id))]
pub async fn begin_totp(
    state: web::Data<AppState>,
    fresh: Reverified<MFA_REVERIFY_MINUTES>,
) -> AppResult<HttpResponse> {
    fresh.forbid_impersonation()?;
    let user = current_user(&state, &fresh.user_id).await?;
    let setup = second_factor::begin_totp(&state, &user).await?;
    Ok(HttpResponse::Created()
        .insert_header((actix_web::http::header::CACHE_CONTROL, "no-store"))
        .json(setup))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TotpAttempt {
    /// The 6-digit code the app shows now.
    #[schema(example = "123456")]
    pub code: String,
}

/// Finishes the setup with a code from the app: the second factor is on
/// (`two_factor_enabled`, `user.updated`) and the 10 backup codes are returned, only here.
#[utoipa::path(
    tag = "me",
    security(("session_token" = [])),
    request_body = TotpAttempt,
    responses(
        (status = 200, body = BackupCodes),
        (status = 401, body = ErrorBody),
        (status = 403, description = "An impersonated session", body = ErrorBody),
        (status = 409, description = "No setup started, or it is already finished", body = ErrorBody),
        (status = 422, description = "Wrong code (`fields.code`)", body = ErrorBody),
    )
)]
#[post("/me/mfa/totp/attempt")]
#[tracing::instrument(skip_all, fields(user_id = %auth.user_id))]
pub async fn confirm_totp(
    state: web::Data<AppState>,
    auth: Auth,
    body: web::Json<TotpAttempt>,
) -> AppResult<HttpResponse> {
    auth.forbid_impersonation()?;
    let user = current_user(&state, &auth.user_id).await?;
    let codes = second_factor::confirm_totp(&state, &user, &auth.session_id, &body.code).await?;
    Ok(HttpResponse::Ok()
        .insert_header((actix_web::http::header::CACHE_CONTROL, "no-store"))
        .json(codes))
}

/// Turns the second factor off: the authenticator and the backup codes are removed
/// (`user.updated`).
#[utoipa::path(
    tag = "me",
    security(("session_token" = [])),
    responses(
        (status = 204),
        (status = 401, body = ErrorBody),
        (status = 403, description = "`reverification_required`, or an impersonated session", body = ErrorBody),
        (status = 404, description = "No second factor to turn off", body = ErrorBody),
    )
)]
#[delete("/me/mfa/totp")]
#[tracing::instrument(skip_all, fields(user_id = %fresh.user_id))]
pub async fn remove_totp(
    state: web::Data<AppState>,
    fresh: Reverified<MFA_REVERIFY_MINUTES>,
) -> AppResult<HttpResponse> {
    fresh.forbid_impersonation()?;
    second_factor::remove(&state, &fresh.user_id).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// A new set of 10 backup codes (shown only here); the old ones stop working.
#[utoipa::path(
    tag = "me",
    security(("session_token" = [])),
    responses(
        (status = 200, body = BackupCodes),
        (status = 401, body = ErrorBody),
        (status = 403, description = "`reverification_required`, or an impersonated session", body = ErrorBody),
        (status = 409, description = "The second factor is off", body = ErrorBody),
    )
)]
#[post("/me/mfa/backup-codes")]
#[tracing::instrument(skip_all, fields(user_id = %fresh.user_id))]
pub async fn regenerate_backup_codes(
    state: web::Data<AppState>,
    fresh: Reverified<MFA_REVERIFY_MINUTES>,
) -> AppResult<HttpResponse> {
    fresh.forbid_impersonation()?;
    let user = current_user(&state, &fresh.user_id).await?;
    let codes = second_factor::regenerate_backup_codes(&state, &user).await?;
    Ok(HttpResponse::Ok()
        .insert_header((actix_web::http::header::CACHE_CONTROL, "no-store"))
        .json(codes))
}
