//! The signed-in user's own account: confirming the email address, and changing the
//! password.

use actix_web::{HttpResponse, delete, patch, post, web};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::current_user;
use crate::auth::extractors::{Auth, Reverified};
use crate::auth::password::{MAX_PASSWORD_BYTES, check_metadata, check_name, check_password_policy, verify_password};
use crate::auth::request::ClientContext;
use crate::clock::now_ms;
use crate::db::users::{User, UserChange, normalize_email};
use crate::error::{AppError, AppResult, ErrorBody, FieldErrors};
use crate::routes::client::Accepted;
use crate::services::email_flows;
use crate::state::AppState;

/// Emails a fresh code to confirm the user's address (at most one a minute; the code
/// already sent stays valid). Already verified: 409.
#[utoipa::path(
    tag = "me",
    security(("session_token" = [])),
    responses(
        (status = 202, description = "A code was emailed (or one was, less than a minute ago)", body = Accepted),
        (status = 401, body = ErrorBody),
        (status = 409, description = "The address is verified already", body = ErrorBody),
    )
)]
#[post("/me/email/verification")]
#[tracing::instrument(skip_all, fields(user_id = %auth.user_id))]
pub async fn request_verification(state: web::Data<AppState>, auth: Auth) -> AppResult<HttpResponse> {
    let user = current_user(&state, &auth.user_id).await?;
    email_flows::request_verification(&state, &user, now_ms()).await?;
    Ok(HttpResponse::Accepted().json(Accepted {}))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VerificationAttempt {
    #[schema(example = "123456")]
    pub code: String,
}

/// Confirms the address with the emailed code: the user, now `email_verified`
/// (`user.updated`). A wrong, used or dead code is 422 `fields.code`.
#[utoipa::path(
    tag = "me",
    security(("session_token" = [])),
    request_body = VerificationAttempt,
    responses(
        (status = 200, body = User),
        (status = 401, body = ErrorBody),
        (status = 422, description = "Wrong, used or expired code (`fields.code`)", body = ErrorBody),
    )
)]
#[post("/me/email/verification/attempt")]
#[tracing::instrument(skip_all, fields(user_id = %auth.user_id))]
pub async fn verify_email(
    state: web::Data<AppState>,
    auth: Auth,
    body: web::Json<VerificationAttempt>,
) -> AppResult<web::Json<User>> {
    Ok(web::Json(
        email_flows::verify_email(&state, &auth.user_id, &body.code, now_ms()).await?,
    ))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangePassword {
    /// Required when the account has a password: it is the proof (no recent
    /// reverification is needed).
    pub current_password: Option<String>,
    /// 8 to 128 bytes, not the email address.
    pub new_password: String,
    /// Revoke every other session of the user (default `true`).
    pub sign_out_other_sessions: Option<bool>,
}

#[derive(Serialize, ToSchema)]
pub struct PasswordChanged {
    /// How many other sessions were revoked.
    pub revoked: usize,
}

/// Changes the password. The current one is required (when there is one); a wrong one
/// is 422 `fields.current_password` and counts in the sign-in throttle. Every other
/// session is revoked unless `sign_out_other_sessions` is `false`.
#[utoipa::path(
    tag = "me",
    security(("session_token" = [])),
    request_body = ChangePassword,
    responses(
        (status = 200, body = PasswordChanged),
        (status = 401, body = ErrorBody),
        (status = 403, description = "An impersonated session", body = ErrorBody),
        (status = 422, description = "Wrong current password, or a weak new one", body = ErrorBody),
        (status = 429, description = "Too many failed attempts", body = ErrorBody),
    )
)]
#[post("/me/password")]
#[tracing::instrument(skip_all, fields(user_id = %auth.user_id))]
pub async fn change_password(
    state: web::Data<AppState>,
    auth: Auth,
    ctx: ClientContext,
    body: web::Json<ChangePassword>,
) -> AppResult<web::Json<PasswordChanged>> {
    auth.forbid_impersonation()?;
    let body = body.into_inner();
    let user = current_user(&state, &auth.user_id).await?;
    let mut fields = FieldErrors::new();
    check_password_policy(&body.new_password, &user.email, &mut fields);
    if let Some(field) = fields.remove("password") {
        fields.insert("new_password".into(), field);
    }
    if let Some(current) = body.current_password.as_deref()
        && current.len() > MAX_PASSWORD_BYTES
    {
        fields.insert("current_password".into(), "is incorrect".into());
    }
    if user.has_password && body.current_password.is_none() {
        fields.insert("current_password".into(), "is required".into());
    }
    if !fields.is_empty() {
        return Err(AppError::Validation(fields));
    }
    if let Some(current) = body.current_password.filter(|_| user.has_password) {
        let email_key = normalize_email(&user.email);
        if let Err(wait) = state.throttle.check(&email_key, &ctx.ip).await {
            return Err(AppError::RateLimited {
                retry_after_secs: wait.as_secs().max(1),
            });
        }
        if !verify_password(current, user.password_hash.clone()).await? {
            state.throttle.record_failure(&email_key, &ctx.ip).await;
            return Err(AppError::field("current_password", "is incorrect"));
        }
    }
    let revoked = email_flows::change_password(
        &state,
        &user,
        body.new_password,
        &auth.session_id,
        body.sign_out_other_sessions.unwrap_or(true),
        now_ms(),
    )
    .await?;
    Ok(web::Json(PasswordChanged { revoked }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateProfile {
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    /// Free-form JSON object the user writes (at most 8 KiB); never trusted by the server.
    #[schema(value_type = Option<Object>)]
    pub unsafe_metadata: Option<serde_json::Value>,
}

/// Changes the user's names and `unsafe_metadata` (`user.updated`). Any other field
/// (`public_metadata`, `private_metadata`, `email`, …) is 422 and changes nothing.
#[utoipa::path(
    tag = "me",
    security(("session_token" = [])),
    request_body = UpdateProfile,
    responses(
        (status = 200, body = User),
        (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody),
    )
)]
#[patch("/me/profile")]
#[tracing::instrument(skip_all, fields(user_id = %auth.user_id))]
pub async fn update_profile(
    state: web::Data<AppState>,
    auth: Auth,
    body: web::Json<UpdateProfile>,
) -> AppResult<web::Json<User>> {
    let body = body.into_inner();
    let first_name = body.first_name.as_deref().map(str::trim);
    let last_name = body.last_name.as_deref().map(str::trim);
    let mut fields = FieldErrors::new();
    check_name("first_name", first_name, &mut fields);
    check_name("last_name", last_name, &mut fields);
    check_metadata("unsafe_metadata", body.unsafe_metadata.as_ref(), &mut fields);
    if !fields.is_empty() {
        return Err(AppError::Validation(fields));
    }
    let change = UserChange {
        first_name,
        last_name,
        unsafe_metadata: body.unsafe_metadata.as_ref(),
        ..Default::default()
    };
    Ok(web::Json(
        crate::services::users::update(&state, &auth.user_id, &change).await?,
    ))
}

/// Deleting one's own account needs a password proof this recent (minutes).
pub const DELETE_ACCOUNT_REVERIFY_MINUTES: i64 = 10;

/// Deletes the signed-in user's account (`user.deleted`): their sessions are revoked at
/// once, memberships and personal items removed, organizations where they were the only
/// member deleted. The last admin of an organization with other members: 409. Not from
/// an impersonated session (403).
#[utoipa::path(
    tag = "me",
    security(("session_token" = [])),
    responses(
        (status = 204),
        (status = 401, body = ErrorBody),
        (status = 403, description = "`reverification_required`, or an impersonated session", body = ErrorBody),
        (status = 409, description = "The last admin of an organization that has other members", body = ErrorBody),
    )
)]
#[delete("/me")]
#[tracing::instrument(skip_all, fields(user_id = %fresh.user_id))]
pub async fn delete_account(
    state: web::Data<AppState>,
    fresh: Reverified<DELETE_ACCOUNT_REVERIFY_MINUTES>,
) -> AppResult<HttpResponse> {
    fresh.forbid_impersonation()?;
    crate::services::users::delete_self(&state, &fresh.user_id).await?;
    Ok(HttpResponse::NoContent().finish())
}
