//! The Backend API's guard: `Authorization: Bearer <SECRET_KEY>`, compared in constant
//! time. A wrong or missing key is 401, never a redirect.

use std::future::{Ready, ready};

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{FromRequest, HttpRequest, web};

use crate::error::AppError;

/// The Backend API secret (`SECRET_KEY`), registered as `web::Data<SecretKey>`.
pub struct SecretKey(String);

impl SecretKey {
    pub fn new(key: String) -> Self {
        Self(key)
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretKey(…)")
    }
}

/// Proof that the request carries the secret key.
pub struct BackendKey;

impl BackendKey {
    fn check(req: &HttpRequest) -> Result<Self, AppError> {
        let secret = req.app_data::<web::Data<SecretKey>>().ok_or(AppError::Misconfigured(
            "the Backend API needs `web::Data<SecretKey>` registered as app data",
        ))?;
        let given = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, key)| key.trim())
            .unwrap_or_default();
        let expected = secret.expose().as_bytes();
        // Equal lengths first (the length of a secret is not the secret), then constant time.
        let matches = given.len() == expected.len()
            && aws_lc_rs::constant_time::verify_slices_are_equal(given.as_bytes(), expected).is_ok();
        if matches {
            Ok(Self)
        } else {
            Err(AppError::Unauthorized(
                "the Backend API needs `Authorization: Bearer <SECRET_KEY>`".to_owned(),
            ))
        }
    }
}

impl FromRequest for BackendKey {
    type Error = AppError;
    type Future = Ready<Result<Self, AppError>>;
    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(Self::check(req))
    }
}
