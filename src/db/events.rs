//! The `events` table: the transactional outbox. Each change worth reporting writes its
//! event in the same transaction, so an event exists exactly when its change does.

use super::Exec;
use crate::ids::{IdKind, new_id};

/// Event types written today (the outgoing-webhooks worker delivers them).
pub const ITEM_CREATED: &str = "item.created";
pub const ITEM_UPDATED: &str = "item.updated";
pub const ITEM_DELETED: &str = "item.deleted";

#[tracing::instrument(skip(ex, data))]
pub async fn record<'e>(
    ex: impl Exec<'e>,
    event_type: &str,
    organization_id: Option<&str>,
    user_id: Option<&str>,
    data: &serde_json::Value,
    now: i64,
) -> Result<String, sqlx::Error> {
    let id = new_id(IdKind::Message);
    sqlx::query(
        "INSERT INTO events (id, type, organization_id, user_id, payload, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&id)
    .bind(event_type)
    .bind(organization_id)
    .bind(user_id)
    .bind(data.to_string())
    .bind(now)
    .execute(ex)
    .await?;
    Ok(id)
}
