//! One error type for the whole HTTP surface. Every public error code lives in
//! [`ErrorCode`]; [`AppError`] maps to a status and the `{error, message}` body in
//! one place, and 5xx details go to the log only.

use std::collections::BTreeMap;

use actix_web::http::{StatusCode, header};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;
use utoipa::ToSchema;

/// The stable, machine-readable error codes of the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    BadRequest,
    Unauthorized,
    SessionExpired,
    Forbidden,
    ReverificationRequired,
    UserBanned,
    NotFound,
    MethodNotAllowed,
    NoActiveOrganization,
    ValidationFailed,
    Conflict,
    PayloadTooLarge,
    UnsupportedMediaType,
    RateLimited,
    InvalidSignature,
    ServiceUnavailable,
    Internal,
}

impl ErrorCode {
    pub fn status(self) -> StatusCode {
        match self {
            Self::BadRequest | Self::NoActiveOrganization | Self::InvalidSignature => StatusCode::BAD_REQUEST,
            Self::Unauthorized | Self::SessionExpired => StatusCode::UNAUTHORIZED,
            Self::Forbidden | Self::ReverificationRequired | Self::UserBanned => StatusCode::FORBIDDEN,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::ValidationFailed => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Conflict => StatusCode::CONFLICT,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            Self::ServiceUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// The body of every error response.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorCode,
    pub message: String,
    /// Per-field reasons, present on `validation_failed`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fields: Option<BTreeMap<String, String>>,
}

/// Field name → reason, collected while validating a request.
pub type FieldErrors = BTreeMap<String, String>;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    SessionExpired(String),
    #[error("{0}")]
    Forbidden(String),
    #[error(
        "the last password check is older than {0} minutes: re-verify with POST /v1/client/sessions/{{sid}}/verify"
    )]
    ReverificationRequired(i64),
    #[error("this account is banned: it cannot sign in")]
    UserBanned,
    #[error("this needs an active organization: switch to one with POST /v1/client/sessions/{{sid}}/touch")]
    NoActiveOrganization,
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("validation failed")]
    Validation(FieldErrors),
    #[error("{0}")]
    PayloadTooLarge(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("{0}")]
    InvalidSignature(String),
    #[error("too many requests")]
    RateLimited { retry_after_secs: u64 },
    #[error("{0}")]
    ServiceUnavailable(String),
    /// The app was assembled wrongly; the message names the fix (it holds no secrets).
    #[error("{0}")]
    Misconfigured(&'static str),
    #[error("internal error")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl AppError {
    /// A single-field validation error.
    pub fn field(field: &str, reason: impl Into<String>) -> Self {
        Self::Validation(BTreeMap::from([(field.to_owned(), reason.into())]))
    }

    /// Wraps any error as an internal one; its chain is logged, never sent.
    pub fn internal(err: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self::Internal(err.into())
    }

    pub fn code(&self) -> ErrorCode {
        match self {
            Self::BadRequest(_) => ErrorCode::BadRequest,
            Self::Unauthorized(_) => ErrorCode::Unauthorized,
            Self::SessionExpired(_) => ErrorCode::SessionExpired,
            Self::Forbidden(_) => ErrorCode::Forbidden,
            Self::ReverificationRequired(_) => ErrorCode::ReverificationRequired,
            Self::UserBanned => ErrorCode::UserBanned,
            Self::NoActiveOrganization => ErrorCode::NoActiveOrganization,
            Self::NotFound(_) => ErrorCode::NotFound,
            Self::Conflict(_) => ErrorCode::Conflict,
            Self::Validation(_) => ErrorCode::ValidationFailed,
            Self::PayloadTooLarge(_) => ErrorCode::PayloadTooLarge,
            Self::UnsupportedMediaType(_) => ErrorCode::UnsupportedMediaType,
            Self::RateLimited { .. } => ErrorCode::RateLimited,
            Self::InvalidSignature(_) => ErrorCode::InvalidSignature,
            Self::ServiceUnavailable(_) => ErrorCode::ServiceUnavailable,
            Self::Misconfigured(_) | Self::Internal(_) => ErrorCode::Internal,
        }
    }
}

impl From<sqlx::Error> for AppError {
    /// A database that is away for a moment (refused or dropped connections, an
    /// exhausted pool, a restart, a statement timeout, a busy SQLite file) is 503 with
    /// `Retry-After`: the request may be retried. Anything else is a bug: 500.
    fn from(err: sqlx::Error) -> Self {
        if is_transient(&err) {
            tracing::warn!(error = %error_chain(&err), "database unavailable");
            Self::ServiceUnavailable("the database is unavailable for a moment: retry shortly".to_owned())
        } else {
            Self::internal(err)
        }
    }
}

/// Whether a database error says "not now" rather than "never": the same request may
/// succeed when retried.
pub fn is_transient(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::BeginFailed => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|code| is_transient_code(&code)),
        _ => false,
    }
}

/// PostgreSQL SQLSTATEs and SQLite result codes that mean "try again".
fn is_transient_code(code: &str) -> bool {
    // PostgreSQL: class 08 connection exceptions, 57P01-57P03 shutdown and start-up,
    // 57014 statement timeout or cancel, 53300 too many connections, 40001/40P01
    // serialization failure and deadlock.
    code.starts_with("08")
        || matches!(code, "57P01" | "57P02" | "57P03" | "57014" | "53300" | "40001" | "40P01")
        // SQLite: BUSY and LOCKED with their extended codes (the file is held by a writer).
        || matches!(code, "5" | "6" | "261" | "262" | "517" | "773")
}

impl ResponseError for AppError {
    fn status_code(&self) -> StatusCode {
        self.code().status()
    }

    fn error_response(&self) -> HttpResponse {
        let code = self.code();
        let (message, fields) = match self {
            Self::Internal(inner) => {
                tracing::error!(error = %error_chain(inner.as_ref()), "internal error");
                ("internal server error".to_owned(), None)
            }
            Self::Validation(fields) => (
                "the request did not pass validation; see `fields`".to_owned(),
                Some(fields.clone()),
            ),
            Self::RateLimited { retry_after_secs } => {
                (format!("too many requests; retry after {retry_after_secs} s"), None)
            }
            Self::Misconfigured(message) => {
                tracing::error!(%message, "misconfigured application");
                (message.to_string(), None)
            }
            other => (other.to_string(), None),
        };
        let mut response = HttpResponse::build(code.status());
        match self {
            Self::Unauthorized(_) | Self::SessionExpired(_) => {
                response.insert_header((header::WWW_AUTHENTICATE, "Bearer"));
            }
            Self::RateLimited { retry_after_secs } => {
                response.insert_header((header::RETRY_AFTER, retry_after_secs.to_string()));
            }
            Self::ServiceUnavailable(_) => {
                response.insert_header((header::RETRY_AFTER, SERVICE_UNAVAILABLE_RETRY_SECS.to_string()));
            }
            _ => {}
        }
        response.json(ErrorBody {
            error: code,
            message,
            fields,
        })
    }
}

/// Renders an error with its whole `source()` chain, for logs.
pub fn error_chain(err: &dyn std::error::Error) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        out.push_str(": ");
        out.push_str(&cause.to_string());
        source = cause.source();
    }
    out
}

/// Helpers that turn database constraint violations into API errors.
pub trait ResultExt<T> {
    /// Maps a unique-constraint violation to `f()`, anything else to internal.
    fn on_unique_violation(self, f: impl FnOnce() -> AppError) -> Result<T, AppError>;
}

impl<T> ResultExt<T> for Result<T, sqlx::Error> {
    fn on_unique_violation(self, f: impl FnOnce() -> AppError) -> Result<T, AppError> {
        self.map_err(|err| match &err {
            sqlx::Error::Database(db) if db.is_unique_violation() => f(),
            _ => AppError::from(err),
        })
    }
}

pub type AppResult<T> = Result<T, AppError>;

/// `Retry-After` of a 503: a dependency that is away is usually back within seconds.
pub const SERVICE_UNAVAILABLE_RETRY_SECS: u64 = 2;

/// JSON bodies above this size are refused with 413 before parsing.
pub const JSON_LIMIT_BYTES: usize = 64 * 1024;

/// Malformed JSON is 400, a wrong content type 415, an oversized body 413, and JSON of
/// the wrong shape 422 with the field named where serde names it.
pub fn json_config() -> actix_web::web::JsonConfig {
    actix_web::web::JsonConfig::default()
        .limit(JSON_LIMIT_BYTES)
        .error_handler(|err, _req| json_error(err).into())
}

fn json_error(err: actix_web::error::JsonPayloadError) -> AppError {
    use actix_web::error::JsonPayloadError as E;
    match err {
        E::OverflowKnownLength { limit, .. } | E::Overflow { limit } => {
            AppError::PayloadTooLarge(format!("the body is larger than {limit} bytes"))
        }
        E::ContentType => AppError::UnsupportedMediaType("expected `Content-Type: application/json`".to_owned()),
        E::Deserialize(e) => json_body_error(&e),
        other => AppError::BadRequest(format!("could not read the body: {other}")),
    }
}

/// A body that did not parse: malformed JSON is 400, JSON of the wrong shape 422.
pub fn json_body_error(err: &serde_json::Error) -> AppError {
    if err.is_data() {
        serde_field_error(err)
    } else {
        AppError::BadRequest(format!("malformed JSON: {}", strip_position(&err.to_string())))
    }
}

/// Turns serde's data errors into `validation_failed` with the field when it is named.
fn serde_field_error(err: &serde_json::Error) -> AppError {
    let text = strip_position(&err.to_string());
    let named = |prefix: &str| {
        text.strip_prefix(prefix)
            .and_then(|rest| rest.split('`').next())
            .map(str::to_owned)
    };
    if let Some(field) = named("missing field `") {
        AppError::field(&field, "is required")
    } else if let Some(field) = named("unknown field `") {
        AppError::field(&field, "is not a known field")
    } else {
        AppError::field("body", text)
    }
}

fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_owned(),
        None => message.to_owned(),
    }
}

/// A path segment that does not parse names nothing that exists.
pub fn path_config() -> actix_web::web::PathConfig {
    actix_web::web::PathConfig::default().error_handler(|_, _| AppError::NotFound("no such resource".to_owned()).into())
}

pub fn query_config() -> actix_web::web::QueryConfig {
    actix_web::web::QueryConfig::default()
        .error_handler(|err, _| AppError::field("query", strip_position(&err.to_string())).into())
}

/// The default service: unknown paths (and unknown methods on known paths) are 404.
pub async fn not_found() -> Result<HttpResponse, AppError> {
    Err(AppError::NotFound("no route matches this method and path".to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transient_database_errors_are_503_with_retry_after() {
        for err in [
            sqlx::Error::PoolTimedOut,
            sqlx::Error::PoolClosed,
            sqlx::Error::Io(std::io::Error::from(std::io::ErrorKind::ConnectionReset)),
        ] {
            let error = AppError::from(err);
            assert_eq!(error.code(), ErrorCode::ServiceUnavailable);
            let response = error.error_response();
            assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
            assert_eq!(response.headers().get(header::RETRY_AFTER).unwrap(), "2");
        }
        assert_eq!(AppError::from(sqlx::Error::RowNotFound).code(), ErrorCode::Internal);
        for code in [
            "08006", "08001", "57P01", "57P03", "57014", "53300", "40001", "5", "517",
        ] {
            assert!(is_transient_code(code), "{code}");
        }
        for code in ["23505", "42P01", "22P02", "19", "2067"] {
            assert!(!is_transient_code(code), "{code}");
        }
    }
}
