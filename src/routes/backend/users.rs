//! Users: create, read, change (names and the three kinds of metadata), ban, delete,
//! turn the second factor off; and actor tokens (support impersonation). Backend
//! responses show `private_metadata`; no user-facing response or token ever does.

use actix_web::{HttpResponse, delete, get, patch, post, web};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_actix_web::service_config::ServiceConfig;

use crate::auth::password::{
    MAX_PASSWORD_BYTES, check_email, check_metadata, check_name, check_password_policy, hash_password,
};
use crate::auth::secret_key::BackendKey;
use crate::db::actor_tokens::ActorToken;
use crate::db::pagination::{Page, PageQuery};
use crate::db::users::{self, NewUser, User, UserChange};
use crate::error::{AppError, AppResult, ErrorBody, FieldErrors};
use crate::ids::{ActorTokenId, UserId};
use crate::services::users::{
    self as user_service, ACTOR_TOKEN_DEFAULT_SECS, ACTOR_TOKEN_SECS, Deleted, IssuedActorToken,
};
use crate::state::AppState;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(list_users)
        .service(create_user)
        .service(get_user)
        .service(update_user)
        .service(delete_user)
        .service(ban_user)
        .service(unban_user)
        .service(remove_second_factor)
        .service(create_actor_token)
        .service(revoke_actor_token);
}

fn not_found(id: &str) -> AppError {
    AppError::NotFound(format!("no user `{id}`"))
}

/// A user as the Backend API shows it: with `private_metadata`.
#[derive(Serialize, ToSchema)]
pub struct BackendUser {
    #[serde(flatten)]
    pub user: User,
    /// Backend-only: never in a user-facing response, a token or a template.
    #[schema(value_type = Object)]
    pub private_metadata: serde_json::Value,
}

impl From<User> for BackendUser {
    fn from(user: User) -> Self {
        let private_metadata = user.private_metadata.clone();
        Self { user, private_metadata }
    }
}

/// Users, newest first.
#[utoipa::path(
    tag = "backend",
    security(("secret_key" = [])),
    params(PageQuery),
    responses((status = 200, body = Page<BackendUser>), (status = 401, body = ErrorBody), (status = 422, body = ErrorBody))
)]
#[get("/users")]
async fn list_users(
    state: web::Data<AppState>,
    _key: BackendKey,
    query: web::Query<PageQuery>,
) -> AppResult<web::Json<Page<BackendUser>>> {
    let page = query.parse()?;
    let rows = users::list(&state.db.pool, &page).await?;
    let page = Page::from_rows(rows, page.limit, |u| (u.created_at, u.id.as_str()));
    Ok(web::Json(Page {
        data: page.data.into_iter().map(BackendUser::from).collect(),
        next_cursor: page.next_cursor,
    }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUser {
    #[schema(example = "ada@example.com")]
    pub email: String,
    /// Without one, the user signs in by emailed code or link (or sets one by reset).
    pub password: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub public_metadata: Option<serde_json::Value>,
    #[schema(value_type = Option<Object>)]
    pub private_metadata: Option<serde_json::Value>,
    #[schema(value_type = Option<Object>)]
    pub unsafe_metadata: Option<serde_json::Value>,
}

/// Creates a user, email verified (`user.created`).
#[utoipa::path(
    tag = "backend",
    security(("secret_key" = [])),
    request_body = CreateUser,
    responses(
        (status = 201, body = BackendUser),
        (status = 401, body = ErrorBody),
        (status = 422, description = "Invalid fields, or the email is taken (`fields.email`)", body = ErrorBody),
    )
)]
#[post("/users")]
#[tracing::instrument(skip_all)]
async fn create_user(
    state: web::Data<AppState>,
    _key: BackendKey,
    body: web::Json<CreateUser>,
) -> AppResult<HttpResponse> {
    let body = body.into_inner();
    let first_name = body.first_name.as_deref().map(str::trim).filter(|n| !n.is_empty());
    let last_name = body.last_name.as_deref().map(str::trim).filter(|n| !n.is_empty());
    let mut fields = FieldErrors::new();
    check_email(&body.email, &mut fields);
    if let Some(password) = &body.password {
        check_password_policy(password, &body.email, &mut fields);
    }
    check_name("first_name", first_name, &mut fields);
    check_name("last_name", last_name, &mut fields);
    check_metadata("public_metadata", body.public_metadata.as_ref(), &mut fields);
    check_metadata("private_metadata", body.private_metadata.as_ref(), &mut fields);
    check_metadata("unsafe_metadata", body.unsafe_metadata.as_ref(), &mut fields);
    if !fields.is_empty() {
        return Err(AppError::Validation(fields));
    }
    let password_hash = match body.password.filter(|p| p.len() <= MAX_PASSWORD_BYTES) {
        Some(password) => Some(hash_password(password).await?),
        None => None,
    };
    let new = NewUser {
        email: &body.email,
        password_hash: password_hash.as_deref(),
        first_name,
        last_name,
        email_verified: true,
    };
    let metadata = UserChange {
        public_metadata: body.public_metadata.as_ref(),
        private_metadata: body.private_metadata.as_ref(),
        unsafe_metadata: body.unsafe_metadata.as_ref(),
        ..Default::default()
    };
    let user = user_service::create(&state, new, &metadata).await?;
    Ok(HttpResponse::Created().json(BackendUser::from(user)))
}

#[utoipa::path(
    tag = "backend",
    security(("secret_key" = [])),
    params(("id" = String, Path)),
    responses((status = 200, body = BackendUser), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody))
)]
#[get("/users/{id}")]
async fn get_user(
    state: web::Data<AppState>,
    _key: BackendKey,
    id: web::Path<UserId>,
) -> AppResult<web::Json<BackendUser>> {
    let user = users::find_by_id(&state.db.pool, &id)
        .await?
        .ok_or_else(|| not_found(&id))?;
    Ok(web::Json(user.into()))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateUser {
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    /// Replaces the user's public metadata (a JSON object, at most 8 KiB). Session
    /// tokens carry it from their next refresh when the session template reads it.
    #[schema(value_type = Option<Object>)]
    pub public_metadata: Option<serde_json::Value>,
    /// Replaces the backend-only metadata.
    #[schema(value_type = Option<Object>)]
    pub private_metadata: Option<serde_json::Value>,
    /// Replaces the metadata the user writes themselves.
    #[schema(value_type = Option<Object>)]
    pub unsafe_metadata: Option<serde_json::Value>,
}

/// Changes names and metadata (`user.updated`).
#[utoipa::path(
    tag = "backend",
    security(("secret_key" = [])),
    params(("id" = String, Path)),
    request_body = UpdateUser,
    responses((status = 200, body = BackendUser), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody))
)]
#[patch("/users/{id}")]
#[tracing::instrument(skip_all, fields(user_id = %id))]
async fn update_user(
    state: web::Data<AppState>,
    _key: BackendKey,
    id: web::Path<UserId>,
    body: web::Json<UpdateUser>,
) -> AppResult<web::Json<BackendUser>> {
    let body = body.into_inner();
    let mut fields = FieldErrors::new();
    check_name("first_name", body.first_name.as_deref(), &mut fields);
    check_name("last_name", body.last_name.as_deref(), &mut fields);
    check_metadata("public_metadata", body.public_metadata.as_ref(), &mut fields);
    check_metadata("private_metadata", body.private_metadata.as_ref(), &mut fields);
    check_metadata("unsafe_metadata", body.unsafe_metadata.as_ref(), &mut fields);
    if !fields.is_empty() {
        return Err(AppError::Validation(fields));
    }
    let change = UserChange {
        first_name: body.first_name.as_deref(),
        last_name: body.last_name.as_deref(),
        public_metadata: body.public_metadata.as_ref(),
        private_metadata: body.private_metadata.as_ref(),
        unsafe_metadata: body.unsafe_metadata.as_ref(),
    };
    let user = user_service::update(&state, &id, &change)
        .await
        .map_err(|err| match err {
            AppError::NotFound(_) => not_found(&id),
            other => other,
        })?;
    Ok(web::Json(user.into()))
}

/// Deletes a user (`user.deleted`): their sessions are revoked at once, memberships,
/// second factor and personal items removed; organization rows they wrote stay.
#[utoipa::path(
    tag = "backend",
    security(("secret_key" = [])),
    params(("id" = String, Path)),
    responses((status = 200, body = Deleted), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody))
)]
#[delete("/users/{id}")]
#[tracing::instrument(skip_all, fields(user_id = %id))]
async fn delete_user(
    state: web::Data<AppState>,
    _key: BackendKey,
    id: web::Path<UserId>,
) -> AppResult<web::Json<Deleted>> {
    Ok(web::Json(user_service::delete(&state, &id).await?))
}

/// Bans a user: every session is revoked at once, and every way of signing in answers
/// 403 `user_banned` (`user.updated`).
#[utoipa::path(
    tag = "backend",
    security(("secret_key" = [])),
    params(("id" = String, Path)),
    responses((status = 200, body = BackendUser), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody))
)]
#[post("/users/{id}/ban")]
#[tracing::instrument(skip_all, fields(user_id = %id))]
async fn ban_user(
    state: web::Data<AppState>,
    _key: BackendKey,
    id: web::Path<UserId>,
) -> AppResult<web::Json<BackendUser>> {
    Ok(web::Json(user_service::set_banned(&state, &id, true).await?.into()))
}

/// Lifts a ban (`user.updated`).
#[utoipa::path(
    tag = "backend",
    security(("secret_key" = [])),
    params(("id" = String, Path)),
    responses((status = 200, body = BackendUser), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody))
)]
#[post("/users/{id}/unban")]
#[tracing::instrument(skip_all, fields(user_id = %id))]
async fn unban_user(
    state: web::Data<AppState>,
    _key: BackendKey,
    id: web::Path<UserId>,
) -> AppResult<web::Json<BackendUser>> {
    Ok(web::Json(user_service::set_banned(&state, &id, false).await?.into()))
}

/// Turns a user's second factor off (support, for a user who lost their authenticator
/// and backup codes): the authenticator and backup codes are removed (`user.updated`).
#[utoipa::path(
    tag = "backend",
    security(("secret_key" = [])),
    params(("id" = String, Path)),
    responses(
        (status = 204),
        (status = 401, body = ErrorBody),
        (status = 404, description = "No such user, or no second factor", body = ErrorBody),
    )
)]
#[delete("/users/{id}/mfa")]
#[tracing::instrument(skip_all, fields(user_id = %id))]
async fn remove_second_factor(
    state: web::Data<AppState>,
    _key: BackendKey,
    id: web::Path<UserId>,
) -> AppResult<HttpResponse> {
    users::find_by_id(&state.db.pool, &id)
        .await?
        .ok_or_else(|| not_found(&id))?;
    crate::services::second_factor::remove(&state, &id).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Actor {
    /// Who acts (a support agent's id in your system).
    #[schema(example = "support_ana")]
    pub sub: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateActorToken {
    pub user_id: String,
    pub actor: Actor,
    /// 30 to 86400 (default 600).
    pub expires_in_seconds: Option<i64>,
}

/// Issues an actor token: a single-use URL that signs the opening browser in as the user,
/// in an impersonated session (tokens carry `act: {sub}`).
#[utoipa::path(
    tag = "backend",
    security(("secret_key" = [])),
    request_body = CreateActorToken,
    responses(
        (status = 201, body = IssuedActorToken),
        (status = 401, body = ErrorBody),
        (status = 404, description = "No such user", body = ErrorBody),
        (status = 409, description = "The user is banned", body = ErrorBody),
        (status = 422, body = ErrorBody),
    )
)]
#[post("/actor_tokens")]
#[tracing::instrument(skip_all)]
async fn create_actor_token(
    state: web::Data<AppState>,
    _key: BackendKey,
    body: web::Json<CreateActorToken>,
) -> AppResult<HttpResponse> {
    let body = body.into_inner();
    let mut fields = FieldErrors::new();
    let sub = body.actor.sub.trim();
    if sub.is_empty() || sub.len() > 128 || sub.chars().any(char::is_control) {
        fields.insert("actor".into(), "`sub` must be 1 to 128 characters".into());
    }
    let lifetime = body.expires_in_seconds.unwrap_or(ACTOR_TOKEN_DEFAULT_SECS);
    if !ACTOR_TOKEN_SECS.contains(&lifetime) {
        fields.insert(
            "expires_in_seconds".into(),
            format!(
                "must be from {} to {}",
                ACTOR_TOKEN_SECS.start(),
                ACTOR_TOKEN_SECS.end()
            ),
        );
    }
    if !crate::ids::has_prefix(&body.user_id, crate::ids::IdKind::User) {
        fields.insert("user_id".into(), "is not a user id".into());
    }
    if !fields.is_empty() {
        return Err(AppError::Validation(fields));
    }
    let actor = serde_json::json!({"sub": sub});
    let issued = user_service::issue_actor_token(&state, &body.user_id, &actor, lifetime).await?;
    Ok(HttpResponse::Created()
        .insert_header((actix_web::http::header::CACHE_CONTROL, "no-store"))
        .json(issued))
}

/// Revokes a pending actor token: its URL stops working.
#[utoipa::path(
    tag = "backend",
    security(("secret_key" = [])),
    params(("id" = String, Path, description = "`act_…`")),
    responses(
        (status = 200, body = ActorToken),
        (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "Accepted, revoked or expired already", body = ErrorBody),
    )
)]
#[post("/actor_tokens/{id}/revoke")]
#[tracing::instrument(skip_all, fields(token = %id))]
async fn revoke_actor_token(
    state: web::Data<AppState>,
    _key: BackendKey,
    id: web::Path<ActorTokenId>,
) -> AppResult<web::Json<ActorToken>> {
    Ok(web::Json(user_service::revoke_actor_token(&state, &id).await?))
}
