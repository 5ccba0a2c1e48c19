//! The `verification_codes` table: one-time codes and tokens, only their keyed hashes.
//! Single use is a conditional `UPDATE` (of two racing uses, one wins).

use sqlx::Row;

use super::Exec;
use crate::ids::{IdKind, new_id};

/// Attempts a code allows before it dies.
pub const MAX_ATTEMPTS: i64 = 5;

/// Stores a new secret for `(purpose, subject)` and ends the subject's earlier live ones
/// of that purpose (only the newest code is valid).
#[tracing::instrument(skip(ex, secret_hash))]
pub async fn insert(
    ex: &mut sqlx::AnyConnection,
    purpose: &str,
    subject: &str,
    secret_hash: &str,
    expires_at: i64,
    now: i64,
) -> Result<String, sqlx::Error> {
    sqlx::query(
        "UPDATE verification_codes SET expires_at = $1
         WHERE purpose = $2 AND subject = $3 AND consumed_at IS NULL AND expires_at > $1",
    )
    .bind(now)
    .bind(purpose)
    .bind(subject)
    .execute(&mut *ex)
    .await?;
    let id = new_id(IdKind::Code);
    sqlx::query(
        "INSERT INTO verification_codes (id, purpose, subject, secret_hash, attempts_left, expires_at, consumed_at, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, NULL, $7)",
    )
    .bind(&id)
    .bind(purpose)
    .bind(subject)
    .bind(secret_hash)
    .bind(MAX_ATTEMPTS)
    .bind(expires_at)
    .bind(now)
    .execute(&mut *ex)
    .await?;
    Ok(id)
}

/// Consumes the subject's live code if its hash matches; `true` when it did. A miss
/// spends one of the live code's attempts (after the last one the code is dead).
#[tracing::instrument(skip(ex, secret_hash))]
pub async fn consume_code(
    ex: &mut sqlx::AnyConnection,
    purpose: &str,
    subject: &str,
    secret_hash: &str,
    now: i64,
) -> Result<bool, sqlx::Error> {
    let consumed = sqlx::query(
        "UPDATE verification_codes SET consumed_at = $1
         WHERE purpose = $2 AND subject = $3 AND secret_hash = $4
           AND consumed_at IS NULL AND expires_at > $1 AND attempts_left > 0
         RETURNING id",
    )
    .bind(now)
    .bind(purpose)
    .bind(subject)
    .bind(secret_hash)
    .fetch_optional(&mut *ex)
    .await?;
    if consumed.is_some() {
        return Ok(true);
    }
    sqlx::query(
        "UPDATE verification_codes SET attempts_left = attempts_left - 1
         WHERE purpose = $1 AND subject = $2 AND consumed_at IS NULL AND expires_at > $3 AND attempts_left > 0",
    )
    .bind(purpose)
    .bind(subject)
    .bind(now)
    .execute(&mut *ex)
    .await?;
    Ok(false)
}

/// Consumes a token (found by its hash); returns its subject.
#[tracing::instrument(skip(ex, secret_hash))]
pub async fn consume_token<'e>(
    ex: impl Exec<'e>,
    purpose: &str,
    secret_hash: &str,
    now: i64,
) -> Result<Option<String>, sqlx::Error> {
    let row = sqlx::query(
        "UPDATE verification_codes SET consumed_at = $1
         WHERE purpose = $2 AND secret_hash = $3 AND consumed_at IS NULL AND expires_at > $1 AND attempts_left > 0
         RETURNING subject",
    )
    .bind(now)
    .bind(purpose)
    .bind(secret_hash)
    .fetch_optional(ex)
    .await?;
    row.map(|row| row.try_get("subject")).transpose()
}

/// The subject of a live token, without consuming it (a page that shows what a link
/// is for before it is used).
#[tracing::instrument(skip(ex, secret_hash))]
pub async fn peek_token<'e>(
    ex: impl Exec<'e>,
    purpose: &str,
    secret_hash: &str,
    now: i64,
) -> Result<Option<String>, sqlx::Error> {
    let row = sqlx::query(
        "SELECT subject FROM verification_codes
         WHERE purpose = $1 AND secret_hash = $2 AND consumed_at IS NULL AND expires_at > $3",
    )
    .bind(purpose)
    .bind(secret_hash)
    .bind(now)
    .fetch_optional(ex)
    .await?;
    row.map(|row| row.try_get("subject")).transpose()
}

/// Ends every live secret of `(purpose, subject)` (after a sign-in, the other way in is
/// closed too).
#[tracing::instrument(skip(ex))]
pub async fn end_live<'e>(ex: impl Exec<'e>, purpose: &str, subject: &str, now: i64) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE verification_codes SET expires_at = $1
         WHERE purpose = $2 AND subject = $3 AND consumed_at IS NULL AND expires_at > $1",
    )
    .bind(now)
    .bind(purpose)
    .bind(subject)
    .execute(ex)
    .await?;
    Ok(())
}
