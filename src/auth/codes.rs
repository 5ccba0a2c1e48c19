//! One module for every one-time secret: email codes (6 digits), link tokens, and
//! (later) tickets. A secret is random, shown once, and stored only as an HMAC-SHA-256
//! under a key derived from `SECRET_KEY` (so a leaked table cannot be brute-forced
//! offline, even for 6-digit codes). It has a purpose, a subject, an expiry, attempts
//! left (5 wrong codes kill a code), and is used once, by a conditional update. Hashes
//! are compared by the database; the secret itself never is, so timing reveals nothing.

use aws_lc_rs::hmac;
use aws_lc_rs::rand::SecureRandom;

use crate::db::codes;

/// What a secret is for; a secret of one purpose never passes for another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// Confirms a signed-in user's email address (subject: user id).
    EmailVerification,
    /// Confirms a pending sign-up (subject: `signup_…`).
    SignUp,
    /// Resets a password (subject: user id).
    PasswordReset,
    /// Signs in by a code sent by email (subject: user id).
    SignInCode,
    /// Signs in by a link sent by email (subject: user id).
    SignInLink,
    /// An invitation's ticket, the secret in its link (subject: `orginv_…`).
    Invitation,
    /// A backup code of the second factor (kept in `backup_codes`, hashed here).
    BackupCode,
    /// An actor token's ticket, the secret of its URL (subject: `act_…`).
    ActorToken,
}

impl Purpose {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::EmailVerification => "email_verification",
            Self::SignUp => "sign_up",
            Self::PasswordReset => "password_reset",
            Self::SignInCode => "sign_in_code",
            Self::SignInLink => "sign_in_link",
            Self::Invitation => "invitation",
            Self::BackupCode => "backup_code",
            Self::ActorToken => "actor_token",
        }
    }
}

/// How long a code or a link lives.
pub const CODE_LIFETIME_MS: i64 = 10 * 60 * 1000;

/// Issues and checks secrets.
pub struct Codes {
    key: hmac::Key,
}

impl Codes {
    pub fn new(secret_key: &str) -> Self {
        let root = hmac::Key::new(hmac::HMAC_SHA256, secret_key.as_bytes());
        let derived = hmac::sign(&root, b"gatehouse verification codes");
        Self {
            key: hmac::Key::new(hmac::HMAC_SHA256, derived.as_ref()),
        }
    }

    fn hash(&self, purpose: Purpose, secret: &str) -> String {
        let mut context = hmac::Context::with_key(&self.key);
        context.update(purpose.as_str().as_bytes());
        context.update(b"\0");
        context.update(secret.as_bytes());
        crate::ids::hex(context.sign().as_ref())
    }

    /// The keyed hash of a normalized backup code (what `backup_codes` stores).
    pub fn backup_code_hash(&self, normalized: &str) -> String {
        self.hash(Purpose::BackupCode, normalized)
    }

    /// A new 6-digit code for `(purpose, subject)`; earlier live ones end.
    pub async fn issue_code(
        &self,
        conn: &mut sqlx::AnyConnection,
        purpose: Purpose,
        subject: &str,
        now: i64,
    ) -> Result<String, sqlx::Error> {
        let code = six_digits();
        codes::insert(
            conn,
            purpose.as_str(),
            subject,
            &self.hash(purpose, &code),
            now + CODE_LIFETIME_MS,
            now,
        )
        .await?;
        Ok(code)
    }

    /// A new token (for a link) for `(purpose, subject)`, living `lifetime_ms`.
    pub async fn issue_token(
        &self,
        conn: &mut sqlx::AnyConnection,
        purpose: Purpose,
        subject: &str,
        lifetime_ms: i64,
        now: i64,
    ) -> Result<String, sqlx::Error> {
        let token = crate::ids::random_token(32);
        codes::insert(
            conn,
            purpose.as_str(),
            subject,
            &self.hash(purpose, &token),
            now + lifetime_ms,
            now,
        )
        .await?;
        Ok(token)
    }

    /// Uses the subject's code: `true` when it was the live code (now used up).
    pub async fn consume_code(
        &self,
        conn: &mut sqlx::AnyConnection,
        purpose: Purpose,
        subject: &str,
        code: &str,
        now: i64,
    ) -> Result<bool, sqlx::Error> {
        let code = code.trim();
        if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
            // Not a code at all: still spends an attempt, like any wrong code.
            return codes::consume_code(conn, purpose.as_str(), subject, "", now).await;
        }
        codes::consume_code(conn, purpose.as_str(), subject, &self.hash(purpose, code), now).await
    }

    /// Uses a token; returns its subject.
    pub async fn consume_token(
        &self,
        conn: &mut sqlx::AnyConnection,
        purpose: Purpose,
        token: &str,
        now: i64,
    ) -> Result<Option<String>, sqlx::Error> {
        if token.is_empty() || token.len() > 128 {
            return Ok(None);
        }
        codes::consume_token(conn, purpose.as_str(), &self.hash(purpose, token), now).await
    }

    /// The subject of a live token, leaving it unused.
    pub async fn peek_token(
        &self,
        conn: &mut sqlx::AnyConnection,
        purpose: Purpose,
        token: &str,
        now: i64,
    ) -> Result<Option<String>, sqlx::Error> {
        if token.is_empty() || token.len() > 128 {
            return Ok(None);
        }
        codes::peek_token(conn, purpose.as_str(), &self.hash(purpose, token), now).await
    }
}

/// A uniformly random 6-digit code (rejection sampling: no modulo bias).
fn six_digits() -> String {
    let rng = aws_lc_rs::rand::SystemRandom::new();
    loop {
        let mut bytes = [0u8; 4];
        rng.fill(&mut bytes).expect("the system random number generator failed");
        let value = u32::from_le_bytes(bytes);
        // The largest multiple of 1,000,000 that fits in a u32.
        if value < 4_294_000_000 {
            return format!("{:06}", value % 1_000_000);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_six_digits_and_hashes_depend_on_purpose_and_key() {
        for _ in 0..100 {
            let code = six_digits();
            assert_eq!(code.len(), 6);
            assert!(code.bytes().all(|b| b.is_ascii_digit()));
        }
        let a = Codes::new("sk_test_one_0123456789abcdef0123456789");
        let b = Codes::new("sk_test_two_0123456789abcdef0123456789");
        assert_eq!(a.hash(Purpose::SignUp, "123456"), a.hash(Purpose::SignUp, "123456"));
        assert_ne!(
            a.hash(Purpose::SignUp, "123456"),
            a.hash(Purpose::PasswordReset, "123456")
        );
        assert_ne!(a.hash(Purpose::SignUp, "123456"), b.hash(Purpose::SignUp, "123456"));
    }
}
