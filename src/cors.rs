//! CORS for the origins in `ALLOWED_ORIGINS`: browser apps on those origins may call the
//! API with credentials (cookies or a bearer token). The guard middleware applies it:
//! preflights are answered first, since they carry no credentials, and (when
//! `ALLOWED_ORIGINS` is set) every response gets its CORS headers. Other origins get
//! none, so browsers keep their responses from scripts.

use actix_web::HttpResponse;
use actix_web::dev::ServiceRequest;
use actix_web::http::Method;
use actix_web::http::header::{self, HeaderMap, HeaderValue};

use crate::config::Config;

const ALLOW_METHODS: &str = "GET, POST, PUT, PATCH, DELETE, OPTIONS";
const ALLOW_HEADERS: &str = "authorization, content-type, idempotency-key, if-match, x-request-id";
const EXPOSE_HEADERS: &str = "etag, idempotent-replayed, retry-after, ratelimit-limit, ratelimit-remaining, ratelimit-reset, x-request-id, x-user-id";

/// The request's `Origin` when it is one of `ALLOWED_ORIGINS` (it gets CORS headers).
pub fn allowed_origin(req: &ServiceRequest, config: &Config) -> Option<HeaderValue> {
    if config.allowed_origins.is_empty() {
        return None;
    }
    let origin = req.headers().get(header::ORIGIN)?;
    config.is_origin_allowed(origin.to_str().ok()?).then(|| origin.clone())
}

/// The answer to a CORS preflight (`OPTIONS` with `Access-Control-Request-Method`), which
/// carries no credentials and is answered before any guard; `None` for other requests.
pub fn preflight(req: &ServiceRequest, allowed: Option<&HeaderValue>) -> Option<HttpResponse> {
    if req.method() != Method::OPTIONS || !req.headers().contains_key(header::ACCESS_CONTROL_REQUEST_METHOD) {
        return None;
    }
    let mut response = HttpResponse::NoContent();
    response.insert_header((header::VARY, "Origin"));
    if let Some(origin) = allowed {
        response
            .insert_header((header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone()))
            .insert_header((header::ACCESS_CONTROL_ALLOW_CREDENTIALS, "true"))
            .insert_header((header::ACCESS_CONTROL_ALLOW_METHODS, ALLOW_METHODS))
            .insert_header((header::ACCESS_CONTROL_ALLOW_HEADERS, ALLOW_HEADERS))
            .insert_header((header::ACCESS_CONTROL_MAX_AGE, "600"));
    }
    Some(response.finish())
}

/// The CORS headers of a response: `Vary: Origin` whenever some origin is allowed (the
/// response then depends on the request's `Origin`), and for an allowed origin the
/// permission to read the response with credentials. Without `ALLOWED_ORIGINS` no
/// response depends on `Origin`, and none gets a CORS header.
pub fn decorate(headers: &mut HeaderMap, config: &Config, allowed: Option<HeaderValue>) {
    if config.allowed_origins.is_empty() {
        return;
    }
    headers.append(header::VARY, HeaderValue::from_static("Origin"));
    if let Some(origin) = allowed {
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
            HeaderValue::from_static("true"),
        );
        headers.insert(
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static(EXPOSE_HEADERS),
        );
    }
}
