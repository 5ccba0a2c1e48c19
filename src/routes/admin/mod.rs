//! `/api/admin/…`: the middleware lets only `org:admin` of the active organization in;
//! the handlers say so again with [`crate::auth::extractors::RequireAdmin`].

mod members;

use utoipa_actix_web::service_config::ServiceConfig;

pub fn configure(cfg: &mut ServiceConfig) {
    members::configure(cfg);
}
