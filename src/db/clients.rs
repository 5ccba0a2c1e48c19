//! The `clients` table: one row per device (browser), named by the `__client` cookie.

use sqlx::Row;

use super::Exec;
use crate::ids::{IdKind, new_id};

#[derive(Debug, Clone)]
pub struct Client {
    pub id: String,
    pub last_active_session_id: Option<String>,
    pub created_at: i64,
}

#[tracing::instrument(skip(ex))]
pub async fn insert<'e>(ex: impl Exec<'e>, now: i64) -> Result<Client, sqlx::Error> {
    let client = Client {
        id: new_id(IdKind::Client),
        last_active_session_id: None,
        created_at: now,
    };
    sqlx::query("INSERT INTO clients (id, last_active_session_id, created_at, updated_at) VALUES ($1, NULL, $2, $2)")
        .bind(&client.id)
        .bind(now)
        .execute(ex)
        .await?;
    Ok(client)
}

#[tracing::instrument(skip(ex))]
pub async fn find<'e>(ex: impl Exec<'e>, id: &str) -> Result<Option<Client>, sqlx::Error> {
    let row = sqlx::query("SELECT id, last_active_session_id, created_at FROM clients WHERE id = $1")
        .bind(id)
        .fetch_optional(ex)
        .await?;
    row.map(|row| {
        Ok(Client {
            id: row.try_get("id")?,
            last_active_session_id: row.try_get("last_active_session_id")?,
            created_at: row.try_get("created_at")?,
        })
    })
    .transpose()
}

#[tracing::instrument(skip(ex))]
pub async fn set_last_active_session<'e>(
    ex: impl Exec<'e>,
    client_id: &str,
    session_id: Option<&str>,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE clients SET last_active_session_id = $1, updated_at = $2 WHERE id = $3")
        .bind(session_id)
        .bind(now)
        .bind(client_id)
        .execute(ex)
        .await?;
    Ok(())
}
