//! Password hashing (argon2id) and the password and email policies.

use std::sync::OnceLock;

use argon2::Argon2;
use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};

use crate::error::{AppError, AppResult, FieldErrors};

pub const MIN_PASSWORD_CHARS: usize = 8;
/// Bounded so that hashing cost cannot be driven up by the caller.
pub const MAX_PASSWORD_BYTES: usize = 128;
pub const MAX_EMAIL_BYTES: usize = 254;
pub const MAX_NAME_CHARS: usize = 100;

/// Checks a new password against the policy, naming the reason.
pub fn check_password_policy(password: &str, email: &str, fields: &mut FieldErrors) {
    let reason = if password.chars().count() < MIN_PASSWORD_CHARS {
        Some(format!("must be at least {MIN_PASSWORD_CHARS} characters"))
    } else if password.len() > MAX_PASSWORD_BYTES {
        Some(format!("must be at most {MAX_PASSWORD_BYTES} bytes"))
    } else if password.trim().is_empty() {
        Some("must not be only white space".to_owned())
    } else if password.eq_ignore_ascii_case(email.trim()) {
        Some("must not be the email address".to_owned())
    } else {
        None
    };
    if let Some(reason) = reason {
        fields.insert("password".to_owned(), reason);
    }
}

/// A deliberately plain email check: one `@`, a dotted domain, no spaces, bounded length.
pub fn check_email(email: &str, fields: &mut FieldErrors) {
    let email = email.trim();
    let reason = if email.is_empty() {
        Some("is required")
    } else if email.len() > MAX_EMAIL_BYTES {
        Some("must be at most 254 bytes")
    } else {
        match email.split_once('@') {
            Some((local, domain))
                if !local.is_empty()
                    && local.len() <= 64
                    && domain.contains('.')
                    && !domain.starts_with('.')
                    && !domain.ends_with('.')
                    && !domain.contains('@')
                    && !email.chars().any(|c| c.is_whitespace() || c.is_control()) =>
            {
                None
            }
            _ => Some("is not a valid email address"),
        }
    };
    if let Some(reason) = reason {
        fields.insert("email".to_owned(), reason.to_owned());
    }
}

/// Metadata is readable in tokens (public) or stored per user: keep each small.
pub const MAX_METADATA_BYTES: usize = 8 * 1024;

/// Checks one metadata field: a JSON object of at most 8 KiB.
pub fn check_metadata(field: &str, value: Option<&serde_json::Value>, fields: &mut FieldErrors) {
    if let Some(metadata) = value {
        if !metadata.is_object() {
            fields.insert(field.into(), "must be a JSON object".into());
        } else if metadata.to_string().len() > MAX_METADATA_BYTES {
            fields.insert(
                field.into(),
                format!("must be at most {MAX_METADATA_BYTES} bytes of JSON"),
            );
        }
    }
}

pub fn check_name(field: &str, value: Option<&str>, fields: &mut FieldErrors) {
    if let Some(value) = value {
        if value.chars().count() > MAX_NAME_CHARS {
            fields.insert(field.to_owned(), format!("must be at most {MAX_NAME_CHARS} characters"));
        } else if value.chars().any(char::is_control) {
            fields.insert(field.to_owned(), "must not contain control characters".to_owned());
        }
    }
}

/// Hashes on the blocking pool: argon2 is CPU work that must not stall the reactor.
pub async fn hash_password(password: String) -> AppResult<String> {
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut OsRng);
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|hash| hash.to_string())
            .map_err(|e| AppError::internal(e.to_string()))
    })
    .await
    .map_err(AppError::internal)?
}

/// Verifies a password against a stored hash, or against a fixed dummy hash when the
/// user does not exist, so that both cases take the same time.
pub async fn verify_password(password: String, stored_hash: Option<String>) -> AppResult<bool> {
    tokio::task::spawn_blocking(move || {
        let (hash, exists) = match stored_hash {
            Some(hash) => (hash, true),
            None => (dummy_hash().to_owned(), false),
        };
        let parsed = PasswordHash::new(&hash).map_err(|e| AppError::internal(e.to_string()))?;
        let matches = Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok();
        Ok(exists && matches)
    })
    .await
    .map_err(AppError::internal)?
}

fn dummy_hash() -> &'static str {
    static HASH: OnceLock<String> = OnceLock::new();
    HASH.get_or_init(|| {
        let salt = SaltString::generate(&mut OsRng);
        Argon2::default()
            .hash_password(b"timing equaliser for unknown users", &salt)
            .expect("argon2 hashes a constant")
            .to_string()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn email_reason(email: &str) -> Option<String> {
        let mut fields = FieldErrors::new();
        check_email(email, &mut fields);
        fields.remove("email")
    }

    fn password_reason(password: &str) -> Option<String> {
        let mut fields = FieldErrors::new();
        check_password_policy(password, "a@example.com", &mut fields);
        fields.remove("password")
    }

    #[test]
    fn email_policy() {
        assert_eq!(email_reason("Ada@Example.com"), None);
        for bad in [
            "",
            "ada",
            "ada@",
            "@example.com",
            "ada@example",
            "a da@example.com",
            "a@b@c.com",
        ] {
            assert!(email_reason(bad).is_some(), "{bad}");
        }
        let long = format!("{}@example.com", "a".repeat(250));
        assert!(email_reason(&long).is_some());
    }

    #[test]
    fn password_policy() {
        assert_eq!(password_reason("correct horse"), None);
        assert!(password_reason("short").unwrap().contains("at least"));
        assert!(password_reason(&"x".repeat(129)).unwrap().contains("at most"));
        assert!(password_reason("         ").is_some());
        assert!(password_reason("A@example.com").is_some());
    }

    #[tokio::test]
    async fn hashes_verify_and_unknown_users_never_match() {
        let hash = hash_password("correct horse".into()).await.unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(
            verify_password("correct horse".into(), Some(hash.clone()))
                .await
                .unwrap()
        );
        assert!(!verify_password("wrong horse".into(), Some(hash)).await.unwrap());
        assert!(!verify_password("correct horse".into(), None).await.unwrap());
    }
}
