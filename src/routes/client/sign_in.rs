//! `POST /v1/sign-up` and `POST /v1/sign-in`.

use actix_web::{HttpResponse, post, web};
use serde::Deserialize;
use utoipa::ToSchema;

use super::AuthResponse;
use crate::auth::cookies::ClientCookie;
use crate::auth::password::{
    MAX_EMAIL_BYTES, MAX_PASSWORD_BYTES, check_email, check_name, check_password_policy, hash_password, verify_password,
};
use crate::auth::request::ClientContext;
use crate::clock::now_ms;
use crate::db::sessions::Session;
use crate::db::users::{NewUser, User, normalize_email};
use crate::db::{events, users};
use crate::error::{AppError, AppResult, ErrorBody, FieldErrors, ResultExt};
use crate::services::sign_in::open_session;
use crate::state::AppState;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignUpRequest {
    #[schema(example = "ada@example.com")]
    pub email: String,
    /// 8 to 128 bytes, not the email address.
    #[schema(example = "correct horse battery staple")]
    pub password: String,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignInRequest {
    #[schema(example = "ada@example.com")]
    pub email: String,
    #[schema(example = "correct horse battery staple")]
    pub password: String,
}

/// Creates a user and signs them in on this device.
#[utoipa::path(
    tag = "client",
    request_body = SignUpRequest,
    responses(
        (status = 201, description = "Signed up; `__client` and `__session` cookies set", body = AuthResponse),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 403, description = "Cross-origin request", body = ErrorBody),
        (status = 413, body = ErrorBody),
        (status = 415, body = ErrorBody),
        (status = 422, description = "Invalid fields, or the email is taken (`fields.email`)", body = ErrorBody),
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
    let first_name = non_empty(body.first_name.as_deref());
    let last_name = non_empty(body.last_name.as_deref());
    let mut fields = FieldErrors::new();
    check_email(&body.email, &mut fields);
    check_password_policy(&body.password, &body.email, &mut fields);
    check_name("first_name", first_name, &mut fields);
    check_name("last_name", last_name, &mut fields);
    if !fields.is_empty() {
        return Err(AppError::Validation(fields));
    }
    let password_hash = hash_password(body.password).await?;
    let now = now_ms();
    let mut tx = state.db.pool.begin().await?;
    let new_user = NewUser {
        email: &body.email,
        password_hash: Some(&password_hash),
        first_name,
        last_name,
    };
    let user = users::insert(&mut *tx, new_user, now)
        .await
        .on_unique_violation(|| AppError::field("email", "is already taken"))?;
    let user_json = serde_json::to_value(&user).map_err(AppError::internal)?;
    events::record(&mut tx, events::USER_CREATED, None, Some(&user.id), &user_json, now).await?;
    let session = open_session(&state, &mut tx, cookie.client_id().as_deref(), &user, &ctx, now).await?;
    tx.commit().await?;
    state.metrics.incr("sign_ups");
    respond(&state, &cookie, &ctx, user, session, HttpResponse::Created()).await
}

/// Signs in with email and password, adding a session to this device.
///
/// A wrong password and an unknown email get the same 401; repeated failures for one
/// email or from one IP are throttled (429 with `Retry-After`).
#[utoipa::path(
    tag = "client",
    request_body = SignInRequest,
    responses(
        (status = 200, description = "Signed in; `__client` and `__session` cookies set", body = AuthResponse),
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
    let Some(user) = user.filter(|_| matches) else {
        state.throttle.record_failure(&email_key, &ctx.ip).await;
        state.metrics.incr("sign_in_failures");
        return Err(AppError::Unauthorized("invalid email or password".to_owned()));
    };
    state.throttle.record_success(&email_key).await;
    let now = now_ms();
    let mut tx = state.db.pool.begin().await?;
    let session = open_session(&state, &mut tx, cookie.client_id().as_deref(), &user, &ctx, now).await?;
    tx.commit().await?;
    state.metrics.incr("sign_ins");
    respond(&state, &cookie, &ctx, user, session, HttpResponse::Ok()).await
}

async fn respond(
    state: &AppState,
    cookie: &ClientCookie,
    ctx: &ClientContext,
    user: User,
    session: Session,
    mut builder: actix_web::HttpResponseBuilder,
) -> AppResult<HttpResponse> {
    cookie.sign_in(&session.client_id);
    let jwt = state.tokens.session_token(&session, ctx.origin.as_deref()).await?;
    Ok(builder
        .cookie(state.tokens.cookie(jwt.clone()))
        .json(AuthResponse { user, session, jwt }))
}

fn non_empty(value: Option<&str>) -> Option<&str> {
    value.map(str::trim).filter(|v| !v.is_empty())
}
