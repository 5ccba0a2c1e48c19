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

/// True when `id` has the kind's prefix and a plausible body; used to answer 404
/// early for ids that cannot exist.
pub fn has_prefix(id: &str, kind: IdKind) -> bool {
    id.strip_prefix(kind.prefix())
        .and_then(|rest| rest.strip_prefix('_'))
        .is_some_and(|body| !body.is_empty() && body.len() <= 64 && body.bytes().all(|b| b.is_ascii_alphanumeric()))
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
}
