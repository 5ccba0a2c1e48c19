//! The active organization's audit entries, for its admins.

use actix_web::{get, web};
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_actix_web::service_config::ServiceConfig;

use crate::auth::extractors::{ManageOrganization, RequirePermission};
use crate::db::audit::{self, AuditEntry, Filter};
use crate::db::pagination::{Page, PageQuery};
use crate::error::{AppResult, ErrorBody};
use crate::state::AppState;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(org_audit_log);
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct OrgAuditQuery {
    /// One action, e.g. `organizationMembership.updated`.
    pub action: Option<String>,
    /// 1 to 100, default 20.
    pub limit: Option<String>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// This organization's audit entries (and only its), newest first.
#[utoipa::path(
    tag = "admin",
    security(("session_token" = ["org:admin"])),
    params(OrgAuditQuery),
    responses(
        (status = 200, body = Page<AuditEntry>),
        (status = 400, description = "No active organization", body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 422, body = ErrorBody),
    )
)]
#[get("/admin/audit-log")]
#[tracing::instrument(skip_all, fields(org_id = %admin.org_id))]
async fn org_audit_log(
    state: web::Data<AppState>,
    admin: RequirePermission<ManageOrganization>,
    query: web::Query<OrgAuditQuery>,
) -> AppResult<web::Json<Page<AuditEntry>>> {
    let query = query.into_inner();
    let page = PageQuery {
        limit: query.limit,
        cursor: query.cursor,
    }
    .parse()?;
    let filter = Filter {
        organization_id: Some(&admin.org_id),
        action: query.action.as_deref().filter(|s| !s.is_empty()),
        ..Default::default()
    };
    let rows = audit::list(&state.db.pool, &filter, &page).await?;
    Ok(web::Json(Page::from_rows(rows, page.limit, |e| {
        (e.created_at, e.id.as_str())
    })))
}
