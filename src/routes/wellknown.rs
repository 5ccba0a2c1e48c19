//! `/.well-known/jwks.json`: the public keys that verify session tokens.

use actix_web::http::header;
use actix_web::{HttpResponse, get, web};
use utoipa_actix_web::service_config::ServiceConfig;

use crate::state::AppState;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(jwks);
}

/// The JSON Web Key Set of the session-token signing keys (the active key first;
/// older keys stay published while their tokens may live).
#[utoipa::path(tag = "operations", responses((status = 200, description = "RFC 7517 JWK set", body = Object)))]
#[get("/.well-known/jwks.json")]
async fn jwks(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "public, max-age=300"))
        .json(state.keys.jwks())
}
