//! The `emails` table: the email outbox. An email is written in the transaction that
//! causes it and sent by the mail worker, which claims due rows (a lease, so a crash
//! means a retry, never a loss), sends, and settles them. Once sent, the bodies (which
//! hold codes and links) are blanked.

use sqlx::Row;

use super::{Db, Dialect, Exec};
use crate::ids::{IdKind, new_id};

/// An email to queue.
pub struct NewEmail<'a> {
    /// What it is (`email_verification`, `password_reset`, …): the per-address limit
    /// counts emails of one kind.
    pub kind: &'a str,
    pub to: &'a str,
    pub subject: &'a str,
    pub text: &'a str,
    pub html: Option<&'a str>,
}

/// The NOTIFY channel that wakes the mail workers (PostgreSQL): sent in the email's
/// transaction, so it arrives when the email is committed.
pub const MAIL_CHANNEL: &str = "gatehouse_mail";

/// Queues an email (due at once) and, on PostgreSQL, wakes the mail workers as the
/// transaction commits.
#[tracing::instrument(skip(conn, email), fields(kind = email.kind))]
pub async fn insert(conn: &mut sqlx::AnyConnection, email: &NewEmail<'_>, now: i64) -> Result<String, sqlx::Error> {
    let id = new_id(IdKind::Email);
    sqlx::query(
        "INSERT INTO emails (id, kind, to_address, to_normalized, subject, text_body, html_body, status, attempts, next_attempt_at, locked_until, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, 'pending', 0, $8, 0, $8, $8)",
    )
    .bind(&id)
    .bind(email.kind)
    .bind(email.to.trim())
    .bind(super::users::normalize_email(email.to))
    .bind(email.subject)
    .bind(email.text)
    .bind(email.html)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    super::notify_on_commit(conn, MAIL_CHANNEL).await?;
    Ok(id)
}

/// Whether an email of `kind` went to this address since `since` (the per-address limit).
#[tracing::instrument(skip(ex, address))]
pub async fn sent_recently<'e>(ex: impl Exec<'e>, address: &str, kind: &str, since: i64) -> Result<bool, sqlx::Error> {
    let row = sqlx::query("SELECT 1 FROM emails WHERE to_normalized = $1 AND kind = $2 AND created_at > $3 LIMIT 1")
        .bind(super::users::normalize_email(address))
        .bind(kind)
        .bind(since)
        .fetch_optional(ex)
        .await?;
    Ok(row.is_some())
}

/// A claimed email, with what sending it needs.
#[derive(Debug, Clone)]
pub struct ClaimedEmail {
    pub id: String,
    pub kind: String,
    pub to: String,
    pub subject: String,
    pub text: String,
    pub html: Option<String>,
    /// This attempt's number (1 for the first).
    pub attempt: i64,
}

/// Whether any email is due (a cheap read: an idle worker takes no write lock).
pub async fn any_due(db: &Db, now: i64) -> Result<bool, sqlx::Error> {
    let row = sqlx::query(
        "SELECT 1 FROM emails WHERE status = 'pending' AND next_attempt_at <= $1 AND locked_until <= $1 LIMIT 1",
    )
    .bind(now)
    .fetch_optional(&db.pool)
    .await?;
    Ok(row.is_some())
}

/// Claims up to `limit` due emails until `lease_until` (`SKIP LOCKED` on PostgreSQL).
pub async fn claim_due(db: &Db, now: i64, lease_until: i64, limit: i64) -> Result<Vec<ClaimedEmail>, sqlx::Error> {
    let sql = match db.dialect {
        Dialect::Postgres => {
            "UPDATE emails SET locked_until = $1, attempts = attempts + 1, updated_at = $2
             WHERE id IN (SELECT id FROM emails WHERE status = 'pending' AND next_attempt_at <= $2 AND locked_until <= $2
                          ORDER BY next_attempt_at LIMIT $3 FOR UPDATE SKIP LOCKED)
             RETURNING id, kind, to_address, subject, text_body, html_body, attempts"
        }
        Dialect::Sqlite => {
            "UPDATE emails SET locked_until = $1, attempts = attempts + 1, updated_at = $2
             WHERE id IN (SELECT id FROM emails WHERE status = 'pending' AND next_attempt_at <= $2 AND locked_until <= $2
                          ORDER BY next_attempt_at LIMIT $3)
             RETURNING id, kind, to_address, subject, text_body, html_body, attempts"
        }
    };
    let rows = sqlx::query(sql)
        .bind(lease_until)
        .bind(now)
        .bind(limit)
        .fetch_all(&db.pool)
        .await?;
    rows.iter()
        .map(|row| {
            Ok(ClaimedEmail {
                id: row.try_get("id")?,
                kind: row.try_get("kind")?,
                to: row.try_get("to_address")?,
                subject: row.try_get("subject")?,
                text: row.try_get("text_body")?,
                html: row.try_get("html_body")?,
                attempt: row.try_get("attempts")?,
            })
        })
        .collect()
}

/// Records how a send went: sent (bodies blanked), retried at `retry_at`, or given up.
pub async fn settle(
    db: &Db,
    id: &str,
    outcome: Result<(), &str>,
    retry_at: Option<i64>,
    now: i64,
) -> Result<(), sqlx::Error> {
    match outcome {
        Ok(()) => sqlx::query(
            "UPDATE emails SET status = 'sent', text_body = '', html_body = NULL, last_error = NULL,
                 locked_until = 0, updated_at = $1 WHERE id = $2",
        )
        .bind(now)
        .bind(id),
        Err(error) => sqlx::query(
            "UPDATE emails SET status = $1, next_attempt_at = $2, last_error = $3, locked_until = 0, updated_at = $4
             WHERE id = $5",
        )
        .bind(if retry_at.is_some() { "pending" } else { "failed" })
        .bind(retry_at.unwrap_or(now))
        .bind(error)
        .bind(now)
        .bind(id),
    }
    .execute(&db.pool)
    .await?;
    Ok(())
}
