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
pub const API_KEY: &str = "api_key";
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
            API_KEY,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("gk_…")
                    .description(Some(
                        "An organization API key (`POST /api/admin/api-keys`): its scopes are its permissions; \
                         it reaches the item routes and `GET /api/me` only.",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            CLIENT_COOKIE,
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                crate::auth::cookies::CLIENT_COOKIE,
                "The device cookie set by sign-up and sign-in.",
            ))),
        );
    }
}

/// The full document, with the paths of every handler.
pub fn api_doc() -> Spec {
    let (_, mut spec) = App::new()
        .into_utoipa_app()
        .openapi(BaseDoc::openapi())
        .configure(crate::routes::configure)
        .split_for_parts();
    CommonResponses.modify(&mut spec);
    spec
}

/// Operations that touch neither the database nor another service: they cannot answer 503.
const NO_DEPENDENCY: &[&str] = &["/healthz", "/metrics", "/.well-known/jwks.json"];

/// Adds the statuses that the shared machinery answers, so that every status an
/// operation can answer is in the spec (a client generated from it, or a fuzzer run
/// over it, meets no surprise): the JSON extractor (400 malformed, 413 too large, 415
/// wrong content type, 422 wrong shape), the path and query extractors (404, 422), the
/// guard (401 signed out, 403 not an admin or a cross-origin cookie request), the rate
/// limiter (429) and a dependency that is down (503). A handler's own description of a
/// status wins.
struct CommonResponses;

impl Modify for CommonResponses {
    fn modify(&self, openapi: &mut Spec) {
        use crate::auth::policy::{RouteClass, RoutePolicy};
        use utoipa::openapi::path::ParameterIn;
        let policy = RoutePolicy::default();
        for (path, item) in openapi.paths.paths.iter_mut() {
            let class = policy.classify(path);
            let operations = [
                (&mut item.get, false),
                (&mut item.head, false),
                (&mut item.post, true),
                (&mut item.put, true),
                (&mut item.patch, true),
                (&mut item.delete, true),
            ];
            for (operation, unsafe_method) in operations {
                let Some(operation) = operation.as_mut() else { continue };
                let params_in = |wanted: ParameterIn| {
                    operation.parameters.iter().flatten().any(|p| match p {
                        utoipa::openapi::RefOr::T(p) => p.parameter_in == wanted,
                        utoipa::openapi::RefOr::Ref(_) => false,
                    })
                };
                let mut add = Vec::new();
                if operation.request_body.is_some() {
                    add.extend([
                        ("400", "Malformed JSON"),
                        ("413", "The body is too large"),
                        ("415", "The body is not `application/json`"),
                        ("422", "The body does not have the expected shape"),
                    ]);
                }
                if params_in(ParameterIn::Path) {
                    add.push(("404", "Nothing with that id"));
                }
                if params_in(ParameterIn::Query) {
                    add.push(("422", "A query parameter is invalid"));
                }
                match class {
                    RouteClass::Protected => add.push(("401", "Signed out, or the session token is invalid")),
                    RouteClass::Admin => add.extend([
                        ("401", "Signed out, or the session token is invalid"),
                        ("403", "Needs an active organization and the role `org:admin`"),
                    ]),
                    RouteClass::Backend => add.push(("401", "A missing or wrong secret key")),
                    RouteClass::Public => {}
                }
                if unsafe_method && matches!(class, RouteClass::Protected | RouteClass::Admin) {
                    add.push(("403", "A cookie-authenticated change from another origin"));
                }
                if policy.is_rate_limited(path) {
                    add.push(("429", "Rate limited: retry after `Retry-After` seconds"));
                }
                if !NO_DEPENDENCY.contains(&path.as_str()) {
                    add.push((
                        "503",
                        "A dependency (the database) is briefly unavailable: retry after `Retry-After` seconds",
                    ));
                }
                for (status, description) in add {
                    operation
                        .responses
                        .responses
                        .entry(status.to_owned())
                        .or_insert_with(|| error_response(status, description).into());
                }
            }
        }
    }
}

fn error_response(status: &str, description: &str) -> utoipa::openapi::Response {
    use utoipa::openapi::{ContentBuilder, HeaderBuilder, Ref, ResponseBuilder, Type};
    let mut response = ResponseBuilder::new().description(description).content(
        "application/json",
        ContentBuilder::new()
            .schema(Some(Ref::from_schema_name("ErrorBody")))
            .build(),
    );
    if status == "429" || status == "503" {
        response = response.header(
            "Retry-After",
            HeaderBuilder::new()
                .schema(Some(utoipa::openapi::ObjectBuilder::new().schema_type(Type::Integer)))
                .description(Some("Seconds to wait before retrying"))
                .build(),
        );
    }
    response.build()
}

/// The document as committed in `openapi/openapi.json`.
pub fn api_doc_json() -> String {
    let mut json = api_doc().to_pretty_json().expect("the OpenAPI document serializes");
    json.push('\n');
    json
}
