//! Standard Webhooks (Svix) signatures: `v1,<base64 HMAC-SHA256(secret, "{id}.{timestamp}.{body}")>`,
//! with the secret the base64 after `whsec_`.

use aws_lc_rs::{constant_time, hmac};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

/// Messages older or newer than this (seconds) are refused: replay protection.
pub const TOLERANCE_SECS: i64 = 300;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the signing secret is not `whsec_` followed by base64")]
    BadSecret,
    #[error("the webhook timestamp is not a number")]
    BadTimestamp,
    #[error("the webhook timestamp is outside the 5-minute tolerance")]
    OutsideTolerance,
    #[error("no signature matches")]
    NoMatch,
}

/// A parsed `whsec_…` secret.
#[derive(Clone)]
pub struct WebhookSecret(hmac::Key);

impl WebhookSecret {
    pub fn parse(secret: &str) -> Result<Self, SignatureError> {
        let encoded = secret.strip_prefix("whsec_").unwrap_or(secret);
        let bytes = STANDARD.decode(encoded).map_err(|_| SignatureError::BadSecret)?;
        if bytes.is_empty() {
            return Err(SignatureError::BadSecret);
        }
        Ok(Self(hmac::Key::new(hmac::HMAC_SHA256, &bytes)))
    }

    /// A new random secret, as endpoints receive it once.
    pub fn generate() -> String {
        let mut bytes = [0u8; 24];
        crate::ids::random_bytes(&mut bytes);
        format!("whsec_{}", STANDARD.encode(bytes))
    }

    /// `v1,<signature>` for one message.
    pub fn sign(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        let tag = hmac::sign(&self.0, &signed_content(id, timestamp, body));
        format!("v1,{}", STANDARD.encode(tag.as_ref()))
    }

    /// Verifies the headers of a message against its raw body: the timestamp within the
    /// tolerance (either way), and any one of the space-separated `v1,` signatures
    /// matching in constant time (several allow secret rotation).
    pub fn verify(
        &self,
        id: &str,
        timestamp: &str,
        signatures: &str,
        body: &[u8],
        now_secs: i64,
    ) -> Result<(), SignatureError> {
        let timestamp: i64 = timestamp.trim().parse().map_err(|_| SignatureError::BadTimestamp)?;
        if (now_secs - timestamp).abs() > TOLERANCE_SECS {
            return Err(SignatureError::OutsideTolerance);
        }
        let expected = hmac::sign(&self.0, &signed_content(id, timestamp, body));
        let matches = signatures.split_whitespace().any(|candidate| {
            candidate
                .strip_prefix("v1,")
                .and_then(|sig| STANDARD.decode(sig).ok())
                .is_some_and(|sig| constant_time::verify_slices_are_equal(&sig, expected.as_ref()).is_ok())
        });
        if matches { Ok(()) } else { Err(SignatureError::NoMatch) }
    }
}

fn signed_content(id: &str, timestamp: i64, body: &[u8]) -> Vec<u8> {
    let mut content = Vec::with_capacity(id.len() + body.len() + 24);
    content.extend_from_slice(id.as_bytes());
    content.push(b'.');
    content.extend_from_slice(timestamp.to_string().as_bytes());
    content.push(b'.');
    content.extend_from_slice(body);
    content
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
    const ID: &str = "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk";
    const TIMESTAMP: i64 = 1649367553;
    const BODY: &[u8] = br#"{"email":"test@example.com","username":"test_user"}"#;
    const EXPECTED: &str = "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw=";

    #[test]
    fn matches_the_published_test_vector() {
        let secret = WebhookSecret::parse(SECRET).unwrap();
        assert_eq!(secret.sign(ID, TIMESTAMP, BODY), EXPECTED);
        assert_eq!(secret.verify(ID, "1649367553", EXPECTED, BODY, TIMESTAMP), Ok(()));
    }

    #[test]
    fn any_of_several_signatures_passes_and_tampering_fails() {
        let secret = WebhookSecret::parse(SECRET).unwrap();
        let rotated = format!("v1,bm90IHRoZSBzaWduYXR1cmU= v2,xyz {EXPECTED}");
        assert_eq!(secret.verify(ID, "1649367553", &rotated, BODY, TIMESTAMP), Ok(()));
        let tampered = br#"{"email":"evil@example.com","username":"test_user"}"#;
        assert_eq!(
            secret.verify(ID, "1649367553", EXPECTED, tampered, TIMESTAMP),
            Err(SignatureError::NoMatch)
        );
        assert_eq!(
            secret.verify("msg_other", "1649367553", EXPECTED, BODY, TIMESTAMP),
            Err(SignatureError::NoMatch)
        );
        assert_eq!(
            secret.verify(ID, "1649367553", "", BODY, TIMESTAMP),
            Err(SignatureError::NoMatch)
        );
        assert_eq!(
            secret.verify(ID, "1649367553", "v1,!!!", BODY, TIMESTAMP),
            Err(SignatureError::NoMatch)
        );
    }

    #[test]
    fn timestamps_outside_five_minutes_either_way_fail() {
        let secret = WebhookSecret::parse(SECRET).unwrap();
        assert!(secret.verify(ID, "1649367553", EXPECTED, BODY, TIMESTAMP + 300).is_ok());
        assert_eq!(
            secret.verify(ID, "1649367553", EXPECTED, BODY, TIMESTAMP + 301),
            Err(SignatureError::OutsideTolerance)
        );
        assert_eq!(
            secret.verify(ID, "1649367553", EXPECTED, BODY, TIMESTAMP - 301),
            Err(SignatureError::OutsideTolerance)
        );
        assert_eq!(
            secret.verify(ID, "soon", EXPECTED, BODY, TIMESTAMP),
            Err(SignatureError::BadTimestamp)
        );
        assert!(WebhookSecret::parse("whsec_***").is_err());
        assert!(WebhookSecret::parse(&WebhookSecret::generate()).is_ok());
    }
}
