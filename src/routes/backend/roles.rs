//! Roles: `org:admin` and `org:member` are built in; the product's owner defines others
//! (`org:editor` with `org:data:read/write/delete`, say).

use actix_web::{HttpResponse, delete, get, patch, post, web};
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_actix_web::service_config::ServiceConfig;

use crate::auth::secret_key::BackendKey;
use crate::db::roles::{self, Role};
use crate::error::{AppError, AppResult, ErrorBody, FieldErrors};
use crate::routes::org_directory::RoleList;
use crate::services::roles::{self as role_service, RoleChange, check_fields, valid_key};
use crate::state::AppState;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(list_roles)
        .service(create_role)
        .service(get_role)
        .service(update_role)
        .service(delete_role);
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateRole {
    /// `org:<name>`: lowercase letters, digits, `_` and `-`, up to 64 bytes in all.
    #[schema(example = "org:editor")]
    pub key: String,
    #[schema(example = "Editor")]
    pub name: String,
    pub description: Option<String>,
    /// Each `org:<feature>:<action>`; `org:sys_…` permissions belong to `org:admin`.
    #[schema(example = json!(["org:data:read", "org:data:write", "org:data:delete"]))]
    #[serde(default)]
    pub permissions: Vec<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateRole {
    pub name: Option<String>,
    /// An empty string clears it.
    pub description: Option<String>,
    /// Replaces the role's permissions.
    pub permissions: Option<Vec<String>>,
}

/// Every role, the system roles first.
#[utoipa::path(
    tag = "backend",
    security(("secret_key" = [])),
    responses((status = 200, body = RoleList), (status = 401, body = ErrorBody))
)]
#[get("/roles")]
async fn list_roles(state: web::Data<AppState>, _key: BackendKey) -> AppResult<web::Json<RoleList>> {
    Ok(web::Json(RoleList {
        data: roles::list(&state.db.pool).await?,
    }))
}

/// Defines a role (`role.created`).
#[utoipa::path(
    tag = "backend",
    security(("secret_key" = [])),
    request_body = CreateRole,
    responses(
        (status = 201, body = Role),
        (status = 401, body = ErrorBody),
        (status = 409, description = "The key is taken", body = ErrorBody),
        (status = 422, description = "A key or permission not of the form `org:<name>` / `org:<feature>:<action>`", body = ErrorBody),
    )
)]
#[post("/roles")]
async fn create_role(
    state: web::Data<AppState>,
    _key: BackendKey,
    body: web::Json<CreateRole>,
) -> AppResult<HttpResponse> {
    let body = body.into_inner();
    let mut fields = FieldErrors::new();
    if !valid_key(&body.key) {
        fields.insert(
            "key".into(),
            "must be org:<name> (lowercase letters, digits, `_` or `-`; at most 64 bytes)".into(),
        );
    }
    let description = body.description.filter(|d| !d.trim().is_empty());
    let permissions = check_fields(
        Some(&body.name),
        description.as_deref(),
        Some(&body.permissions),
        &mut fields,
    );
    if !fields.is_empty() {
        return Err(AppError::Validation(fields));
    }
    let role = Role {
        key: body.key,
        name: body.name.trim().to_owned(),
        description,
        permissions,
    };
    let role = role_service::create(&state, role).await?;
    Ok(HttpResponse::Created().json(role))
}

fn checked_key(key: &str) -> AppResult<&str> {
    if valid_key(key) {
        Ok(key)
    } else {
        Err(AppError::NotFound("no such role".to_owned()))
    }
}

#[utoipa::path(
    tag = "backend",
    security(("secret_key" = [])),
    params(("key" = String, Path, example = "org:editor")),
    responses((status = 200, body = Role), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody))
)]
#[get("/roles/{key}")]
async fn get_role(state: web::Data<AppState>, _key: BackendKey, key: web::Path<String>) -> AppResult<web::Json<Role>> {
    let role = roles::find(&state.db.pool, checked_key(&key)?)
        .await?
        .ok_or_else(|| AppError::NotFound("no such role".to_owned()))?;
    Ok(web::Json(role))
}

/// Changes a role's name, description or permissions (`role.updated`); members' org
/// data routes follow on their next request, token claims from their next token. The
/// permissions of `org:admin` (it holds every permission) cannot change: 409.
#[utoipa::path(
    tag = "backend",
    security(("secret_key" = [])),
    params(("key" = String, Path, example = "org:editor")),
    request_body = UpdateRole,
    responses(
        (status = 200, body = Role),
        (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "The permissions of org:admin", body = ErrorBody),
        (status = 422, body = ErrorBody),
    )
)]
#[patch("/roles/{key}")]
async fn update_role(
    state: web::Data<AppState>,
    _key: BackendKey,
    key: web::Path<String>,
    body: web::Json<UpdateRole>,
) -> AppResult<web::Json<Role>> {
    let key = checked_key(&key)?;
    let body = body.into_inner();
    let mut fields = FieldErrors::new();
    let permissions = check_fields(
        body.name.as_deref(),
        body.description.as_deref(),
        body.permissions.as_deref(),
        &mut fields,
    );
    if !fields.is_empty() {
        return Err(AppError::Validation(fields));
    }
    let change = RoleChange {
        name: body.name,
        description: body
            .description
            .map(|d| Some(d.trim().to_owned()).filter(|d| !d.is_empty())),
        permissions: body.permissions.map(|_| permissions),
    };
    Ok(web::Json(role_service::update(&state, key, change).await?))
}

/// Deletes a custom role (`role.deleted`). `org:admin`, `org:member`, and a role that
/// members or pending invitations hold: 409.
#[utoipa::path(
    tag = "backend",
    security(("secret_key" = [])),
    params(("key" = String, Path, example = "org:editor")),
    responses(
        (status = 204),
        (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "A system role, or one in use", body = ErrorBody),
    )
)]
#[delete("/roles/{key}")]
async fn delete_role(state: web::Data<AppState>, _key: BackendKey, key: web::Path<String>) -> AppResult<HttpResponse> {
    role_service::delete(&state, checked_key(&key)?).await?;
    Ok(HttpResponse::NoContent().finish())
}
