//! Outgoing webhooks: endpoints, deliveries (one per event and endpoint) and attempts.

use serde::Serialize;
use sqlx::Row;
use sqlx::any::AnyRow;
use utoipa::ToSchema;

use super::pagination::PageRequest;
use super::{Db, Dialect, Exec};

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct WebhookEndpoint {
    #[schema(example = "whep_01jd3m5x0e8k2q9v7w4h6r1t3y")]
    pub id: String,
    pub url: String,
    pub description: Option<String>,
    /// Event types delivered; empty means all.
    pub events: Vec<String>,
    /// `active`, or `failing` after repeated errors (deliveries are still attempted).
    pub status: String,
    pub consecutive_failures: i64,
    /// Unix milliseconds.
    pub created_at: i64,
    #[serde(skip)]
    pub secret: String,
}

impl WebhookEndpoint {
    fn from_row(row: &AnyRow) -> Result<Self, sqlx::Error> {
        let events: String = row.try_get("events")?;
        Ok(Self {
            id: row.try_get("id")?,
            url: row.try_get("url")?,
            description: row.try_get("description")?,
            events: events.split(',').filter(|e| !e.is_empty()).map(str::to_owned).collect(),
            status: row.try_get("status")?,
            consecutive_failures: row.try_get("consecutive_failures")?,
            created_at: row.try_get("created_at")?,
            secret: row.try_get("secret")?,
        })
    }
}

macro_rules! endpoint_columns {
    () => {
        "id, url, description, events, secret, status, consecutive_failures, created_at"
    };
}

pub async fn insert_endpoint<'e>(ex: impl Exec<'e>, endpoint: &WebhookEndpoint) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO webhook_endpoints (id, url, description, events, secret, status, consecutive_failures, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, 'active', 0, $6, $6)",
    )
    .bind(&endpoint.id)
    .bind(&endpoint.url)
    .bind(&endpoint.description)
    .bind(endpoint.events.join(","))
    .bind(&endpoint.secret)
    .bind(endpoint.created_at)
    .execute(ex)
    .await?;
    Ok(())
}

pub async fn find_endpoint<'e>(ex: impl Exec<'e>, id: &str) -> Result<Option<WebhookEndpoint>, sqlx::Error> {
    let row = sqlx::query(concat!(
        "SELECT ",
        endpoint_columns!(),
        " FROM webhook_endpoints WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(ex)
    .await?;
    row.as_ref().map(WebhookEndpoint::from_row).transpose()
}

pub async fn list_endpoints<'e>(ex: impl Exec<'e>, page: &PageRequest) -> Result<Vec<WebhookEndpoint>, sqlx::Error> {
    let rows = sqlx::query(concat!(
        "SELECT ",
        endpoint_columns!(),
        " FROM webhook_endpoints WHERE (created_at, id) < ($1, $2) ORDER BY created_at DESC, id DESC LIMIT $3"
    ))
    .bind(page.before.0)
    .bind(&page.before.1)
    .bind(page.limit + 1)
    .fetch_all(ex)
    .await?;
    rows.iter().map(WebhookEndpoint::from_row).collect()
}

pub async fn delete_endpoint<'e>(ex: impl Exec<'e>, id: &str) -> Result<bool, sqlx::Error> {
    Ok(sqlx::query("DELETE FROM webhook_endpoints WHERE id = $1")
        .bind(id)
        .execute(ex)
        .await?
        .rows_affected()
        == 1)
}

/// One pending delivery per endpoint subscribed to the event's type, in the event's
/// own transaction (the transactional outbox); returns how many.
pub async fn fan_out<'e>(ex: impl Exec<'e>, event_id: &str, event_type: &str, now: i64) -> Result<u64, sqlx::Error> {
    let result = sqlx::query(
        "INSERT INTO webhook_deliveries (id, event_id, endpoint_id, status, attempts, next_attempt_at, locked_until, created_at, updated_at)
         SELECT $1 || ':' || e.id, $1, e.id, 'pending', 0, $3, 0, $3, $3 FROM webhook_endpoints e
         WHERE e.events = '' OR (',' || e.events || ',') LIKE ('%,' || $2 || ',%')",
    )
    .bind(event_id)
    .bind(event_type)
    .bind(now)
    .execute(ex)
    .await?;
    Ok(result.rows_affected())
}

/// Whether any delivery is due: a cheap read, so an idle worker never takes a write lock.
pub async fn any_due(db: &Db, now: i64) -> Result<bool, sqlx::Error> {
    let row = sqlx::query(
        "SELECT 1 FROM webhook_deliveries WHERE status = 'pending' AND next_attempt_at <= $1 AND locked_until <= $1 LIMIT 1",
    )
    .bind(now)
    .fetch_optional(&db.pool)
    .await?;
    Ok(row.is_some())
}

/// A claimed delivery, with what sending it needs.
#[derive(Debug, Clone)]
pub struct Claimed {
    pub delivery_id: String,
    pub event_id: String,
    pub endpoint_id: String,
    /// This attempt's number (1 for the first).
    pub attempt: i64,
    pub event_type: String,
    pub payload: String,
    pub event_created_at: i64,
    pub url: String,
    pub secret: String,
}

/// Claims up to `limit` due deliveries until `lease_until`: on PostgreSQL with
/// `FOR UPDATE SKIP LOCKED`, so instances share the work without taking the same row;
/// on SQLite the single writer makes the UPDATE atomic. A claim that is never settled
/// (a crash) is due again when its lease ends: at least once.
pub async fn claim_due(db: &Db, now: i64, lease_until: i64, limit: i64) -> Result<Vec<Claimed>, sqlx::Error> {
    if db.dialect == Dialect::Sqlite {
        // SQLite's RETURNING may not name the FROM tables: claim, then read the details.
        return claim_due_sqlite(db, now, lease_until, limit).await;
    }
    let sql = "UPDATE webhook_deliveries AS d SET locked_until = $1, attempts = d.attempts + 1, updated_at = $2
             FROM events AS e, webhook_endpoints AS w
             WHERE d.id IN (SELECT id FROM webhook_deliveries
                            WHERE status = 'pending' AND next_attempt_at <= $2 AND locked_until <= $2
                            ORDER BY next_attempt_at LIMIT $3 FOR UPDATE SKIP LOCKED)
               AND e.id = d.event_id AND w.id = d.endpoint_id
             RETURNING d.id, d.event_id, d.endpoint_id, d.attempts, e.type, e.payload, e.created_at, w.url, w.secret";
    let rows = sqlx::query(sql)
        .bind(lease_until)
        .bind(now)
        .bind(limit)
        .fetch_all(&db.pool)
        .await?;
    rows.iter()
        .map(|row| {
            Ok(Claimed {
                delivery_id: row.try_get("id")?,
                event_id: row.try_get("event_id")?,
                endpoint_id: row.try_get("endpoint_id")?,
                attempt: row.try_get("attempts")?,
                event_type: row.try_get("type")?,
                payload: row.try_get("payload")?,
                event_created_at: row.try_get("created_at")?,
                url: row.try_get("url")?,
                secret: row.try_get("secret")?,
            })
        })
        .collect()
}

async fn claim_due_sqlite(db: &Db, now: i64, lease_until: i64, limit: i64) -> Result<Vec<Claimed>, sqlx::Error> {
    let rows = sqlx::query(
        "UPDATE webhook_deliveries SET locked_until = $1, attempts = attempts + 1, updated_at = $2
         WHERE id IN (SELECT id FROM webhook_deliveries
                      WHERE status = 'pending' AND next_attempt_at <= $2 AND locked_until <= $2
                      ORDER BY next_attempt_at LIMIT $3)
         RETURNING id, event_id, endpoint_id, attempts",
    )
    .bind(lease_until)
    .bind(now)
    .bind(limit)
    .fetch_all(&db.pool)
    .await?;
    let mut claimed = Vec::with_capacity(rows.len());
    for row in rows {
        let (event_id, endpoint_id): (String, String) = (row.try_get("event_id")?, row.try_get("endpoint_id")?);
        let detail = sqlx::query(
            "SELECT e.type, e.payload, e.created_at, w.url, w.secret FROM events e, webhook_endpoints w WHERE e.id = $1 AND w.id = $2",
        )
        .bind(&event_id)
        .bind(&endpoint_id)
        .fetch_optional(&db.pool)
        .await?;
        // The endpoint was deleted meanwhile (its deliveries go with it).
        let Some(detail) = detail else { continue };
        claimed.push(Claimed {
            delivery_id: row.try_get("id")?,
            attempt: row.try_get("attempts")?,
            event_type: detail.try_get("type")?,
            payload: detail.try_get("payload")?,
            event_created_at: detail.try_get("created_at")?,
            url: detail.try_get("url")?,
            secret: detail.try_get("secret")?,
            event_id,
            endpoint_id,
        });
    }
    Ok(claimed)
}

/// How one attempt went.
pub struct AttemptOutcome<'a> {
    pub status_code: Option<i64>,
    pub error: Option<&'a str>,
    pub duration_ms: i64,
    /// `None`: delivered. `Some(Some(t))`: retry at `t`. `Some(None)`: given up.
    pub retry_at: Option<Option<i64>>,
}

/// Records an attempt and settles the delivery and the endpoint's health atomically:
/// on PostgreSQL in one statement (one round trip), on SQLite in one transaction. The
/// endpoint row is only written when its health changes (a failure, or the first
/// success after failures), so concurrent deliveries to one endpoint do not queue on it.
pub async fn settle(
    db: &Db,
    claimed: &Claimed,
    outcome: &AttemptOutcome<'_>,
    failing_after: i64,
    now: i64,
) -> Result<(), sqlx::Error> {
    let attempt_id = crate::ids::new_id(crate::ids::IdKind::Message).replace("msg_", "att_");
    let (status, next) = match outcome.retry_at {
        None => ("delivered", now),
        Some(Some(at)) => ("pending", at),
        Some(None) => ("failed", now),
    };
    let delivered = i64::from(outcome.retry_at.is_none());
    if db.dialect == Dialect::Postgres {
        sqlx::query(
            "WITH attempt AS (
                 INSERT INTO webhook_attempts (id, delivery_id, endpoint_id, event_id, attempt, status_code, error, duration_ms, created_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
             ), delivery AS (
                 UPDATE webhook_deliveries SET status = $10, next_attempt_at = $11, locked_until = 0, updated_at = $9 WHERE id = $2
             )
             UPDATE webhook_endpoints SET
                 consecutive_failures = CASE WHEN $12 = 1 THEN 0 ELSE consecutive_failures + 1 END,
                 status = CASE WHEN $12 = 1 THEN 'active' WHEN consecutive_failures + 1 >= $13 THEN 'failing' ELSE status END,
                 updated_at = $9
             WHERE id = $3 AND ($12 = 0 OR consecutive_failures <> 0 OR status <> 'active')",
        )
        .bind(&attempt_id)
        .bind(&claimed.delivery_id)
        .bind(&claimed.endpoint_id)
        .bind(&claimed.event_id)
        .bind(claimed.attempt)
        .bind(outcome.status_code)
        .bind(outcome.error)
        .bind(outcome.duration_ms)
        .bind(now)
        .bind(status)
        .bind(next)
        .bind(delivered)
        .bind(failing_after)
        .execute(&db.pool)
        .await?;
        return Ok(());
    }
    let mut tx = db.begin().await?;
    sqlx::query(
        "INSERT INTO webhook_attempts (id, delivery_id, endpoint_id, event_id, attempt, status_code, error, duration_ms, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(&attempt_id)
    .bind(&claimed.delivery_id)
    .bind(&claimed.endpoint_id)
    .bind(&claimed.event_id)
    .bind(claimed.attempt)
    .bind(outcome.status_code)
    .bind(outcome.error)
    .bind(outcome.duration_ms)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    sqlx::query("UPDATE webhook_deliveries SET status = $1, next_attempt_at = $2, locked_until = 0, updated_at = $3 WHERE id = $4")
        .bind(status)
        .bind(next)
        .bind(now)
        .bind(&claimed.delivery_id)
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "UPDATE webhook_endpoints SET
             consecutive_failures = CASE WHEN $1 = 1 THEN 0 ELSE consecutive_failures + 1 END,
             status = CASE WHEN $1 = 1 THEN 'active' WHEN consecutive_failures + 1 >= $2 THEN 'failing' ELSE status END,
             updated_at = $3
         WHERE id = $4 AND ($1 = 0 OR consecutive_failures <> 0 OR status <> 'active')",
    )
    .bind(delivered)
    .bind(failing_after)
    .bind(now)
    .bind(&claimed.endpoint_id)
    .execute(&mut *tx)
    .await?;
    tx.commit().await
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DeliveryAttempt {
    pub id: String,
    pub event_id: String,
    pub attempt: i64,
    /// The receiver's HTTP status, when it answered.
    pub status_code: Option<i64>,
    pub error: Option<String>,
    pub duration_ms: i64,
    /// Unix milliseconds.
    pub created_at: i64,
}

/// An endpoint's recent attempts, newest first.
pub async fn list_attempts<'e>(
    ex: impl Exec<'e>,
    endpoint_id: &str,
    page: &PageRequest,
) -> Result<Vec<DeliveryAttempt>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT id, event_id, attempt, status_code, error, duration_ms, created_at FROM webhook_attempts
         WHERE endpoint_id = $1 AND (created_at, id) < ($2, $3) ORDER BY created_at DESC, id DESC LIMIT $4",
    )
    .bind(endpoint_id)
    .bind(page.before.0)
    .bind(&page.before.1)
    .bind(page.limit + 1)
    .fetch_all(ex)
    .await?;
    rows.iter()
        .map(|row| {
            Ok(DeliveryAttempt {
                id: row.try_get("id")?,
                event_id: row.try_get("event_id")?,
                attempt: row.try_get("attempt")?,
                status_code: row.try_get("status_code")?,
                error: row.try_get("error")?,
                duration_ms: row.try_get("duration_ms")?,
                created_at: row.try_get("created_at")?,
            })
        })
        .collect()
}
