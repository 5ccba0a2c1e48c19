//! The `api_keys` table: an organization's machine credentials. Only the SHA-256 of a
//! secret is stored; revoking sets `revoked_at` (the row stays for the audit trail).

use serde::Serialize;
use sqlx::Row;
use sqlx::any::AnyRow;
use utoipa::ToSchema;

use super::Exec;
use super::pagination::PageRequest;
use super::roles::parse_permissions;
use crate::ids::{IdKind, new_id};

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ApiKey {
    #[schema(example = "ak_01jd3m5x0e8k2q9v7w4h6r1t3y")]
    pub id: String,
    #[serde(skip)]
    pub organization_id: String,
    #[schema(example = "nightly export")]
    pub name: String,
    #[schema(example = json!(["org:data:read"]))]
    pub scopes: Vec<String>,
    /// Unix milliseconds.
    pub created_at: i64,
    /// Unix milliseconds; `null`: no expiry.
    pub expire_at: Option<i64>,
    /// Unix milliseconds (to within a minute); `null`: never used.
    pub last_used_at: Option<i64>,
}

impl ApiKey {
    fn from_row(row: &AnyRow) -> Result<Self, sqlx::Error> {
        Ok(Self {
            id: row.try_get("id")?,
            organization_id: row.try_get("organization_id")?,
            name: row.try_get("name")?,
            scopes: parse_permissions(row.try_get("scopes")?),
            created_at: row.try_get("created_at")?,
            expire_at: row.try_get("expires_at")?,
            last_used_at: row.try_get("last_used_at")?,
        })
    }
}

macro_rules! columns {
    () => {
        "id, organization_id, name, scopes, created_at, expires_at, last_used_at"
    };
}

pub struct NewApiKey<'a> {
    pub organization_id: &'a str,
    pub name: &'a str,
    pub scopes: &'a [String],
    pub secret_hash: &'a str,
    pub created_by: &'a str,
    pub expires_at: Option<i64>,
}

#[tracing::instrument(skip_all)]
pub async fn insert<'e>(ex: impl Exec<'e>, new: &NewApiKey<'_>, now: i64) -> Result<ApiKey, sqlx::Error> {
    let key = ApiKey {
        id: new_id(IdKind::ApiKey),
        organization_id: new.organization_id.to_owned(),
        name: new.name.to_owned(),
        scopes: new.scopes.to_vec(),
        created_at: now,
        expire_at: new.expires_at,
        last_used_at: None,
    };
    sqlx::query(
        "INSERT INTO api_keys (id, organization_id, name, scopes, secret_hash, created_by, created_at, expires_at, last_used_at, revoked_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, NULL, NULL)",
    )
    .bind(&key.id)
    .bind(&key.organization_id)
    .bind(&key.name)
    .bind(key.scopes.join(","))
    .bind(new.secret_hash)
    .bind(new.created_by)
    .bind(now)
    .bind(new.expires_at)
    .execute(ex)
    .await?;
    Ok(key)
}

/// The live key with this secret hash, marking it used now (when its last use is older
/// than a minute). `None`: unknown, revoked or expired.
#[tracing::instrument(skip_all)]
pub async fn authenticate<'e>(ex: impl Exec<'e>, secret_hash: &str, now: i64) -> Result<Option<ApiKey>, sqlx::Error> {
    let row = sqlx::query(concat!(
        "UPDATE api_keys SET last_used_at = CASE WHEN last_used_at IS NULL OR last_used_at < $1 THEN $2 ELSE last_used_at END
         WHERE secret_hash = $3 AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > $2) RETURNING ",
        columns!()
    ))
    .bind(now - 60_000)
    .bind(now)
    .bind(secret_hash)
    .fetch_optional(ex)
    .await?;
    row.as_ref().map(ApiKey::from_row).transpose()
}

/// One page of an organization's live (not revoked) keys, newest first.
#[tracing::instrument(skip(ex))]
pub async fn list<'e>(
    ex: impl Exec<'e>,
    organization_id: &str,
    page: &PageRequest,
) -> Result<Vec<ApiKey>, sqlx::Error> {
    let rows = sqlx::query(concat!(
        "SELECT ",
        columns!(),
        " FROM api_keys WHERE organization_id = $1 AND revoked_at IS NULL AND (created_at, id) < ($2, $3)
         ORDER BY created_at DESC, id DESC LIMIT $4"
    ))
    .bind(organization_id)
    .bind(page.before.0)
    .bind(&page.before.1)
    .bind(page.limit + 1)
    .fetch_all(ex)
    .await?;
    rows.iter().map(ApiKey::from_row).collect()
}

/// Revokes a live key of the organization; the key, or `None` (unknown, another
/// organization's, or revoked already).
#[tracing::instrument(skip(ex))]
pub async fn revoke<'e>(
    ex: impl Exec<'e>,
    organization_id: &str,
    id: &str,
    now: i64,
) -> Result<Option<ApiKey>, sqlx::Error> {
    let row = sqlx::query(concat!(
        "UPDATE api_keys SET revoked_at = $1 WHERE id = $2 AND organization_id = $3 AND revoked_at IS NULL RETURNING ",
        columns!()
    ))
    .bind(now)
    .bind(id)
    .bind(organization_id)
    .fetch_optional(ex)
    .await?;
    row.as_ref().map(ApiKey::from_row).transpose()
}

/// Keys revoked since `since` (the revocation catch-up after a lost notification).
#[tracing::instrument(skip(ex))]
pub async fn revoked_since<'e>(ex: impl Exec<'e>, since: i64) -> Result<Vec<String>, sqlx::Error> {
    let rows = sqlx::query("SELECT id FROM api_keys WHERE revoked_at > $1")
        .bind(since)
        .fetch_all(ex)
        .await?;
    rows.iter().map(|row| row.try_get("id")).collect()
}
