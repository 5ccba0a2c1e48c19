//! The Backend API (`/backend/v1/…`): server to server, `Authorization: Bearer <SECRET_KEY>`.
//! Every handler takes [`crate::auth::backend::BackendKey`], so the requirement is in its
//! signature, and declares the `secret_key` security scheme.

mod audit_logs;
mod jwt_templates;
mod roles;
mod sessions;
mod users;
mod webhook_endpoints;

use utoipa_actix_web::service_config::ServiceConfig;

pub fn configure(cfg: &mut ServiceConfig) {
    jwt_templates::configure(cfg);
    users::configure(cfg);
    audit_logs::configure(cfg);
    roles::configure(cfg);
    sessions::configure(cfg);
    webhook_endpoints::configure(cfg);
}
