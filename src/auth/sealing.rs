//! Secrets the server must read back (TOTP seeds) are sealed at rest: AES-256-GCM with a
//! random 96-bit nonce, under a key derived from `SECRET_KEY`, with a context string (the
//! owning row, e.g. the user id) as associated data, so a sealed value copied to another
//! row does not open. Stored as base64 of `nonce ‖ ciphertext ‖ tag`.

use aws_lc_rs::aead::{AES_256_GCM, Aad, NONCE_LEN, Nonce, RandomizedNonceKey};
use aws_lc_rs::hmac;
use base64::Engine;
use base64::engine::general_purpose::STANDARD_NO_PAD;

pub struct Sealer {
    key: RandomizedNonceKey,
}

#[derive(Debug, thiserror::Error)]
#[error("a sealed secret did not open (a different SECRET_KEY, or a damaged or moved value)")]
pub struct Unsealable;

impl Sealer {
    /// The key is HMAC-SHA256(`SECRET_KEY`, a purpose label): rotating `SECRET_KEY` makes
    /// sealed values unreadable (users then set up their authenticator again).
    pub fn new(secret_key: &str) -> Self {
        let root = hmac::Key::new(hmac::HMAC_SHA256, secret_key.as_bytes());
        let derived = hmac::sign(&root, b"gatehouse sealed secrets v1");
        Self {
            key: RandomizedNonceKey::new(&AES_256_GCM, derived.as_ref()).expect("a 32-byte key is an AES-256 key"),
        }
    }

    pub fn seal(&self, context: &str, plaintext: &[u8]) -> String {
        let mut in_out = plaintext.to_vec();
        let nonce = self
            .key
            .seal_in_place_append_tag(Aad::from(context.as_bytes()), &mut in_out)
            .expect("sealing with a random nonce cannot fail");
        let mut out = nonce.as_ref().to_vec();
        out.extend_from_slice(&in_out);
        STANDARD_NO_PAD.encode(out)
    }

    pub fn open(&self, context: &str, sealed: &str) -> Result<Vec<u8>, Unsealable> {
        let bytes = STANDARD_NO_PAD.decode(sealed).map_err(|_| Unsealable)?;
        if bytes.len() < NONCE_LEN {
            return Err(Unsealable);
        }
        let (nonce, ciphertext) = bytes.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| Unsealable)?;
        let mut in_out = ciphertext.to_vec();
        let plain = self
            .key
            .open_in_place(nonce, Aad::from(context.as_bytes()), &mut in_out)
            .map_err(|_| Unsealable)?;
        Ok(plain.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seals_and_opens_only_in_its_context_under_its_key() {
        let sealer = Sealer::new("sk_test_one");
        let sealed = sealer.seal("user_1", b"secret seed");
        assert!(!sealed.contains("secret"));
        assert_ne!(sealed, sealer.seal("user_1", b"secret seed"), "a fresh nonce each time");
        assert_eq!(sealer.open("user_1", &sealed).unwrap(), b"secret seed");
        assert!(sealer.open("user_2", &sealed).is_err(), "moved to another row");
        assert!(
            Sealer::new("sk_test_two").open("user_1", &sealed).is_err(),
            "another key"
        );
        let mut damaged = sealed.into_bytes();
        let last = damaged.len() - 2;
        damaged[last] = if damaged[last] == b'A' { b'B' } else { b'A' };
        assert!(sealer.open("user_1", std::str::from_utf8(&damaged).unwrap()).is_err());
        assert!(sealer.open("user_1", "short").is_err());
    }
}
