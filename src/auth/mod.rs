//! The auth core: keys and tokens, the authenticator and its cache, the route policy
//! and the guard middleware, the extractors handlers declare, permissions, passwords,
//! throttles and rate limits, revocation, cookies and token minting. It reads the
//! database through `db` and never imports the HTTP routes or the services above it.

pub mod api_keys;
pub mod authenticator;
pub mod clerk;
pub mod client_session;
pub mod codes;
pub mod context;
pub mod cookies;
pub mod extractors;
pub mod guard;
pub mod keys;
pub mod minting;
pub mod oauth;
pub mod password;
pub mod permissions;
pub mod policy;
pub mod rate_limit;
pub mod request;
pub mod revocation;
pub mod sealing;
pub mod secret_key;
pub mod shortcodes;
pub mod template_tokens;
pub mod throttle;
pub mod tokens;
pub mod totp;
