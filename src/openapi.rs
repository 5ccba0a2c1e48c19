//! The OpenAPI document: a base (info, security schemes) plus the paths collected from
//! the handlers by utoipa-actix-web. `gatehouse openapi` prints it; a test keeps the
//! committed `openapi/openapi.json` in step.

use actix_web::App;
use utoipa::openapi::OpenApi as Spec;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_actix_web::AppExt;

/// Security scheme of the session token (`Authorization: Bearer <jwt>`).
pub const SESSION_TOKEN: &str = "session_token";
/// Security scheme of the Backend API (`Authorization: Bearer <SECRET_KEY>`).
pub const SECRET_KEY: &str = "secret_key";
/// Security scheme of the `__client` cookie used by the client API.
pub const CLIENT_COOKIE: &str = "client_cookie";

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Gatehouse",
        description = "Clerk-style sessions, organizations and route protection for actix-web. \
            Sign up with `POST /v1/sign-up`, then click Authorize and paste the returned `jwt`.",
        license(name = "MIT")
    ),
    modifiers(&SecuritySchemes),
    tags(
        (name = "client", description = "Frontend API: sign-up, sign-in and this device's sessions (cookie `__client`)."),
        (name = "me", description = "The signed-in user: the auth object, profile, organizations."),
        (name = "organizations", description = "Organizations the user creates."),
        (name = "items", description = "Data of the active organization, or the personal account's own."),
        (name = "admin", description = "Administration of the active organization (role `org:admin`)."),
        (name = "backend", description = "Backend API, server to server: `Authorization: Bearer <SECRET_KEY>`."),
        (name = "webhooks", description = "Incoming webhooks (Clerk, Svix-signed)."),
        (name = "operations", description = "Health, readiness, metrics and keys."),
    )
)]
struct BaseDoc;

struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut Spec) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            SESSION_TOKEN,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some("A session token from `/v1/sign-in`, `/v1/sign-up` or a refresh."))
                    .build(),
            ),
        );
        components.add_security_scheme(
            SECRET_KEY,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "The Backend API secret key (`SECRET_KEY`; printed at start in development).",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            CLIENT_COOKIE,
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                crate::auth::client_cookie::CLIENT_COOKIE,
                "The device cookie set by sign-up and sign-in.",
            ))),
        );
    }
}

/// The full document, with the paths of every handler.
pub fn api_doc() -> Spec {
    let (_, spec) = App::new()
        .into_utoipa_app()
        .openapi(BaseDoc::openapi())
        .configure(crate::routes::configure)
        .split_for_parts();
    spec
}

/// The document as committed in `openapi/openapi.json`.
pub fn api_doc_json() -> String {
    let mut json = api_doc().to_pretty_json().expect("the OpenAPI document serializes");
    json.push('\n');
    json
}
