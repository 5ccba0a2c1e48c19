//! `totp_factors` and `backup_codes`: a user's authenticator (its seed sealed) and their
//! backup codes (keyed hashes). Using a code is a conditional `UPDATE`: of two racing
//! uses, one wins.

use sqlx::Row;

use super::Exec;
use crate::ids::{IdKind, new_id};

/// A user's authenticator as stored.
#[derive(Debug, Clone)]
pub struct TotpFactor {
    pub secret_sealed: String,
    pub verified: bool,
    pub last_used_step: i64,
}

#[tracing::instrument(skip(ex))]
pub async fn find_totp<'e>(ex: impl Exec<'e>, user_id: &str) -> Result<Option<TotpFactor>, sqlx::Error> {
    let row = sqlx::query("SELECT secret_sealed, verified, last_used_step FROM totp_factors WHERE user_id = $1")
        .bind(user_id)
        .fetch_optional(ex)
        .await?;
    row.map(|row| {
        Ok(TotpFactor {
            secret_sealed: row.try_get("secret_sealed")?,
            verified: row.try_get::<i64, _>("verified")? != 0,
            last_used_step: row.try_get("last_used_step")?,
        })
    })
    .transpose()
}

/// Stores a new, not yet verified authenticator (replacing an unverified one).
#[tracing::instrument(skip(ex, secret_sealed))]
pub async fn put_pending_totp<'e>(
    ex: impl Exec<'e>,
    user_id: &str,
    secret_sealed: &str,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO totp_factors (user_id, secret_sealed, verified, last_used_step, created_at, updated_at)
         VALUES ($1, $2, 0, 0, $3, $3)
         ON CONFLICT (user_id) DO UPDATE SET secret_sealed = excluded.secret_sealed, verified = 0,
             last_used_step = 0, created_at = excluded.created_at, updated_at = excluded.updated_at
         WHERE totp_factors.verified = 0",
    )
    .bind(user_id)
    .bind(secret_sealed)
    .bind(now)
    .execute(ex)
    .await?;
    Ok(())
}

/// Records `step` as used, if it is newer than the last used one (`false`: used already,
/// or a racing request used it first).
#[tracing::instrument(skip(ex))]
pub async fn use_step<'e>(ex: impl Exec<'e>, user_id: &str, step: i64, now: i64) -> Result<bool, sqlx::Error> {
    let result = sqlx::query(
        "UPDATE totp_factors SET last_used_step = $1, updated_at = $2 WHERE user_id = $3 AND last_used_step < $1",
    )
    .bind(step)
    .bind(now)
    .bind(user_id)
    .execute(ex)
    .await?;
    Ok(result.rows_affected() == 1)
}

#[tracing::instrument(skip(ex))]
pub async fn mark_totp_verified<'e>(ex: impl Exec<'e>, user_id: &str, now: i64) -> Result<bool, sqlx::Error> {
    let result =
        sqlx::query("UPDATE totp_factors SET verified = 1, updated_at = $1 WHERE user_id = $2 AND verified = 0")
            .bind(now)
            .bind(user_id)
            .execute(ex)
            .await?;
    Ok(result.rows_affected() == 1)
}

/// Removes the authenticator and the backup codes; `true` when there was anything.
#[tracing::instrument(skip(ex))]
pub async fn remove_all(ex: &mut sqlx::AnyConnection, user_id: &str) -> Result<bool, sqlx::Error> {
    let totp = sqlx::query("DELETE FROM totp_factors WHERE user_id = $1")
        .bind(user_id)
        .execute(&mut *ex)
        .await?;
    let codes = sqlx::query("DELETE FROM backup_codes WHERE user_id = $1")
        .bind(user_id)
        .execute(&mut *ex)
        .await?;
    Ok(totp.rows_affected() + codes.rows_affected() > 0)
}

/// Replaces the user's backup codes with these hashes.
#[tracing::instrument(skip(ex, hashes))]
pub async fn replace_backup_codes(
    ex: &mut sqlx::AnyConnection,
    user_id: &str,
    hashes: &[String],
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM backup_codes WHERE user_id = $1")
        .bind(user_id)
        .execute(&mut *ex)
        .await?;
    for hash in hashes {
        sqlx::query(
            "INSERT INTO backup_codes (id, user_id, code_hash, used_at, created_at) VALUES ($1, $2, $3, NULL, $4)",
        )
        .bind(new_id(IdKind::Code))
        .bind(user_id)
        .bind(hash)
        .bind(now)
        .execute(&mut *ex)
        .await?;
    }
    Ok(())
}

/// Uses one of the user's unused backup codes (`false`: no such unused code).
#[tracing::instrument(skip(ex, hash))]
pub async fn use_backup_code<'e>(ex: impl Exec<'e>, user_id: &str, hash: &str, now: i64) -> Result<bool, sqlx::Error> {
    let result = sqlx::query(
        "UPDATE backup_codes SET used_at = $1 WHERE id = (
             SELECT id FROM backup_codes WHERE user_id = $2 AND code_hash = $3 AND used_at IS NULL LIMIT 1)
           AND used_at IS NULL",
    )
    .bind(now)
    .bind(user_id)
    .bind(hash)
    .execute(ex)
    .await?;
    Ok(result.rows_affected() == 1)
}

/// How many unused backup codes the user has.
#[tracing::instrument(skip(ex))]
pub async fn backup_codes_left<'e>(ex: impl Exec<'e>, user_id: &str) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT COUNT(*) FROM backup_codes WHERE user_id = $1 AND used_at IS NULL")
        .bind(user_id)
        .fetch_one(ex)
        .await
}
