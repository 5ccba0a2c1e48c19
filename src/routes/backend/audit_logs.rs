//! The audit log, for the product's owner.

use actix_web::{get, web};
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_actix_web::service_config::ServiceConfig;

use crate::auth::secret_key::BackendKey;
use crate::db::audit::{self, AuditEntry, Filter};
use crate::db::pagination::{Page, PageQuery};
use crate::error::{AppResult, ErrorBody};
use crate::state::AppState;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(list_audit_logs);
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// Entries whose actor or target is this user (or key).
    pub user_id: Option<String>,
    pub organization_id: Option<String>,
    /// One action, e.g. `session.created`.
    pub action: Option<String>,
    /// 1 to 100, default 20.
    pub limit: Option<String>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// Audit entries, newest first, optionally filtered.
#[utoipa::path(
    tag = "backend",
    security(("secret_key" = [])),
    params(AuditQuery),
    responses((status = 200, body = Page<AuditEntry>), (status = 401, body = ErrorBody), (status = 422, body = ErrorBody))
)]
#[get("/audit_logs")]
async fn list_audit_logs(
    state: web::Data<AppState>,
    _key: BackendKey,
    query: web::Query<AuditQuery>,
) -> AppResult<web::Json<Page<AuditEntry>>> {
    let query = query.into_inner();
    let page = PageQuery {
        limit: query.limit,
        cursor: query.cursor,
    }
    .parse()?;
    let filter = Filter {
        user_id: query.user_id.as_deref().filter(|s| !s.is_empty()),
        organization_id: query.organization_id.as_deref().filter(|s| !s.is_empty()),
        action: query.action.as_deref().filter(|s| !s.is_empty()),
    };
    let rows = audit::list(&state.db.pool, &filter, &page).await?;
    Ok(web::Json(Page::from_rows(rows, page.limit, |e| {
        (e.created_at, e.id.as_str())
    })))
}
