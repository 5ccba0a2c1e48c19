//! `/healthz`, `/readyz`, `/metrics`.

use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, get, web};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_actix_web::service_config::ServiceConfig;

use crate::error::{AppError, AppResult, ErrorBody};
use crate::state::AppState;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(healthz).service(readyz).service(metrics);
}

#[derive(Serialize, ToSchema)]
pub struct Health {
    #[schema(example = "ok")]
    pub status: &'static str,
}

/// The process is up.
// The answer never changes, so it is written once: load balancers call this every few
// seconds, and `web::Json` would serialize the body into a new `String` and turn its
// `Mime` into a freshly allocated header value on every call (about 500 instructions of
// a request's 21,000).
#[utoipa::path(tag = "operations", responses((status = 200, body = Health)))]
#[get("/healthz")]
async fn healthz() -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, HeaderValue::from_static("application/json")))
        .body(HEALTHY)
}

/// `Health { status: "ok" }`, serialized (a test checks that it is).
const HEALTHY: &str = r#"{"status":"ok"}"#;

/// The database answers.
#[utoipa::path(
    tag = "operations",
    responses((status = 200, body = Health), (status = 503, body = ErrorBody))
)]
#[get("/readyz")]
async fn readyz(state: web::Data<AppState>) -> AppResult<web::Json<Health>> {
    state.db.ping().await.map_err(|e| {
        tracing::warn!(error = %e, "readiness check failed");
        AppError::ServiceUnavailable("the database is not reachable".to_owned())
    })?;
    Ok(web::Json(Health { status: "ready" }))
}

/// Prometheus metrics in text exposition format.
#[utoipa::path(tag = "operations", responses((status = 200, content_type = "text/plain", body = String)))]
#[get("/metrics")]
async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(state.metrics.render())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_written_health_body_is_the_serialized_one() {
        assert_eq!(HEALTHY, serde_json::to_string(&Health { status: "ok" }).unwrap());
    }
}
