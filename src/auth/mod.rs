//! The auth core: keys, tokens, passwords, throttling and the request context the
//! client API needs.

pub mod backend;
pub mod clerk;
pub mod client_cookie;
pub mod context;
pub mod extractors;
pub mod guard;
pub mod keys;
pub mod password;
pub mod permissions;
pub mod policy;
pub mod rate_limit;
pub mod request;
pub mod revocation;
pub mod shortcodes;
pub mod template_tokens;
pub mod throttle;
pub mod tokens;
