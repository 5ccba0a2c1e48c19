//! The `sign_ups` table: pending sign-ups (`EMAIL_VERIFICATION=required`), waiting for
//! their email code. No user exists until one is confirmed.

use serde::Serialize;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::Exec;
use crate::ids::{IdKind, new_id};

#[derive(Debug, Clone, Serialize)]
pub struct PendingSignUp {
    pub id: String,
    pub email: String,
    #[serde(skip)]
    pub password_hash: Option<String>,
    #[serde(skip)]
    pub first_name: Option<String>,
    #[serde(skip)]
    pub last_name: Option<String>,
    pub expires_at: i64,
    pub created_at: i64,
}

impl PendingSignUp {
    fn from_row(row: &AnyRow) -> Result<Self, sqlx::Error> {
        Ok(Self {
            id: row.try_get("id")?,
            email: row.try_get("email")?,
            password_hash: row.try_get("password_hash")?,
            first_name: row.try_get("first_name")?,
            last_name: row.try_get("last_name")?,
            expires_at: row.try_get("expires_at")?,
            created_at: row.try_get("created_at")?,
        })
    }
}

pub struct NewSignUp<'a> {
    pub email: &'a str,
    pub password_hash: Option<&'a str>,
    pub first_name: Option<&'a str>,
    pub last_name: Option<&'a str>,
    pub expires_at: i64,
}

#[tracing::instrument(skip_all)]
pub async fn insert<'e>(ex: impl Exec<'e>, new: &NewSignUp<'_>, now: i64) -> Result<PendingSignUp, sqlx::Error> {
    let pending = PendingSignUp {
        id: new_id(IdKind::SignUp),
        email: new.email.trim().to_owned(),
        password_hash: new.password_hash.map(str::to_owned),
        first_name: new.first_name.map(str::to_owned),
        last_name: new.last_name.map(str::to_owned),
        expires_at: new.expires_at,
        created_at: now,
    };
    sqlx::query(
        "INSERT INTO sign_ups (id, email, email_normalized, password_hash, first_name, last_name, expires_at, completed_at, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, NULL, $8)",
    )
    .bind(&pending.id)
    .bind(&pending.email)
    .bind(super::users::normalize_email(&pending.email))
    .bind(&pending.password_hash)
    .bind(&pending.first_name)
    .bind(&pending.last_name)
    .bind(pending.expires_at)
    .bind(now)
    .execute(ex)
    .await?;
    Ok(pending)
}

/// A pending (not completed, not expired) sign-up.
#[tracing::instrument(skip(ex))]
pub async fn find_pending<'e>(ex: impl Exec<'e>, id: &str, now: i64) -> Result<Option<PendingSignUp>, sqlx::Error> {
    let row = sqlx::query(
        "SELECT id, email, password_hash, first_name, last_name, expires_at, created_at FROM sign_ups
         WHERE id = $1 AND completed_at IS NULL AND expires_at > $2",
    )
    .bind(id)
    .bind(now)
    .fetch_optional(ex)
    .await?;
    row.as_ref().map(PendingSignUp::from_row).transpose()
}

/// The newest pending sign-up for an address created since `since`.
#[tracing::instrument(skip(ex, email))]
pub async fn latest_pending<'e>(
    ex: impl Exec<'e>,
    email: &str,
    since: i64,
    now: i64,
) -> Result<Option<PendingSignUp>, sqlx::Error> {
    let row = sqlx::query(
        "SELECT id, email, password_hash, first_name, last_name, expires_at, created_at FROM sign_ups
         WHERE email_normalized = $1 AND completed_at IS NULL AND expires_at > $2 AND created_at > $3
         ORDER BY created_at DESC LIMIT 1",
    )
    .bind(super::users::normalize_email(email))
    .bind(now)
    .bind(since)
    .fetch_optional(ex)
    .await?;
    row.as_ref().map(PendingSignUp::from_row).transpose()
}

/// Marks a sign-up completed (once: `false` if it already was).
#[tracing::instrument(skip(ex))]
pub async fn complete<'e>(ex: impl Exec<'e>, id: &str, now: i64) -> Result<bool, sqlx::Error> {
    let result = sqlx::query("UPDATE sign_ups SET completed_at = $1 WHERE id = $2 AND completed_at IS NULL")
        .bind(now)
        .bind(id)
        .execute(ex)
        .await?;
    Ok(result.rows_affected() == 1)
}
