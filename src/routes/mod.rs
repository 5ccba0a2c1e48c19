//! The HTTP layer, one folder or file per area; each exposes `configure`.

pub mod admin;
pub mod backend;
pub mod client;
pub mod health;
pub mod items;
pub mod me;
pub mod org_directory;
pub mod org_settings;
pub mod organizations;
pub mod pages;
pub mod tokens;
pub mod webhooks;
pub mod wellknown;

use utoipa_actix_web::scope;
use utoipa_actix_web::service_config::ServiceConfig;

/// Every documented route (collected into the OpenAPI document), grouped by their first
/// path segments: the router only tries the routes of the scope a request's path is in
/// (a route pattern with a parameter costs a regular-expression match to try), and each
/// scope lists its busiest routes first. The router tries its entries in turn (a hundred
/// instructions or more each, even for a plain path), so the API, the bulk of the
/// traffic, comes first; then the probes (a load balancer's every few seconds, cheap
/// enough that the router's steps are a good part of their cost); then the client API
/// (every open tab refreshes its token about once a minute, but each refresh signs a
/// token, which dwarfs the three routes tried before it), the key documents and the
/// Backend API.
pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(scope("/api").configure(|cfg| {
        me::configure(cfg);
        items::configure(cfg);
        org_settings::configure(cfg);
        org_directory::configure(cfg);
        organizations::configure(cfg);
        admin::configure(cfg);
        tokens::configure(cfg);
        webhooks::configure(cfg);
    }));
    health::configure(cfg);
    cfg.service(scope("/v1").configure(client::configure));
    wellknown::configure(cfg);
    cfg.service(scope("/backend/v1").configure(backend::configure));
}

/// The patterns of the routes [`configure_unlisted`] adds (for the per-route metrics,
/// registered at start-up beside the documented ones).
pub const UNLISTED_PATTERNS: &[&str] = &[
    "/",
    "/sign-in",
    "/sign-up",
    "/account",
    "/reset-password",
    "/accept-invitation",
    "/assets/{file}",
    "/swagger-ui",
    "/swagger-ui/{_:.*}",
    "/openapi.json",
];

/// Routes that are not part of the API document: pages and Swagger UI itself.
pub fn configure_unlisted(cfg: &mut actix_web::web::ServiceConfig, api_json: actix_web::web::Bytes) {
    use utoipa_swagger_ui::{Config, SwaggerUi};
    pages::configure(cfg);
    cfg.route(
        "/openapi.json",
        actix_web::web::get().to(move || {
            let body = api_json.clone();
            async move {
                actix_web::HttpResponse::Ok()
                    .content_type(actix_web::http::header::ContentType::json())
                    .body(body)
            }
        }),
    )
    .service(
        SwaggerUi::new("/swagger-ui/{_:.*}")
            // The bundle would otherwise send the spec to validator.swagger.io.
            .config(
                Config::new(["/openapi.json"])
                    .validator_url("none")
                    .persist_authorization(true),
            ),
    )
    .route(
        "/swagger-ui",
        actix_web::web::get().to(|| async {
            actix_web::HttpResponse::PermanentRedirect()
                .insert_header((actix_web::http::header::LOCATION, "/swagger-ui/"))
                .finish()
        }),
    );
}
