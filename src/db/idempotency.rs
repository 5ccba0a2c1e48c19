//! The `idempotency_keys` table: the first response to a keyed request, replayed to
//! retries for 24 hours.

use sqlx::Row;

use super::Exec;

pub const TTL_MS: i64 = 24 * 60 * 60 * 1000;

#[derive(Debug, Clone)]
pub struct StoredResponse {
    pub request_hash: String,
    pub status: u16,
    pub body: String,
}

/// The stored response for `(scope, key)`, unless it has expired.
#[tracing::instrument(skip(ex))]
pub async fn find<'e>(
    ex: impl Exec<'e>,
    scope: &str,
    key: &str,
    now: i64,
) -> Result<Option<StoredResponse>, sqlx::Error> {
    let row = sqlx::query(
        "SELECT request_hash, response_status, response_body FROM idempotency_keys
         WHERE scope = $1 AND idempotency_key = $2 AND expires_at > $3",
    )
    .bind(scope)
    .bind(key)
    .bind(now)
    .fetch_optional(ex)
    .await?;
    row.map(|row| {
        Ok(StoredResponse {
            request_hash: row.try_get("request_hash")?,
            status: row.try_get::<i32, _>("response_status")? as u16,
            body: row.try_get("response_body")?,
        })
    })
    .transpose()
}

/// Stores the response; a live entry for the same key is a unique violation (a
/// concurrent request got there first), an expired one is replaced.
#[tracing::instrument(skip(ex, stored))]
pub async fn insert<'e>(
    ex: impl Exec<'e>,
    scope: &str,
    key: &str,
    stored: &StoredResponse,
    now: i64,
) -> Result<bool, sqlx::Error> {
    let result = sqlx::query(
        "INSERT INTO idempotency_keys (scope, idempotency_key, request_hash, response_status, response_body, created_at, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7)
         ON CONFLICT (scope, idempotency_key) DO UPDATE SET
             request_hash = excluded.request_hash, response_status = excluded.response_status,
             response_body = excluded.response_body, created_at = excluded.created_at, expires_at = excluded.expires_at
         WHERE idempotency_keys.expires_at <= $6",
    )
    .bind(scope)
    .bind(key)
    .bind(&stored.request_hash)
    .bind(i32::from(stored.status))
    .bind(&stored.body)
    .bind(now)
    .bind(now + TTL_MS)
    .execute(ex)
    .await?;
    Ok(result.rows_affected() == 1)
}

/// Deletes expired keys; returns how many.
#[tracing::instrument(skip(ex))]
pub async fn purge_expired<'e>(ex: impl Exec<'e>, now: i64) -> Result<u64, sqlx::Error> {
    let result = sqlx::query("DELETE FROM idempotency_keys WHERE expires_at <= $1")
        .bind(now)
        .execute(ex)
        .await?;
    Ok(result.rows_affected())
}
