//! `GET /v1/oauth/{provider}` and its callback: sign-in with an OAuth / OpenID Connect
//! provider. The way out sets the sealed flow cookie and redirects to the provider; the
//! way back checks it, lets the provider vouch for the user, and signs this browser in.
//! Every failure lands on `/sign-in?error=oauth_failed`, with no session and a log line
//! that says why.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, get, web};
use serde::Deserialize;
use utoipa::IntoParams;

use super::signed_in_redirect;
use crate::auth::cookies::ClientCookie;
use crate::auth::oauth::Flow;
use crate::auth::request::{NavigationContext, same_origin_redirect};
use crate::clock::now_ms;
use crate::error::{AppError, AppResult, ErrorBody};
use crate::services::oauth;
use crate::state::AppState;

const FAILED: &str = "/sign-in?error=oauth_failed";

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StartQuery {
    /// Where to go once signed in (same-origin only; default `/account`).
    pub redirect_url: Option<String>,
}

/// Starts a sign-in at the provider: a 302 to its authorization endpoint (authorization
/// code with PKCE S256, `state`, and `nonce` for OpenID Connect), with the flow sealed
/// in a short-lived cookie bound to this browser. An unknown provider: 404.
#[utoipa::path(
    tag = "client",
    params(("provider" = String, Path, description = "A configured provider's name"), StartQuery),
    responses(
        (status = 302, description = "To the provider's authorization endpoint (the flow cookie set); or to `/sign-in?error=oauth_failed` when the provider cannot be reached"),
        (status = 404, description = "No such provider", body = ErrorBody),
    )
)]
#[get("/oauth/{provider}")]
#[tracing::instrument(skip_all, fields(provider = %provider))]
pub async fn start(
    state: web::Data<AppState>,
    req: HttpRequest,
    provider: web::Path<String>,
    query: web::Query<StartQuery>,
) -> AppResult<HttpResponse> {
    let provider = state
        .oauth
        .get(&provider)
        .ok_or_else(|| AppError::NotFound(format!("no sign-in provider `{provider}`")))?;
    let authorization = match state.oauth.authorize(provider).await {
        Ok(authorization) => authorization,
        Err(why) => {
            tracing::warn!(provider = provider.name(), reason = %why, "oauth sign-in failed to start");
            return Ok(redirect(HttpResponse::Found(), FAILED));
        }
    };
    let flow = Flow {
        provider: provider.name().to_owned(),
        state: authorization.state,
        nonce: authorization.nonce,
        pkce_verifier: authorization.pkce_verifier,
        redirect_url: same_origin_redirect(&req, &state.config, query.redirect_url.as_deref()),
        expires_at: now_ms() + crate::auth::oauth::flow::LIFETIME_SECS * 1000,
    };
    let mut response = HttpResponse::Found();
    response.cookie(flow.cookie(&state.sealer, state.config.is_production()));
    Ok(redirect(response, &authorization.url))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CallbackQuery {
    pub code: Option<String>,
    pub state: Option<String>,
    /// The provider's error (`access_denied` when the user cancelled).
    pub error: Option<String>,
    pub error_description: Option<String>,
}

/// The provider sends the browser back here. Checks `state` against this browser's flow
/// cookie, exchanges the code (with the PKCE verifier), verifies the ID token (the
/// provider's JWKS, `iss`, `aud`, `exp`, `nonce`), then signs in the linked user, links
/// an existing user only when both sides have the email verified, or creates one; 303 to
/// the flow's `redirect_url` with the session cookies (or to the second-factor step).
/// Any failure: 303 to `/sign-in?error=oauth_failed`, no session.
#[utoipa::path(
    tag = "client",
    params(("provider" = String, Path, description = "A configured provider's name"), CallbackQuery),
    responses(
        (status = 303, description = "Signed in (cookies set) and sent on; or sent to `/sign-in?error=oauth_failed`"),
        (status = 404, description = "No such provider", body = ErrorBody),
    )
)]
#[get("/oauth/{provider}/callback")]
#[tracing::instrument(skip_all, fields(provider = %provider))]
pub async fn callback(
    state: web::Data<AppState>,
    req: HttpRequest,
    ctx: NavigationContext,
    cookie: ClientCookie,
    provider: web::Path<String>,
    query: web::Query<CallbackQuery>,
) -> AppResult<HttpResponse> {
    let provider = state
        .oauth
        .get(&provider)
        .ok_or_else(|| AppError::NotFound(format!("no sign-in provider `{provider}`")))?;
    let secure = state.config.is_production();
    let failed = |reason: &dyn std::fmt::Display| {
        tracing::warn!(provider = provider.name(), reason = %reason, "oauth sign-in failed");
        let mut response = HttpResponse::SeeOther();
        response.cookie(Flow::removal(secure));
        Ok(redirect(response, FAILED))
    };
    let now = now_ms();
    let flow = match Flow::open(
        &req,
        &state.sealer,
        provider.name(),
        query.state.as_deref().unwrap_or_default(),
        now,
    ) {
        Ok(flow) => flow,
        Err(why) => return failed(&why),
    };
    if let Some(error) = &query.error {
        let description = query.error_description.as_deref().unwrap_or_default();
        return failed(&format!("the provider answered `{error}` {description}"));
    }
    let Some(code) = query.code.as_deref().filter(|c| !c.is_empty()) else {
        return failed(&"the callback has no code");
    };
    let profile = match state.oauth.finish(provider, code, &flow).await {
        Ok(profile) => profile,
        Err(why) => return failed(&why),
    };
    let ctx = ctx.0;
    let outcome = match oauth::sign_in(
        &state,
        provider.name(),
        &profile,
        cookie.client_id().as_deref(),
        &ctx,
        now,
    )
    .await
    {
        Ok(outcome) => outcome,
        Err(why) => return failed(&why),
    };
    let mut response = signed_in_redirect(&state, &cookie, &ctx, outcome, &flow.redirect_url).await?;
    response
        .add_cookie(&Flow::removal(secure))
        .map_err(AppError::internal)?;
    Ok(response)
}

fn redirect(mut builder: actix_web::HttpResponseBuilder, location: &str) -> HttpResponse {
    builder.insert_header((header::LOCATION, location)).finish()
}
