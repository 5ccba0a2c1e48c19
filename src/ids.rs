//! Opaque, prefixed, time-ordered identifiers (`user_…`, `sess_…`): 48 bits of
//! milliseconds and 80 random bits in Crockford base32, like a ULID. Never sequential
//! integers, and they sort by creation time, which keyset pagination uses as a tiebreak.

use aws_lc_rs::rand::{SecureRandom, SystemRandom};

const ALPHABET: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";

/// The type prefixes used in the API.
#[derive(Debug, Clone, Copy)]
pub enum IdKind {
    User,
    Session,
    Client,
    Organization,
    Membership,
    Item,
    JwtTemplate,
    Message,
    WebhookEndpoint,
    Code,
    SignUp,
    Email,
    SignIn,
    Invitation,
    ApiKey,
    ActorToken,
    Audit,
    Identity,
}

impl IdKind {
    pub fn prefix(self) -> &'static str {
        match self {
            Self::User => "user",
            Self::Session => "sess",
            Self::Client => "client",
            Self::Organization => "org",
            Self::Membership => "orgmem",
            Self::Item => "item",
            Self::JwtTemplate => "jtmpl",
            Self::Message => "msg",
            Self::WebhookEndpoint => "whep",
            Self::Code => "code",
            Self::SignUp => "signup",
            Self::Email => "eml",
            Self::SignIn => "signin",
            Self::Invitation => "orginv",
            Self::ApiKey => "ak",
            Self::ActorToken => "act",
            Self::Audit => "audit",
            Self::Identity => "idn",
        }
    }
}

/// A new identifier of the given kind.
pub fn new_id(kind: IdKind) -> String {
    let millis = crate::clock::now_ms() as u128 & ((1 << 48) - 1);
    let mut random = [0u8; 10];
    random_bytes(&mut random);
    let mut value = millis << 80;
    for (i, byte) in random.iter().enumerate() {
        value |= u128::from(*byte) << (8 * (9 - i));
    }
    let mut out = String::with_capacity(kind.prefix().len() + 27);
    out.push_str(kind.prefix());
    out.push('_');
    // 128 bits in 26 base32 digits (the first digit holds the top 3 bits).
    for i in (0..26).rev() {
        let digit = ((value >> (5 * i)) & 31) as usize;
        out.push(ALPHABET[digit] as char);
    }
    out
}

/// Fills `buf` from the operating system's CSPRNG.
pub fn random_bytes(buf: &mut [u8]) {
    SystemRandom::new()
        .fill(buf)
        .expect("the system random number generator failed");
}

/// A random token of `bytes` bytes, base64url without padding.
pub fn random_token(bytes: usize) -> String {
    use base64::Engine;
    let mut buf = vec![0u8; bytes];
    random_bytes(&mut buf);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(buf)
}

/// Lowercase hex of bytes (digests stored as text).
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 15)] as char);
    }
    out
}

/// True when `id` has the kind's prefix and a plausible body; used to answer 404
/// early for ids that cannot exist.
pub fn has_prefix(id: &str, kind: IdKind) -> bool {
    id.strip_prefix(kind.prefix())
        .and_then(|rest| rest.strip_prefix('_'))
        .is_some_and(|body| !body.is_empty() && body.len() <= 64 && body.bytes().all(|b| b.is_ascii_alphanumeric()))
}

/// A path parameter that must be an id of one kind: `web::Path<ItemId>` answers 404
/// (through the path extractor's error handler) for anything else, before the handler.
macro_rules! typed_ids {
    ($($(#[$doc:meta])* $name:ident => $kind:expr),* $(,)?) => {$(
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub struct $name(String);

        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }

            pub fn into_inner(self) -> String {
                self.0
            }
        }

        impl std::ops::Deref for $name {
            type Target = str;
            fn deref(&self) -> &str {
                &self.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let id = String::deserialize(deserializer)?;
                if has_prefix(&id, $kind) {
                    Ok(Self(id))
                } else {
                    Err(serde::de::Error::custom(format!("not a `{}_…` id", $kind.prefix())))
                }
            }
        }
    )*};
}

typed_ids! {
    UserId => IdKind::User,
    SessionId => IdKind::Session,
    OrganizationId => IdKind::Organization,
    ItemId => IdKind::Item,
    JwtTemplateId => IdKind::JwtTemplate,
    WebhookEndpointId => IdKind::WebhookEndpoint,
    SignUpId => IdKind::SignUp,
    SignInId => IdKind::SignIn,
    InvitationId => IdKind::Invitation,
    ApiKeyId => IdKind::ApiKey,
    ActorTokenId => IdKind::ActorToken,
    IdentityId => IdKind::Identity,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_prefixed_unique_and_time_ordered() {
        let a = new_id(IdKind::User);
        std::thread::sleep(std::time::Duration::from_millis(2));
        let b = new_id(IdKind::User);
        assert!(a.starts_with("user_") && a.len() == 5 + 26, "{a}");
        assert_ne!(a, b);
        assert!(a < b, "{a} should sort before {b}");
        assert!(has_prefix(&a, IdKind::User));
        assert!(!has_prefix(&a, IdKind::Session));
        assert!(!has_prefix("user_", IdKind::User));
        assert!(!has_prefix("user_a'b", IdKind::User));
    }

    #[test]
    fn typed_ids_check_their_prefix() {
        let id = new_id(IdKind::Item);
        let parsed: ItemId = serde_json::from_value(serde_json::json!(id)).unwrap();
        assert_eq!(parsed.as_str(), id);
        assert!(serde_json::from_value::<ItemId>(serde_json::json!(new_id(IdKind::User))).is_err());
        assert!(serde_json::from_value::<SessionId>(serde_json::json!("sess_a'b")).is_err());
    }
}
