//! The auth core: keys, tokens, passwords, throttling and the request context the
//! client API needs.

pub mod client_cookie;
pub mod keys;
pub mod password;
pub mod request;
pub mod throttle;
pub mod tokens;
