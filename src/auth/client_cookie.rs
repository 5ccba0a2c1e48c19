//! The `__client` cookie: an actix-session cookie that names this device's client row.

use actix_session::{Session, SessionExt};
use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest};
use std::future::{Ready, ready};

pub const CLIENT_COOKIE: &str = "__client";
const CLIENT_ID_KEY: &str = "client_id";

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
