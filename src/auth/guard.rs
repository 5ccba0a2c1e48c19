//! The guard middleware (Clerk's `clerkMiddleware()`): resolves the session of every
//! request once, applies the route policy and the rate limit, and leaves an
//! [`AuthState`] for the extractors. It reads only the narrow [`Guard`] it is given as
//! app data, never the whole application state.

use std::sync::Arc;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::http::{Method, StatusCode};
use actix_web::middleware::Next;
use actix_web::{Error, HttpMessage, HttpResponse, ResponseError, web};

use super::api_keys::{self, ApiKeyCache};
use super::authenticator::{Authenticator, WorkerTokens};
use super::context::{AuthObject, AuthState, Check, SignedOutReason};
use super::cookies::{ClientCookie, SESSION_COOKIE};
use super::minting::TokenMinter;
use super::permissions::ADMIN_ROLE;
use super::policy::{RouteClass, RoutePolicy, is_api_path};
use super::rate_limit::{RateLimitStatus, RateLimiterSet};
use super::request::{client_ip, client_ip_addr, is_trusted_origin};
use super::revocation::RevocationList;
use crate::clock::now_secs;
use crate::config::Config;
use crate::cors;
use crate::db::Db;
use crate::db::audit::{self, Principal, RequestContext as AuditContext};
use crate::error::AppError;
use crate::telemetry::Metrics;

/// What the guard needs, registered as `web::Data<Guard>`.
///
/// Cheap to clone, and every clone shares the same caches and limits: each worker
/// registers its own copy, so the `Data` the guard clones on every request has a
/// reference count that no other core writes (one shared count bounced between the
/// cores on every request).
#[derive(Clone)]
pub struct Guard {
    pub policy: RoutePolicy,
    pub authenticator: Arc<Authenticator>,
    pub revocations: Arc<RevocationList>,
    pub rate_limits: Option<Arc<RateLimiterSet>>,
    pub config: Arc<Config>,
    pub metrics: Arc<Metrics>,
    /// Mints the handshake's fresh token.
    pub tokens: Arc<TokenMinter>,
    pub db: Db,
    /// Organization API keys looked up recently.
    pub api_keys: Arc<ApiKeyCache>,
    /// This copy's own tokens, in front of the authenticator's shared cache (empty in
    /// every clone: see [`WorkerTokens`]).
    pub worker_tokens: WorkerTokens,
}

/// Where the request's token came from. A bearer token stays bytes: a token this worker
/// has seen is found by its bytes, and only a new one is checked to be UTF-8 (scanning a
/// session token's ~800 bytes on every request cost as much as finding it).
enum Credentials<'a> {
    None,
    Bearer(&'a [u8]),
    Cookie(String),
}

fn credentials(req: &ServiceRequest) -> Credentials<'_> {
    if let Some(value) = req.headers().get(header::AUTHORIZATION) {
        // Anything but `Bearer <token>` is an empty (invalid) bearer; the cookie is then
        // not consulted, so a broken header never silently falls back to another session.
        let bytes = value.as_bytes();
        return match bytes.split_at_checked(7) {
            Some((scheme, token)) if scheme.eq_ignore_ascii_case(b"bearer ") => Credentials::Bearer(token.trim_ascii()),
            _ => Credentials::Bearer(b""),
        };
    }
    if !req.headers().contains_key(header::COOKIE) {
        return Credentials::None;
    }
    match req.cookie(SESSION_COOKIE) {
        Some(cookie) if !cookie.value().is_empty() => Credentials::Cookie(cookie.value().to_owned()),
        _ => Credentials::None,
    }
}

const X_USER_ID: HeaderName = HeaderName::from_static("x-user-id");

/// The middleware. Register it once, around the whole app.
pub async fn guard(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, Error> {
    let Some(state) = req.app_data::<web::Data<Guard>>().cloned() else {
        let error = AppError::Misconfigured("the guard middleware needs `web::Data<Guard>` registered as app data");
        return Ok(req.into_response(error.error_response()).map_into_right_body());
    };
    let cors_origin = cors::allowed_origin(&req, &state.config);
    if let Some(response) = cors::preflight(&req, cors_origin.as_ref()) {
        return Ok(req.into_response(response).map_into_right_body());
    }
    let response = protect(req, next, &state).await?;
    let mut response = response;
    cors::decorate(response.headers_mut(), &state.config, cors_origin);
    Ok(response)
}

/// The guard proper: resolve, decide, and (when the request may go on) call the app.
async fn protect<B: MessageBody>(
    req: ServiceRequest,
    next: Next<B>,
    state: &Guard,
) -> Result<ServiceResponse<EitherBody<B>>, Error> {
    // The path the router matches (percent-decoded where it is safe), not the raw one.
    let path = req.match_info().as_str();
    let rules = state.policy.rules(path);
    let class = rules.class;
    let api = is_api_path(path);
    let rate_limited = state.rate_limits.is_some() && rules.rate_limited;

    let credentials = credentials(&req);
    let has_bearer = matches!(credentials, Credentials::Bearer(_));
    let (mut resolved, via_cookie) = match (class, credentials) {
        // The Backend API has its own guard; a secret key is not a session token.
        (RouteClass::Backend, _) | (_, Credentials::None) => {
            (AuthState::SignedOut(SignedOutReason::NoCredentials), false)
        }
        (_, Credentials::Bearer(token)) => (resolve(state, token).await, false),
        (_, Credentials::Cookie(token)) => (resolve(state, token.as_bytes()).await, true),
    };

    // Clerk's handshake, done in one server: a page whose `__session` is missing or
    // stale, on a device whose `__client` still holds a live session, gets a fresh token
    // in place instead of a trip to the sign-in page.
    let mut fresh_session_token = None;
    if class == RouteClass::Protected
        && !api
        && !has_bearer
        && matches!(resolved, AuthState::SignedOut(_))
        // Boxed: its database and signing steps would otherwise make every request's
        // future as large as theirs, allocated and moved on every call.
        && let Some((auth, jwt)) = Box::pin(handshake(&req, state)).await
    {
        resolved = AuthState::SignedIn(auth);
        fresh_session_token = Some(jwt);
    }

    let decision = match (&resolved, class) {
        (_, RouteClass::Public | RouteClass::Backend) => Ok(()),
        (AuthState::SignedOut(reason), _) if api => Err(reason.to_error().error_response()),
        (AuthState::SignedOut(_), _) => Err(redirect_to_sign_in(&req)),
        (AuthState::SignedIn(auth), RouteClass::Admin) if !auth.has(Check::Role(ADMIN_ROLE)) => {
            let message = if auth.org_id.is_none() {
                "this route needs an active organization and the role org:admin"
            } else {
                "this route needs the role org:admin in the active organization"
            };
            Err(AppError::Forbidden(message.to_owned()).error_response())
        }
        // An API key reaches the org data routes and `GET /api/me`, nothing else.
        (AuthState::SignedIn(auth), _) if auth.is_api_key() && !key_may_use(req.method(), path) => Err(
            AppError::Forbidden("an API key can call the item routes (/api/items…) and GET /api/me only".to_owned())
                .error_response(),
        ),
        (AuthState::SignedIn(_), _) => Ok(()),
    };
    if let Err(response) = decision {
        return Ok(req.into_response(response).map_into_right_body());
    }

    // A session carried by a cookie may not change state from another origin (CSRF).
    if via_cookie && class != RouteClass::Public && !is_safe(req.method()) {
        let origin = req.headers().get(header::ORIGIN).and_then(|v| v.to_str().ok());
        if !origin.is_some_and(|o| is_trusted_origin(req.request(), &state.config, o)) {
            let error =
                AppError::Forbidden("a cookie-authenticated change needs a same-origin Origin header".to_owned());
            return Ok(req.into_response(error.error_response()).map_into_right_body());
        }
    }

    let signed_in = match &resolved {
        AuthState::SignedIn(auth) => Some(auth.clone()),
        AuthState::SignedOut(_) => None,
    };
    // Boxed for the same reason as the handshake (a Redis call, when the limits are there).
    let rate = match &state.rate_limits {
        Some(limits) if rate_limited => Some(match &signed_in {
            Some(auth) => Box::pin(limits.check(&auth.user_id)).await,
            None => {
                let key = format!("ip:{}", client_ip(req.request(), state.config.trust_proxy_headers));
                Box::pin(limits.check(&key)).await
            }
        }),
        _ => None,
    };
    if let Some(status) = rate
        && let Some(retry_after_secs) = status.retry_after_secs
    {
        state.metrics.incr("rate_limited");
        let mut response = AppError::RateLimited { retry_after_secs }.error_response();
        add_rate_headers(&mut response, status);
        return Ok(req.into_response(response).map_into_right_body());
    }

    // Who acts and from where, for the audit entries the handler writes.
    let context = AuditContext {
        principal: signed_in.as_ref().map(|auth| Principal {
            kind: auth.actor_type,
            id: auth.user_id.clone(),
            impersonator: auth
                .actor
                .as_ref()
                .and_then(|actor| actor.get("sub"))
                .and_then(|sub| sub.as_str())
                .map(str::to_owned),
        }),
        backend: class == RouteClass::Backend,
        ip: client_ip_addr(req.request(), state.config.trust_proxy_headers),
        user_agent: req.headers().get(header::USER_AGENT).cloned(),
    };
    // A request without credentials (most of a public route's) leaves no state: the
    // extractors read its absence inside the audit scope as signed out (see
    // `extractors::auth_state`), and the request's extensions are spared an insert and
    // its allocation.
    if !matches!(resolved, AuthState::SignedOut(SignedOutReason::NoCredentials)) {
        req.extensions_mut().insert(resolved);
    }
    let mut response = audit::CONTEXT.scope(context, next.call(req)).await?;
    if let Some(status) = rate {
        add_rate_headers(response.response_mut(), status);
    }
    if let Some(jwt) = fresh_session_token
        && let Err(e) = response.response_mut().add_cookie(&state.tokens.cookie(jwt))
    {
        tracing::warn!(error = %e, "could not set the refreshed __session cookie");
    }
    if api && let Some(value) = signed_in.and_then(|auth| auth.user_id_header.clone()) {
        response.headers_mut().insert(X_USER_ID, value);
    }
    Ok(response.map_into_left_body())
}

/// A fresh session token for the device's active session, if it is live.
async fn handshake(req: &ServiceRequest, state: &Guard) -> Option<(Arc<AuthObject>, String)> {
    use actix_session::SessionExt;
    let client_id = ClientCookie::new(req.get_session()).client_id()?;
    let pool = &state.db.pool;
    let client = crate::db::clients::find(pool, &client_id).await.ok().flatten()?;
    let session = crate::db::sessions::find(pool, &client.last_active_session_id?)
        .await
        .ok()
        .flatten()?;
    if session.client_id != client.id
        || !session.is_live(crate::clock::now_ms())
        || state.revocations.contains(&session.id)
    {
        return None;
    }
    let jwt = state.tokens.session_token(&session, None).await.ok()?;
    let auth = state.authenticator.authenticate(&jwt, now_secs()).await.ok()?;
    state.metrics.incr("handshakes");
    Some((auth, jwt))
}

/// The routes an API key may call: the org data routes, and `GET /api/me`.
fn key_may_use(method: &Method, path: &str) -> bool {
    path == "/api/items" || path.starts_with("/api/items/") || (path == "/api/me" && method == Method::GET)
}

/// The session (or API key) a token stands for. Bytes that are not UTF-8 are no token
/// (they are resolved as the empty one).
async fn resolve(state: &Guard, token: &[u8]) -> AuthState {
    let now = now_secs();
    let authenticated = if token.starts_with(api_keys::PREFIX.as_bytes()) {
        let token = std::str::from_utf8(token).unwrap_or_default();
        state.api_keys.authenticate(&state.db, token, now * 1000).await
    } else {
        state.worker_tokens.authenticate(&state.authenticator, token, now).await
    };
    match authenticated {
        // Revoked sessions are refused on their next request, whatever the token's `exp`.
        Ok(auth) if state.revocations.contains(&auth.session_id) => {
            AuthState::SignedOut(SignedOutReason::SessionStopped)
        }
        Ok(auth) => AuthState::SignedIn(auth),
        Err(reason) => AuthState::SignedOut(reason),
    }
}

fn is_safe(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

fn add_rate_headers<B>(response: &mut HttpResponse<B>, status: RateLimitStatus) {
    let headers = response.headers_mut();
    for (name, value) in [
        ("ratelimit-limit", status.limit as u64),
        ("ratelimit-remaining", status.remaining as u64),
        ("ratelimit-reset", status.reset_secs),
    ] {
        headers.insert(HeaderName::from_static(name), HeaderValue::from(value));
    }
}

/// 307 to `/sign-in?redirect_url=<this URL>`, as Clerk's middleware does for pages.
fn redirect_to_sign_in(req: &ServiceRequest) -> HttpResponse {
    let info = req.connection_info();
    let original = format!("{}://{}{}", info.scheme(), info.host(), req.uri());
    HttpResponse::build(StatusCode::TEMPORARY_REDIRECT)
        .insert_header((
            header::LOCATION,
            format!("/sign-in?redirect_url={}", percent_encode(&original)),
        ))
        .finish()
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
pub fn percent_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len() * 3);
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || b"-_.~".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_encoding() {
        assert_eq!(percent_encode("http://a.b/x?y=1&z"), "http%3A%2F%2Fa.b%2Fx%3Fy%3D1%26z");
    }
}
