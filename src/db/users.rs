//! The `users` table.

use serde::Serialize;
use sqlx::Row;
use sqlx::any::AnyRow;
use utoipa::ToSchema;

use super::{Exec, json_column};
use crate::ids::{IdKind, new_id};

/// A stored user. `password_hash` never leaves the server.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct User {
    #[schema(example = "user_01jd3m5x0e8k2q9v7w4h6r1t3y")]
    pub id: String,
    pub email: String,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    /// Free-form JSON object, readable in session tokens through templates.
    #[schema(value_type = Object)]
    pub public_metadata: serde_json::Value,
    /// Free-form JSON object the user reads and writes (`PATCH /api/me/profile`).
    #[schema(value_type = Object)]
    pub unsafe_metadata: serde_json::Value,
    pub email_verified: bool,
    pub two_factor_enabled: bool,
    pub banned: bool,
    /// Whether the user can sign in with a password.
    pub has_password: bool,
    /// Unix milliseconds.
    pub created_at: i64,
    /// Unix milliseconds.
    pub updated_at: i64,
    #[serde(skip)]
    pub password_hash: Option<String>,
    /// Backend-only metadata: never in a user-facing response or a token.
    #[serde(skip)]
    pub private_metadata: serde_json::Value,
}

impl User {
    fn from_row(row: &AnyRow) -> Result<Self, sqlx::Error> {
        let password_hash: Option<String> = row.try_get("password_hash")?;
        Ok(Self {
            id: row.try_get("id")?,
            email: row.try_get("email")?,
            first_name: row.try_get("first_name")?,
            last_name: row.try_get("last_name")?,
            public_metadata: json_column(row.try_get("public_metadata")?),
            unsafe_metadata: json_column(row.try_get("unsafe_metadata")?),
            email_verified: row.try_get::<i64, _>("email_verified")? != 0,
            two_factor_enabled: row.try_get::<i64, _>("two_factor_enabled")? != 0,
            banned: row.try_get::<i64, _>("banned")? != 0,
            has_password: password_hash.is_some(),
            created_at: row.try_get("created_at")?,
            updated_at: row.try_get("updated_at")?,
            password_hash,
            private_metadata: json_column(row.try_get("private_metadata")?),
        })
    }
}

/// The form in which emails are compared: unique case-insensitively.
pub fn normalize_email(email: &str) -> String {
    email.trim().to_lowercase()
}

pub struct NewUser<'a> {
    pub email: &'a str,
    pub password_hash: Option<&'a str>,
    pub first_name: Option<&'a str>,
    pub last_name: Option<&'a str>,
    pub email_verified: bool,
}

macro_rules! columns {
    () => {
        "id, email, first_name, last_name, public_metadata, unsafe_metadata, private_metadata, email_verified, two_factor_enabled, banned, created_at, updated_at, password_hash"
    };
}

/// Inserts a user; a taken email is a unique violation on `users_email_normalized_key`.
#[tracing::instrument(skip_all)]
pub async fn insert<'e>(ex: impl Exec<'e>, new: NewUser<'_>, now: i64) -> Result<User, sqlx::Error> {
    let user = User {
        id: new_id(IdKind::User),
        email: new.email.trim().to_owned(),
        first_name: new.first_name.map(str::to_owned),
        last_name: new.last_name.map(str::to_owned),
        public_metadata: serde_json::json!({}),
        unsafe_metadata: serde_json::json!({}),
        email_verified: new.email_verified,
        two_factor_enabled: false,
        banned: false,
        has_password: new.password_hash.is_some(),
        created_at: now,
        updated_at: now,
        password_hash: new.password_hash.map(str::to_owned),
        private_metadata: serde_json::json!({}),
    };
    sqlx::query(
        "INSERT INTO users (id, email, email_normalized, password_hash, first_name, last_name, public_metadata, email_verified, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, '{}', $7, $8, $8)",
    )
    .bind(&user.id)
    .bind(&user.email)
    .bind(normalize_email(&user.email))
    .bind(&user.password_hash)
    .bind(&user.first_name)
    .bind(&user.last_name)
    .bind(i64::from(user.email_verified))
    .bind(now)
    .execute(ex)
    .await?;
    Ok(user)
}

#[tracing::instrument(skip(ex))]
pub async fn find_by_id<'e>(ex: impl Exec<'e>, id: &str) -> Result<Option<User>, sqlx::Error> {
    let row = sqlx::query(concat!("SELECT ", columns!(), " FROM users WHERE id = $1"))
        .bind(id)
        .fetch_optional(ex)
        .await?;
    row.as_ref().map(User::from_row).transpose()
}

#[tracing::instrument(skip_all)]
pub async fn find_by_email<'e>(ex: impl Exec<'e>, email: &str) -> Result<Option<User>, sqlx::Error> {
    let row = sqlx::query(concat!(
        "SELECT ",
        columns!(),
        " FROM users WHERE email_normalized = $1"
    ))
    .bind(normalize_email(email))
    .fetch_optional(ex)
    .await?;
    row.as_ref().map(User::from_row).transpose()
}

/// One page of users, newest first (Backend API).
#[tracing::instrument(skip(ex))]
pub async fn list<'e>(ex: impl Exec<'e>, page: &super::pagination::PageRequest) -> Result<Vec<User>, sqlx::Error> {
    let rows = sqlx::query(concat!(
        "SELECT ",
        columns!(),
        " FROM users WHERE (created_at, id) < ($1, $2) ORDER BY created_at DESC, id DESC LIMIT $3"
    ))
    .bind(page.before.0)
    .bind(&page.before.1)
    .bind(page.limit + 1)
    .fetch_all(ex)
    .await?;
    rows.iter().map(User::from_row).collect()
}

/// Fields to replace; `None` leaves a field as it is.
#[derive(Debug, Default)]
pub struct UserChange<'a> {
    pub first_name: Option<&'a str>,
    pub last_name: Option<&'a str>,
    pub public_metadata: Option<&'a serde_json::Value>,
    pub private_metadata: Option<&'a serde_json::Value>,
    pub unsafe_metadata: Option<&'a serde_json::Value>,
}

/// Replaces the given fields; the user as it now is (`None`: no such user).
#[tracing::instrument(skip(ex, change))]
pub async fn update<'e>(
    ex: impl Exec<'e>,
    id: &str,
    change: &UserChange<'_>,
    now: i64,
) -> Result<Option<User>, sqlx::Error> {
    let row = sqlx::query(concat!(
        "UPDATE users SET first_name = COALESCE($1, first_name), last_name = COALESCE($2, last_name),
             public_metadata = COALESCE($3, public_metadata), private_metadata = COALESCE($4, private_metadata),
             unsafe_metadata = COALESCE($5, unsafe_metadata), updated_at = $6 WHERE id = $7 RETURNING ",
        columns!()
    ))
    .bind(change.first_name)
    .bind(change.last_name)
    .bind(change.public_metadata.map(|m| m.to_string()))
    .bind(change.private_metadata.map(|m| m.to_string()))
    .bind(change.unsafe_metadata.map(|m| m.to_string()))
    .bind(now)
    .bind(id)
    .fetch_optional(ex)
    .await?;
    row.as_ref().map(User::from_row).transpose()
}

/// Takes the user's row lock (and, on SQLite, the write lock) before a read-then-write
/// change; `false` when there is no such user.
#[tracing::instrument(skip(ex))]
pub async fn lock<'e>(ex: impl Exec<'e>, id: &str, now: i64) -> Result<bool, sqlx::Error> {
    let result = sqlx::query("UPDATE users SET updated_at = $1 WHERE id = $2")
        .bind(now)
        .bind(id)
        .execute(ex)
        .await?;
    Ok(result.rows_affected() == 1)
}

/// Sets `banned`; returns the user if it changed.
#[tracing::instrument(skip(ex))]
pub async fn set_banned<'e>(ex: impl Exec<'e>, id: &str, banned: bool, now: i64) -> Result<Option<User>, sqlx::Error> {
    let row = sqlx::query(concat!(
        "UPDATE users SET banned = $1, updated_at = $2 WHERE id = $3 AND banned <> $1 RETURNING ",
        columns!()
    ))
    .bind(i64::from(banned))
    .bind(now)
    .bind(id)
    .fetch_optional(ex)
    .await?;
    row.as_ref().map(User::from_row).transpose()
}

/// Deletes a user (memberships, sessions, second factor and tokens go with it by
/// `ON DELETE CASCADE`); `false` when there was none.
#[tracing::instrument(skip(ex))]
pub async fn delete<'e>(ex: impl Exec<'e>, id: &str) -> Result<bool, sqlx::Error> {
    let result = sqlx::query("DELETE FROM users WHERE id = $1")
        .bind(id)
        .execute(ex)
        .await?;
    Ok(result.rows_affected() == 1)
}

/// Marks the email verified; returns the user if it changed (it was not verified).
#[tracing::instrument(skip(ex))]
pub async fn mark_email_verified<'e>(ex: impl Exec<'e>, id: &str, now: i64) -> Result<Option<User>, sqlx::Error> {
    let row = sqlx::query(concat!(
        "UPDATE users SET email_verified = 1, updated_at = $1 WHERE id = $2 AND email_verified = 0 RETURNING ",
        columns!()
    ))
    .bind(now)
    .bind(id)
    .fetch_optional(ex)
    .await?;
    row.as_ref().map(User::from_row).transpose()
}

/// Sets `two_factor_enabled`; returns the user if it changed.
#[tracing::instrument(skip(ex))]
pub async fn set_two_factor<'e>(
    ex: impl Exec<'e>,
    id: &str,
    enabled: bool,
    now: i64,
) -> Result<Option<User>, sqlx::Error> {
    let row = sqlx::query(concat!(
        "UPDATE users SET two_factor_enabled = $1, updated_at = $2 WHERE id = $3 AND two_factor_enabled <> $1 RETURNING ",
        columns!()
    ))
    .bind(i64::from(enabled))
    .bind(now)
    .bind(id)
    .fetch_optional(ex)
    .await?;
    row.as_ref().map(User::from_row).transpose()
}

/// Replaces the password hash (`None`: no password).
#[tracing::instrument(skip_all)]
pub async fn set_password<'e>(
    ex: impl Exec<'e>,
    id: &str,
    password_hash: Option<&str>,
    now: i64,
) -> Result<bool, sqlx::Error> {
    let result = sqlx::query("UPDATE users SET password_hash = $1, updated_at = $2 WHERE id = $3")
        .bind(password_hash)
        .bind(now)
        .bind(id)
        .execute(ex)
        .await?;
    Ok(result.rows_affected() == 1)
}
