//! What a sign-in at a provider must remember between the redirect out and the callback
//! (the `state`, the `nonce`, the PKCE verifier, where to go afterwards) travels in a
//! short-lived cookie sealed with AES-256-GCM: the server keeps nothing, and the cookie
//! binds the flow to the browser that started it (a callback URL opened in another
//! browser, or with another `state`, fails).

use actix_web::HttpRequest;
use actix_web::cookie::{Cookie, SameSite, time};
use serde::{Deserialize, Serialize};

use crate::auth::sealing::Sealer;

pub const COOKIE: &str = "__gatehouse_oauth";
/// Only the callback reads it.
const PATH: &str = "/v1/oauth";
/// Time to sign in at the provider.
pub const LIFETIME_SECS: i64 = 600;
/// The sealing context: a flow cookie opens only as a flow cookie.
const CONTEXT: &str = "oauth flow v1";

#[derive(Debug, Serialize, Deserialize)]
pub struct Flow {
    pub provider: String,
    pub state: String,
    pub nonce: String,
    pub pkce_verifier: String,
    pub redirect_url: String,
    /// Unix milliseconds.
    pub expires_at: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum FlowError {
    #[error("no sign-in flow cookie on this browser (started elsewhere, or expired)")]
    Missing,
    #[error("the flow cookie does not open (tampered with, or another SECRET_KEY)")]
    Tampered,
    #[error("the sign-in flow expired")]
    Expired,
    #[error("the flow was started for provider `{0}`")]
    OtherProvider(String),
    #[error("`state` does not match the one this browser was sent with")]
    StateMismatch,
}

impl Flow {
    /// The cookie that carries this flow.
    pub fn cookie(&self, sealer: &Sealer, secure: bool) -> Cookie<'static> {
        let json = serde_json::to_vec(self).expect("a flow serializes");
        Cookie::build(COOKIE, sealer.seal(CONTEXT, &json))
            .path(PATH)
            .http_only(true)
            .secure(secure)
            // The callback is a top-level navigation back from the provider's site: Lax
            // sends the cookie on it, and on no cross-site subrequest.
            .same_site(SameSite::Lax)
            .max_age(time::Duration::seconds(LIFETIME_SECS))
            .finish()
    }

    /// The cookie that removes it (the callback spends the flow, whatever the outcome).
    pub fn removal(secure: bool) -> Cookie<'static> {
        let mut cookie = Cookie::build(COOKIE, "")
            .path(PATH)
            .http_only(true)
            .secure(secure)
            .same_site(SameSite::Lax)
            .finish();
        cookie.make_removal();
        cookie
    }

    /// This browser's flow for `provider`, if `state` is the one it was sent with.
    pub fn open(req: &HttpRequest, sealer: &Sealer, provider: &str, state: &str, now: i64) -> Result<Self, FlowError> {
        let cookie = req.cookie(COOKIE).ok_or(FlowError::Missing)?;
        let json = sealer.open(CONTEXT, cookie.value()).map_err(|_| FlowError::Tampered)?;
        let flow: Flow = serde_json::from_slice(&json).map_err(|_| FlowError::Tampered)?;
        if flow.expires_at <= now {
            return Err(FlowError::Expired);
        }
        if flow.provider != provider {
            return Err(FlowError::OtherProvider(flow.provider));
        }
        if aws_lc_rs::constant_time::verify_slices_are_equal(flow.state.as_bytes(), state.as_bytes()).is_err() {
            return Err(FlowError::StateMismatch);
        }
        Ok(flow)
    }
}
