//! Writes that mirror a Clerk instance into the local tables (from Clerk's webhooks).
//! Each takes the caller's transaction, so one webhook applies wholly or not at all.

use sqlx::{AnyConnection, Row};

use super::users::normalize_email;

pub struct SyncedUser<'a> {
    pub id: &'a str,
    pub email: &'a str,
    pub first_name: Option<&'a str>,
    pub last_name: Option<&'a str>,
    pub public_metadata: &'a serde_json::Value,
    pub created_at: i64,
    pub updated_at: i64,
}

/// Inserts or updates a user by id; an email taken by another user is a unique violation.
pub async fn upsert_user(conn: &mut AnyConnection, user: &SyncedUser<'_>) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO users (id, email, email_normalized, password_hash, first_name, last_name, public_metadata, created_at, updated_at)
         VALUES ($1, $2, $3, NULL, $4, $5, $6, $7, $8)
         ON CONFLICT (id) DO UPDATE SET email = excluded.email, email_normalized = excluded.email_normalized,
             first_name = excluded.first_name, last_name = excluded.last_name,
             public_metadata = excluded.public_metadata, updated_at = excluded.updated_at",
    )
    .bind(user.id)
    .bind(user.email)
    .bind(normalize_email(user.email))
    .bind(user.first_name)
    .bind(user.last_name)
    .bind(user.public_metadata.to_string())
    .bind(user.created_at)
    .bind(user.updated_at)
    .execute(conn)
    .await?;
    Ok(())
}

/// Deletes a user (sessions and memberships go with it); returns their active sessions.
pub async fn delete_user(conn: &mut AnyConnection, id: &str) -> Result<Vec<String>, sqlx::Error> {
    let rows = sqlx::query("SELECT id FROM sessions WHERE user_id = $1 AND status = 'active'")
        .bind(id)
        .fetch_all(&mut *conn)
        .await?;
    let sessions = rows
        .iter()
        .map(|r| r.try_get("id"))
        .collect::<Result<Vec<String>, _>>()?;
    sqlx::query("DELETE FROM users WHERE id = $1")
        .bind(id)
        .execute(&mut *conn)
        .await?;
    Ok(sessions)
}

pub async fn user_exists(conn: &mut AnyConnection, id: &str) -> Result<bool, sqlx::Error> {
    Ok(sqlx::query("SELECT 1 FROM users WHERE id = $1")
        .bind(id)
        .fetch_optional(conn)
        .await?
        .is_some())
}

/// Inserts or updates an organization by id; a slug taken by another is a unique violation.
pub async fn upsert_organization(
    conn: &mut AnyConnection,
    id: &str,
    name: &str,
    slug: &str,
    created_at: i64,
    updated_at: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO organizations (id, name, slug, created_by, created_at, updated_at) VALUES ($1, $2, $3, NULL, $4, $5)
         ON CONFLICT (id) DO UPDATE SET name = excluded.name, slug = excluded.slug, updated_at = excluded.updated_at",
    )
    .bind(id)
    .bind(name)
    .bind(slug)
    .bind(created_at)
    .bind(updated_at)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn delete_organization(conn: &mut AnyConnection, id: &str) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM organizations WHERE id = $1")
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

/// Makes sure a role named by Clerk exists locally (a custom role starts with no
/// permissions here; Clerk's tokens carry its permissions).
pub async fn ensure_role(conn: &mut AnyConnection, role: &str, now: i64) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO roles (id, name, permissions, created_at) VALUES ($1, $1, '', $2) ON CONFLICT (id) DO NOTHING",
    )
    .bind(role)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn upsert_membership(
    conn: &mut AnyConnection,
    id: &str,
    organization_id: &str,
    user_id: &str,
    role: &str,
    created_at: i64,
    updated_at: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO memberships (id, organization_id, user_id, role, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (organization_id, user_id) DO UPDATE SET role = excluded.role, updated_at = excluded.updated_at",
    )
    .bind(id)
    .bind(organization_id)
    .bind(user_id)
    .bind(role)
    .bind(created_at)
    .bind(updated_at)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn delete_membership(
    conn: &mut AnyConnection,
    organization_id: &str,
    user_id: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM memberships WHERE organization_id = $1 AND user_id = $2")
        .bind(organization_id)
        .bind(user_id)
        .execute(conn)
        .await?;
    Ok(())
}

pub struct SyncedSession<'a> {
    pub id: &'a str,
    pub client_id: &'a str,
    pub user_id: &'a str,
    pub status: &'a str,
    pub created_at: i64,
    pub last_active_at: i64,
    pub expire_at: i64,
}

/// Inserts or updates a session (and its client) by id.
pub async fn upsert_session(conn: &mut AnyConnection, s: &SyncedSession<'_>, now: i64) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO clients (id, last_active_session_id, created_at, updated_at) VALUES ($1, NULL, $2, $2) ON CONFLICT (id) DO NOTHING")
        .bind(s.client_id)
        .bind(now)
        .execute(&mut *conn)
        .await?;
    sqlx::query(
        "INSERT INTO sessions (id, client_id, user_id, status, active_organization_id, user_agent, ip_address, created_at, updated_at, last_active_at, last_verified_at, expire_at)
         VALUES ($1, $2, $3, $4, NULL, NULL, NULL, $5, $6, $7, $5, $8)
         ON CONFLICT (id) DO UPDATE SET status = excluded.status, updated_at = excluded.updated_at,
             last_active_at = excluded.last_active_at, expire_at = excluded.expire_at",
    )
    .bind(s.id)
    .bind(s.client_id)
    .bind(s.user_id)
    .bind(s.status)
    .bind(s.created_at)
    .bind(now)
    .bind(s.last_active_at)
    .bind(s.expire_at)
    .execute(conn)
    .await?;
    Ok(())
}

/// Moves a known session to `status`; unknown sessions are fine (Clerk may know more).
pub async fn set_session_status(conn: &mut AnyConnection, id: &str, status: &str, now: i64) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE sessions SET status = $1, updated_at = $2 WHERE id = $3 AND status = 'active'")
        .bind(status)
        .bind(now)
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

/// Records a message id; false if it was already recorded (a redelivery).
pub async fn record_receipt(
    conn: &mut AnyConnection,
    message_id: &str,
    event_type: &str,
    now: i64,
) -> Result<bool, sqlx::Error> {
    let result = sqlx::query(
        "INSERT INTO webhook_receipts (message_id, event_type, received_at) VALUES ($1, $2, $3) ON CONFLICT (message_id) DO NOTHING",
    )
    .bind(message_id)
    .bind(event_type)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(result.rows_affected() == 1)
}
