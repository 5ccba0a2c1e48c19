//! `sign_in_attempts`: a first factor proven by a user who has a second factor. The
//! attempt belongs to one device (client), lives 10 minutes and allows 5 tries; each try
//! spends one up front (a conditional `UPDATE`), and completing it is another, so an
//! attempt turns into at most one session.

use serde::Serialize;
use sqlx::Row;
use utoipa::ToSchema;

use super::Exec;
use crate::ids::{IdKind, new_id};

/// How long an attempt waits for its second factor.
pub const ATTEMPT_LIFETIME_MS: i64 = 10 * 60 * 1000;
/// Tries of a second factor per attempt.
pub const MAX_TRIES: i64 = 5;

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SignInAttempt {
    #[schema(example = "signin_01jd3m5x0e8k2q9v7w4h6r1t3y")]
    pub id: String,
    #[serde(skip)]
    pub client_id: String,
    #[serde(skip)]
    pub user_id: String,
    /// How the first factor was proven (`password`, `email_code`, …).
    #[serde(skip)]
    pub first_factor: String,
    /// `totp` and `backup_code`.
    #[schema(example = json!(["totp", "backup_code"]))]
    pub supported_second_factors: Vec<&'static str>,
    /// Unix milliseconds.
    pub expire_at: i64,
}

pub const SECOND_FACTORS: [&str; 2] = ["totp", "backup_code"];

#[tracing::instrument(skip(ex))]
pub async fn insert<'e>(
    ex: impl Exec<'e>,
    client_id: &str,
    user_id: &str,
    first_factor: &str,
    now: i64,
) -> Result<SignInAttempt, sqlx::Error> {
    let attempt = SignInAttempt {
        id: new_id(IdKind::SignIn),
        client_id: client_id.to_owned(),
        user_id: user_id.to_owned(),
        first_factor: first_factor.to_owned(),
        supported_second_factors: SECOND_FACTORS.to_vec(),
        expire_at: now + ATTEMPT_LIFETIME_MS,
    };
    sqlx::query(
        "INSERT INTO sign_in_attempts (id, client_id, user_id, first_factor, attempts_left, expires_at, completed_at, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, NULL, $7)",
    )
    .bind(&attempt.id)
    .bind(client_id)
    .bind(user_id)
    .bind(first_factor)
    .bind(MAX_TRIES)
    .bind(attempt.expire_at)
    .bind(now)
    .execute(ex)
    .await?;
    Ok(attempt)
}

/// Spends one try of a live attempt of this device; the attempt, or `None` when it is
/// unknown, another device's, completed, expired or out of tries.
#[tracing::instrument(skip(ex))]
pub async fn spend_try<'e>(
    ex: impl Exec<'e>,
    id: &str,
    client_id: &str,
    now: i64,
) -> Result<Option<SignInAttempt>, sqlx::Error> {
    let row = sqlx::query(
        "UPDATE sign_in_attempts SET attempts_left = attempts_left - 1
         WHERE id = $1 AND client_id = $2 AND completed_at IS NULL AND expires_at > $3 AND attempts_left > 0
         RETURNING id, client_id, user_id, first_factor, expires_at",
    )
    .bind(id)
    .bind(client_id)
    .bind(now)
    .fetch_optional(ex)
    .await?;
    row.map(|row| {
        Ok(SignInAttempt {
            id: row.try_get("id")?,
            client_id: row.try_get("client_id")?,
            user_id: row.try_get("user_id")?,
            first_factor: row.try_get("first_factor")?,
            supported_second_factors: SECOND_FACTORS.to_vec(),
            expire_at: row.try_get("expires_at")?,
        })
    })
    .transpose()
}

/// Completes the attempt (once).
#[tracing::instrument(skip(ex))]
pub async fn complete<'e>(ex: impl Exec<'e>, id: &str, now: i64) -> Result<bool, sqlx::Error> {
    let result = sqlx::query("UPDATE sign_in_attempts SET completed_at = $1 WHERE id = $2 AND completed_at IS NULL")
        .bind(now)
        .bind(id)
        .execute(ex)
        .await?;
    Ok(result.rows_affected() == 1)
}
