//! `POST /v1/sign-up` (and `/v1/sign-up/{id}/verify` for pending sign-ups) and
//! `POST /v1/sign-in`.

use actix_web::{HttpResponse, post, web};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{AuthResponse, signed_in};
use crate::auth::cookies::ClientCookie;
use crate::auth::password::{
    MAX_EMAIL_BYTES, MAX_PASSWORD_BYTES, check_email, check_name, check_password_policy, hash_password, verify_password,
};
use crate::auth::request::ClientContext;
use crate::clock::now_ms;
use crate::config::EmailVerification;
use crate::db::sign_in_attempts;
use crate::db::users::{NewUser, normalize_email};
use crate::db::{events, users};
use crate::error::{AppError, AppResult, ErrorBody, FieldErrors, ResultExt};
use crate::ids::{SignInId, SignUpId};
use crate::services;
use crate::services::email_flows;
use crate::services::invitations;
use crate::services::second_factor::Strategy;
use crate::services::sign_in::{FirstFactor, complete, complete_in, complete_second_factor};
use crate::state::AppState;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignUpRequest {
    /// Required, unless `ticket` is given (then it is the invited address; another
    /// address is 422).
    #[schema(example = "ada@example.com")]
    pub email: Option<String>,
    /// 8 to 128 bytes, not the email address.
    #[schema(example = "correct horse battery staple")]
    pub password: String,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    /// The `ticket` of an invitation link: the account is created with the invited
    /// (and thereby verified) address, joins the organization with the invited role,
    /// and the new session's active organization is that one.
    pub ticket: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignInRequest {
    #[schema(example = "ada@example.com")]
    pub email: String,
    #[schema(example = "correct horse battery staple")]
    pub password: String,
}

/// A sign-up waiting for its email code (`EMAIL_VERIFICATION=required`).
#[derive(Serialize, ToSchema)]
pub struct PendingSignUpBody {
    #[schema(example = "signup_01jd3m5x0e8k2q9v7w4h6r1t3y")]
    pub id: String,
    #[schema(example = "missing_requirements")]
    pub status: &'static str,
    #[schema(example = json!(["email_address"]))]
    pub unverified_fields: Vec<&'static str>,
    pub email: String,
    /// Unix milliseconds.
    pub expire_at: i64,
}

#[derive(Serialize, ToSchema)]
pub struct PendingSignUpResponse {
    pub sign_up: PendingSignUpBody,
}

/// Creates an account. With `EMAIL_VERIFICATION=optional` (the default) or `off` the
/// user is signed in on this device at once (`optional` also emails a code to confirm
/// the address). With `required` the answer is 202 with a pending sign-up and an
/// emailed code: no user and no session exist until `POST /v1/sign-up/{id}/verify`.
#[utoipa::path(
    tag = "client",
    request_body = SignUpRequest,
    responses(
        (status = 201, description = "Signed up; `__client` and `__session` cookies set", body = AuthResponse),
        (status = 202, description = "`EMAIL_VERIFICATION=required`: a pending sign-up; its code was emailed", body = PendingSignUpResponse),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 403, description = "Cross-origin request", body = ErrorBody),
        (status = 413, body = ErrorBody),
        (status = 415, body = ErrorBody),
        (status = 409, description = "The invitation of `ticket` is revoked, expired or accepted", body = ErrorBody),
        (status = 422, description = "Invalid fields, the email is taken (`fields.email`), or an unknown `ticket`", body = ErrorBody),
    )
)]
#[post("/sign-up")]
#[tracing::instrument(skip_all)]
pub async fn sign_up(
    state: web::Data<AppState>,
    ctx: ClientContext,
    cookie: ClientCookie,
    body: web::Json<SignUpRequest>,
) -> AppResult<HttpResponse> {
    let body = body.into_inner();
    let now = now_ms();
    let first_name = non_empty(body.first_name.as_deref());
    let last_name = non_empty(body.last_name.as_deref());
    let mut fields = FieldErrors::new();
    let invitation = match body.ticket.as_deref() {
        Some(ticket) => Some(invitations::for_sign_up(&state, ticket, now).await?),
        None => None,
    };
    let email = match (&invitation, body.email) {
        (Some(invitation), Some(given)) => {
            if normalize_email(&given) != normalize_email(&invitation.email) {
                fields.insert("email".into(), "must be the invited address (or leave it out)".into());
            }
            invitation.email.clone()
        }
        (Some(invitation), None) => invitation.email.clone(),
        (None, given) => given.unwrap_or_default(),
    };
    check_email(&email, &mut fields);
    check_password_policy(&body.password, &email, &mut fields);
    check_name("first_name", first_name, &mut fields);
    check_name("last_name", last_name, &mut fields);
    if !fields.is_empty() {
        return Err(AppError::Validation(fields));
    }
    let password_hash = hash_password(body.password).await?;
    if let Some(invitation) = invitation {
        // The ticket went through the inbox: the address is verified, whatever the mode.
        let mut tx = state.db.begin().await?;
        let new_user = NewUser {
            email: &email,
            password_hash: Some(&password_hash),
            first_name,
            last_name,
            email_verified: true,
        };
        let user = users::insert(&mut *tx, new_user, now)
            .await
            .on_unique_violation(|| AppError::field("email", "is already taken: sign in and accept the invitation"))?;
        let user_json = serde_json::to_value(&user).map_err(AppError::internal)?;
        events::record(&mut tx, events::USER_CREATED, None, Some(&user.id), &user_json, now).await?;
        invitations::join(&mut tx, &invitation, &user.id, now).await?;
        let outcome = complete_in(
            &state,
            tx,
            cookie.client_id().as_deref(),
            user,
            FirstFactor::SignUp,
            &ctx,
            Some(&invitation.organization_id),
            now,
        )
        .await?;
        return signed_in(&state, &cookie, &ctx, outcome, HttpResponse::Created()).await;
    }
    let mode = state.config.email.verification;
    if mode == EmailVerification::Required {
        let pending =
            email_flows::start_sign_up(&state, &email, Some(&password_hash), first_name, last_name, now).await?;
        return Ok(HttpResponse::Accepted().json(PendingSignUpResponse {
            sign_up: PendingSignUpBody {
                id: pending.id,
                status: "missing_requirements",
                unverified_fields: vec!["email_address"],
                email: pending.email,
                expire_at: pending.expires_at,
            },
        }));
    }
    let mut tx = state.db.begin().await?;
    let new_user = NewUser {
        email: &email,
        password_hash: Some(&password_hash),
        first_name,
        last_name,
        email_verified: false,
    };
    let user = users::insert(&mut *tx, new_user, now)
        .await
        .on_unique_violation(|| AppError::field("email", "is already taken"))?;
    let user_json = serde_json::to_value(&user).map_err(AppError::internal)?;
    events::record(&mut tx, events::USER_CREATED, None, Some(&user.id), &user_json, now).await?;
    if mode == EmailVerification::Optional {
        email_flows::send_verification_in(&state, &mut tx, &user, now).await?;
    }
    let outcome = complete(
        &state,
        tx,
        cookie.client_id().as_deref(),
        user,
        FirstFactor::SignUp,
        &ctx,
        now,
    )
    .await?;
    signed_in(&state, &cookie, &ctx, outcome, HttpResponse::Created()).await
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CodeRequest {
    /// The 6-digit code from the email.
    #[schema(example = "123456")]
    pub code: String,
}

/// Confirms a pending sign-up with the emailed code: creates the user (email
/// verified) and signs them in on this device. A wrong, used or dead code is 422
/// `fields.code` (after 5 wrong tries the code is dead; sign up again for a new one);
/// an unknown or expired sign-up is 404.
#[utoipa::path(
    tag = "client",
    params(("id" = String, Path, description = "The pending sign-up (`signup_…`)")),
    request_body = CodeRequest,
    responses(
        (status = 201, description = "Signed up; `__client` and `__session` cookies set", body = AuthResponse),
        (status = 403, description = "Cross-origin request", body = ErrorBody),
        (status = 404, description = "No such pending sign-up, or it expired", body = ErrorBody),
        (status = 422, description = "Wrong or dead code (`fields.code`), or the email was taken meanwhile", body = ErrorBody),
    )
)]
#[post("/sign-up/{id}/verify")]
#[tracing::instrument(skip_all, fields(sign_up = %id))]
pub async fn verify_sign_up(
    state: web::Data<AppState>,
    ctx: ClientContext,
    cookie: ClientCookie,
    id: web::Path<SignUpId>,
    body: web::Json<CodeRequest>,
) -> AppResult<HttpResponse> {
    let now = now_ms();
    let (tx, user) = email_flows::confirm_sign_up(&state, &id, &body.code, now).await?;
    let outcome = complete(
        &state,
        tx,
        cookie.client_id().as_deref(),
        user,
        FirstFactor::SignUp,
        &ctx,
        now,
    )
    .await?;
    signed_in(&state, &cookie, &ctx, outcome, HttpResponse::Created()).await
}

/// Signs in with email and password, adding a session to this device.
///
/// A wrong password and an unknown email get the same 401; repeated failures for one
/// email or from one IP are throttled (429 with `Retry-After`).
#[utoipa::path(
    tag = "client",
    request_body = SignInRequest,
    responses(
        (status = 200, description = "Signed in (`__client` and `__session` cookies set); or, for a user with a second factor, `needs_second_factor` with a `signin_…` attempt and no session", body = super::FirstFactorResponse),
        (status = 401, description = "Wrong email or password", body = ErrorBody),
        (status = 403, description = "Cross-origin request", body = ErrorBody),
        (status = 422, body = ErrorBody),
        (status = 429, description = "Too many failed attempts", body = ErrorBody),
    )
)]
#[post("/sign-in")]
#[tracing::instrument(skip_all)]
pub async fn sign_in(
    state: web::Data<AppState>,
    ctx: ClientContext,
    cookie: ClientCookie,
    body: web::Json<SignInRequest>,
) -> AppResult<HttpResponse> {
    let body = body.into_inner();
    let mut fields = FieldErrors::new();
    if body.email.trim().is_empty() {
        fields.insert("email".into(), "is required".into());
    } else if body.email.len() > MAX_EMAIL_BYTES {
        fields.insert("email".into(), format!("must be at most {MAX_EMAIL_BYTES} bytes"));
    }
    if body.password.is_empty() {
        fields.insert("password".into(), "is required".into());
    } else if body.password.len() > MAX_PASSWORD_BYTES {
        fields.insert("password".into(), format!("must be at most {MAX_PASSWORD_BYTES} bytes"));
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
    let user = users::find_by_email(&state.db.pool, &body.email).await?;
    let stored_hash = user.as_ref().and_then(|u| u.password_hash.clone());
    let matches = verify_password(body.password, stored_hash).await?;
    let user = match user {
        Some(user) if matches => user,
        account => {
            state.throttle.record_failure(&email_key, &ctx.ip).await;
            // The email, never the password; the target when the email is an account's.
            let target = account.as_ref().map(|u| u.id.as_str());
            crate::db::audit::sign_in_failed(&state.db.pool, &body.email, target, "password", now_ms()).await?;
            state.metrics.incr("sign_in_failures");
            return Err(AppError::Unauthorized("invalid email or password".to_owned()));
        }
    };
    state.throttle.record_success(&email_key).await;
    let now = now_ms();
    let tx = state.db.begin().await?;
    let outcome = complete(
        &state,
        tx,
        cookie.client_id().as_deref(),
        user,
        FirstFactor::Password,
        &ctx,
        now,
    )
    .await?;
    signed_in(&state, &cookie, &ctx, outcome, HttpResponse::Ok()).await
}

pub(super) fn non_empty(value: Option<&str>) -> Option<&str> {
    value.map(str::trim).filter(|v| !v.is_empty())
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SecondFactorRequest {
    /// `totp` (a code from the authenticator app) or `backup_code`.
    #[schema(example = "totp")]
    pub strategy: String,
    #[schema(example = "123456")]
    pub code: String,
}

/// Completes a sign-in that answered `needs_second_factor`, from the same device (its
/// `__client` cookie): a TOTP code (never accepted twice) or a backup code (works once).
/// Wrong code, another device, 5 tries spent, 10 minutes gone, or completed already:
/// 401 (sign in again).
#[utoipa::path(
    tag = "client",
    params(("id" = String, Path, description = "The sign-in attempt (`signin_…`)")),
    request_body = SecondFactorRequest,
    responses(
        (status = 200, description = "Signed in; `__client` and `__session` cookies set", body = AuthResponse),
        (status = 401, description = "Wrong code, or the attempt is over or another device's", body = ErrorBody),
        (status = 403, description = "Cross-origin request", body = ErrorBody),
        (status = 404, description = "Not a sign-in attempt id", body = ErrorBody),
        (status = 422, description = "Unknown `strategy`", body = ErrorBody),
    )
)]
#[post("/sign-in/{id}/second-factor")]
#[tracing::instrument(skip_all, fields(attempt = %id))]
pub async fn second_factor(
    state: web::Data<AppState>,
    ctx: ClientContext,
    cookie: ClientCookie,
    id: web::Path<SignInId>,
    body: web::Json<SecondFactorRequest>,
) -> AppResult<HttpResponse> {
    let body = body.into_inner();
    let strategy = Strategy::parse(&body.strategy)?;
    let over = || {
        AppError::Unauthorized("this sign-in attempt is over or belongs to another device: sign in again".to_owned())
    };
    let client_id = cookie.client_id().ok_or_else(over)?;
    let now = now_ms();
    let mut tx = state.db.begin().await?;
    let attempt = sign_in_attempts::spend_try(&mut *tx, &id, &client_id, now)
        .await?
        .ok_or_else(over)?;
    if !services::second_factor::check(&state, &mut tx, &attempt.user_id, strategy, &body.code, now).await? {
        let email = crate::db::users::find_by_id(&mut *tx, &attempt.user_id)
            .await?
            .map(|u| u.email)
            .unwrap_or_default();
        crate::db::audit::sign_in_failed(&mut *tx, &email, Some(&attempt.user_id), strategy.as_str(), now).await?;
        tx.commit().await?; // the spent try counts
        state.metrics.incr("sign_in_failures");
        return Err(AppError::Unauthorized(
            "the code is wrong, or was used already".to_owned(),
        ));
    }
    let outcome = complete_second_factor(&state, tx, &attempt, &ctx, now).await?;
    signed_in(&state, &cookie, &ctx, outcome, HttpResponse::Ok()).await
}
