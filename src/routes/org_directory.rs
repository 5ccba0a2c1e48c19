//! `/api/org/members` and `/api/org/roles`: who is in the active organization, and what
//! each role may do. Any member may read them (checked against the membership as it is
//! now, like every org route).

use actix_web::{get, web};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_actix_web::service_config::ServiceConfig;

use crate::auth::extractors::{AnyMember, RequirePermission};
use crate::db::memberships;
use crate::db::pagination::{Page, PageQuery};
use crate::db::roles::{self, Role};
use crate::error::{AppResult, ErrorBody};
use crate::state::AppState;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(list_members).service(list_roles);
}

/// A member's public face.
#[derive(Serialize, ToSchema)]
pub struct MemberUser {
    #[schema(example = "user_01jd3m5x0e8k2q9v7w4h6r1t3y")]
    pub id: String,
    pub email: String,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct OrgMember {
    pub user: MemberUser,
    #[schema(example = "org:member")]
    pub role: String,
    /// Unix milliseconds: when they joined.
    pub created_at: i64,
    /// The membership's id (the page cursor's tie-breaker).
    #[serde(skip)]
    pub membership_id: String,
}

/// The members of the active organization, newest first.
#[utoipa::path(
    tag = "organizations",
    security(("session_token" = [])),
    params(PageQuery),
    responses(
        (status = 200, body = Page<OrgMember>),
        (status = 400, description = "`no_active_organization`", body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, description = "Not a member (any more)", body = ErrorBody),
        (status = 422, body = ErrorBody),
    )
)]
#[get("/org/members")]
#[tracing::instrument(skip_all, fields(org_id = %member.org_id))]
async fn list_members(
    state: web::Data<AppState>,
    member: RequirePermission<AnyMember>,
    query: web::Query<PageQuery>,
) -> AppResult<web::Json<Page<OrgMember>>> {
    let page = query.parse()?;
    let rows = memberships::list(&state.db.pool, &member.org_id, &page).await?;
    let rows = rows
        .into_iter()
        .map(|m| OrgMember {
            user: MemberUser {
                id: m.user_id,
                email: m.public_user_data.email,
                first_name: m.public_user_data.first_name,
                last_name: m.public_user_data.last_name,
            },
            role: m.role,
            created_at: m.created_at,
            membership_id: m.id,
        })
        .collect();
    Ok(web::Json(Page::from_rows(rows, page.limit, |m| {
        (m.created_at, m.membership_id.as_str())
    })))
}

#[derive(Serialize, ToSchema)]
pub struct RoleList {
    pub data: Vec<Role>,
}

/// The roles a member can hold, with their permissions (`org:admin` holds every
/// permission, listed or not).
#[utoipa::path(
    tag = "organizations",
    security(("session_token" = [])),
    responses(
        (status = 200, body = RoleList),
        (status = 400, description = "`no_active_organization`", body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, description = "Not a member (any more)", body = ErrorBody),
    )
)]
#[get("/org/roles")]
#[tracing::instrument(skip_all, fields(org_id = %member.org_id))]
async fn list_roles(
    state: web::Data<AppState>,
    member: RequirePermission<AnyMember>,
) -> AppResult<web::Json<RoleList>> {
    Ok(web::Json(RoleList {
        data: roles::list(&state.db.pool).await?,
    }))
}
