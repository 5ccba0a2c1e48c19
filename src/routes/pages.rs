//! Pages served by the binary: no build step, no external loads. `/account` is
//! protected by the guard like any other route (signed out: 307 to `/sign-in`).

use actix_web::http::header;
use actix_web::{HttpResponse, web};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/", web::get().to(|| page(include_str!("../../static/home.html"))))
        .route(
            "/sign-in",
            web::get().to(|| page(include_str!("../../static/sign-in.html"))),
        )
        .route(
            "/sign-up",
            web::get().to(|| page(include_str!("../../static/sign-in.html"))),
        )
        .route(
            "/account",
            web::get().to(|| page(include_str!("../../static/account.html"))),
        )
        .route(
            "/reset-password",
            web::get().to(|| page(include_str!("../../static/reset-password.html"))),
        )
        .route(
            "/accept-invitation",
            web::get().to(|| page(include_str!("../../static/accept-invitation.html"))),
        )
        .route("/assets/{file}", web::get().to(asset));
}

/// Scripts and styles only from this origin; no framing (clickjacking).
const CSP: &str = "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; \
    frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

async fn page(html: &'static str) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header(("content-security-policy", CSP))
        .insert_header(("x-content-type-options", "nosniff"))
        .insert_header(("referrer-policy", "same-origin"))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(html)
}

async fn asset(file: web::Path<String>) -> HttpResponse {
    let (body, content_type) = match file.as_str() {
        "gatehouse.css" => (
            include_str!("../../static/assets/gatehouse.css"),
            "text/css; charset=utf-8",
        ),
        "sign-in.js" => (
            include_str!("../../static/assets/sign-in.js"),
            "text/javascript; charset=utf-8",
        ),
        "account.js" => (
            include_str!("../../static/assets/account.js"),
            "text/javascript; charset=utf-8",
        ),
        "accept-invitation.js" => (
            include_str!("../../static/assets/accept-invitation.js"),
            "text/javascript; charset=utf-8",
        ),
        "reset-password.js" => (
            include_str!("../../static/assets/reset-password.js"),
            "text/javascript; charset=utf-8",
        ),
        _ => {
            return actix_web::ResponseError::error_response(&crate::error::AppError::NotFound(
                "no such asset".to_owned(),
            ));
        }
    };
    HttpResponse::Ok()
        .content_type(content_type)
        .insert_header(("x-content-type-options", "nosniff"))
        .insert_header((header::CACHE_CONTROL, "public, max-age=300"))
        .body(body)
}
