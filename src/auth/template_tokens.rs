//! The rules of JWT templates (tokens for other services) and of the session token
//! template (custom claims in session tokens). Minting (`minting.rs`) applies them.

/// Claims a JWT template may not set: the server always sets them.
pub const TEMPLATE_RESERVED: &[&str] = &["iss", "exp", "iat", "nbf", "jti", "sub"];
/// Claims the session token template may not set: the session token's own.
pub const SESSION_RESERVED: &[&str] = &[
    "sub", "sid", "iss", "azp", "iat", "nbf", "exp", "jti", "v", "fva", "sts", "o", "fea", "act",
];
/// Custom session claims above this size (compact JSON) are refused at save time and
/// left out at mint time: a session token must stay well under a 4 KB cookie.
pub const MAX_SESSION_CLAIMS_BYTES: usize = 1200;
