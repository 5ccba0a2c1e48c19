//! `/api/admin/…`: the middleware lets only `org:admin` of the active organization in;
//! the handlers say so again with [`crate::auth::extractors::RequireAdmin`] (the token's
//! role) or [`crate::auth::extractors::RequirePermission`] (the membership as it is now).

mod api_keys;
mod audit_log;
mod invitations;
mod members;
mod organization;

use utoipa_actix_web::service_config::ServiceConfig;

pub fn configure(cfg: &mut ServiceConfig) {
    members::configure(cfg);
    api_keys::configure(cfg);
    audit_log::configure(cfg);
    invitations::configure(cfg);
    organization::configure(cfg);
}
