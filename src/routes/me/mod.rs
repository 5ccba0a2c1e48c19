//! `/api/me…`: the signed-in user's own view: the auth object, the profile, the
//! organizations, and (in `sessions`) the sessions on every device.

mod account;
mod identities;
mod invitations;
mod mfa;
mod sessions;

use actix_web::http::header::ContentType;
use actix_web::{HttpResponse, get, web};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_actix_web::service_config::ServiceConfig;

use crate::auth::context::AuthObject;
use crate::auth::extractors::Auth;
use crate::db::organizations::Organization;
use crate::db::users::User;
use crate::db::{memberships, users};
use crate::error::{AppError, AppResult, ErrorBody};
use crate::state::AppState;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(me).service(profile).service(my_organizations);
    sessions::configure(cfg);
    cfg.service(account::request_verification)
        .service(account::verify_email)
        .service(account::change_password)
        .service(account::update_profile)
        .service(account::delete_account)
        .service(invitations::my_invitations)
        .service(invitations::accept_mine)
        .service(invitations::accept_ticket)
        .service(invitations::leave_organization)
        .service(identities::list_identities)
        .service(identities::unlink_identity)
        .service(mfa::begin_totp)
        .service(mfa::confirm_totp)
        .service(mfa::remove_totp)
        .service(mfa::regenerate_backup_codes);
}

/// The signed-in user as stored (gone meanwhile: 404).
async fn current_user(state: &AppState, user_id: &str) -> AppResult<User> {
    users::find_by_id(&state.db.pool, user_id)
        .await?
        .ok_or_else(|| AppError::NotFound("the signed-in user no longer exists".to_owned()))
}

/// The auth object of this request, decoded from the session token (no database read).
#[utoipa::path(
    tag = "me",
    security(("session_token" = []), ("api_key" = [])),
    responses((status = 200, body = AuthObject), (status = 401, body = ErrorBody))
)]
#[get("/me")]
async fn me(auth: Auth) -> HttpResponse {
    HttpResponse::Ok().content_type(ContentType::json()).body(auth.json())
}

/// The stored user.
#[utoipa::path(
    tag = "me",
    security(("session_token" = [])),
    responses((status = 200, body = User), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody))
)]
#[get("/me/profile")]
#[tracing::instrument(skip_all, fields(user_id = %auth.user_id))]
async fn profile(state: web::Data<AppState>, auth: Auth) -> AppResult<web::Json<User>> {
    Ok(web::Json(current_user(&state, &auth.user_id).await?))
}

#[derive(Serialize, ToSchema)]
pub struct OrganizationSummary {
    pub id: String,
    pub name: String,
    pub slug: String,
}

#[derive(Serialize, ToSchema)]
pub struct MyOrganization {
    pub organization: OrganizationSummary,
    #[schema(example = "org:admin")]
    pub role: String,
}

#[derive(Serialize, ToSchema)]
pub struct MyOrganizations {
    pub data: Vec<MyOrganization>,
}

/// The organizations the user belongs to, with their role in each.
#[utoipa::path(
    tag = "me",
    security(("session_token" = [])),
    responses((status = 200, body = MyOrganizations), (status = 401, body = ErrorBody))
)]
#[get("/me/organizations")]
#[tracing::instrument(skip_all, fields(user_id = %auth.user_id))]
async fn my_organizations(state: web::Data<AppState>, auth: Auth) -> AppResult<web::Json<MyOrganizations>> {
    let rows = memberships::list_for_user(&state.db.pool, &auth.user_id).await?;
    let data = rows
        .into_iter()
        .map(|(org, role): (Organization, String)| MyOrganization {
            organization: OrganizationSummary {
                id: org.id,
                name: org.name,
                slug: org.slug,
            },
            role,
        })
        .collect();
    Ok(web::Json(MyOrganizations { data }))
}
