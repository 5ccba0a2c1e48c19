//! The two cookies: `__client`, an actix-session cookie that names this device's client
//! row, and `__session`, which carries a session token for pages and same-origin calls.

use actix_session::{Session, SessionExt};
use actix_web::cookie::{Cookie, SameSite, time::Duration as CookieDuration};
use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest};
use std::future::{Ready, ready};

pub const CLIENT_COOKIE: &str = "__client";
/// The session cookie read by the guard after the `Authorization` header.
pub const SESSION_COOKIE: &str = "__session";
const CLIENT_ID_KEY: &str = "client_id";

/// Builds `__session` cookies: HttpOnly, SameSite=Lax, `Secure` in production, living
/// as long as the token they carry.
#[derive(Debug, Clone, Copy)]
pub struct SessionCookies {
    pub lifetime_secs: i64,
    pub secure: bool,
}

impl SessionCookies {
    /// The `__session` cookie carrying `jwt`.
    pub fn carrying(&self, jwt: String) -> Cookie<'static> {
        Cookie::build(SESSION_COOKIE, jwt)
            .path("/")
            .http_only(true)
            .same_site(SameSite::Lax)
            .secure(self.secure)
            .max_age(CookieDuration::seconds(self.lifetime_secs))
            .finish()
    }

    /// An expired `__session` cookie, sent when the session it held has ended.
    pub fn cleared(&self) -> Cookie<'static> {
        let mut cookie = self.carrying(String::new());
        cookie.make_removal();
        cookie
    }
}

/// Typed access to the `__client` session (zero2prod's `TypedSession`).
pub struct ClientCookie(Session);

impl ClientCookie {
    pub fn new(session: Session) -> Self {
        Self(session)
    }

    /// The client id this device's cookie holds, if any.
    pub fn client_id(&self) -> Option<String> {
        self.0.get::<String>(CLIENT_ID_KEY).ok().flatten()
    }

    /// Points the cookie at `client_id` under a fresh session key, so that a cookie
    /// planted before sign-in (session fixation) is not the one that carries the session.
    pub fn sign_in(&self, client_id: &str) {
        self.0.renew();
        // Inserting a String cannot fail to serialize.
        let _ = self.0.insert(CLIENT_ID_KEY, client_id);
    }
}

impl FromRequest for ClientCookie {
    type Error = actix_web::Error;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _payload: &mut Payload) -> Self::Future {
        ready(Ok(Self(req.get_session())))
    }
}
