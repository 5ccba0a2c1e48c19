//! The `jwt_templates` and `session_token_template` tables.

use serde::Serialize;
use sqlx::Row;
use sqlx::any::AnyRow;
use utoipa::ToSchema;

use super::Exec;
use super::pagination::PageRequest;

/// A JWT template as the Backend API shows it (the signing key is never shown).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct JwtTemplate {
    #[schema(example = "jtmpl_01jd3m5x0e8k2q9v7w4h6r1t3y")]
    pub id: String,
    #[schema(example = "jwt_template")]
    pub object: &'static str,
    #[schema(example = "supabase")]
    pub name: String,
    #[schema(value_type = Object)]
    pub claims: serde_json::Value,
    /// Seconds.
    pub lifetime: i64,
    /// Seconds.
    pub allowed_clock_skew: i64,
    /// `RS256` (the instance keys) or `HS256` (the template's own key).
    #[schema(example = "RS256")]
    pub signing_algorithm: String,
    pub custom_signing_key: bool,
    /// Unix milliseconds.
    pub created_at: i64,
    /// Unix milliseconds.
    pub updated_at: i64,
    #[serde(skip)]
    pub signing_key: Option<String>,
}

impl JwtTemplate {
    fn from_row(row: &AnyRow) -> Result<Self, sqlx::Error> {
        let signing_key: Option<String> = row.try_get("signing_key")?;
        Ok(Self {
            id: row.try_get("id")?,
            object: "jwt_template",
            name: row.try_get("name")?,
            claims: super::json_column(row.try_get("claims")?),
            lifetime: row.try_get("lifetime")?,
            allowed_clock_skew: row.try_get("allowed_clock_skew")?,
            signing_algorithm: row.try_get("signing_algorithm")?,
            custom_signing_key: signing_key.is_some(),
            created_at: row.try_get("created_at")?,
            updated_at: row.try_get("updated_at")?,
            signing_key,
        })
    }
}

macro_rules! columns {
    () => {
        "id, name, claims, lifetime, allowed_clock_skew, signing_algorithm, signing_key, created_at, updated_at"
    };
}

/// Inserts (or, with an existing id, replaces) a template; a taken name violates
/// `jwt_templates_name_key`.
#[tracing::instrument(skip(ex, template), fields(name = %template.name))]
pub async fn upsert<'e>(ex: impl Exec<'e>, template: &JwtTemplate) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO jwt_templates (id, name, claims, lifetime, allowed_clock_skew, signing_algorithm, signing_key, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
         ON CONFLICT (id) DO UPDATE SET name = excluded.name, claims = excluded.claims, lifetime = excluded.lifetime,
             allowed_clock_skew = excluded.allowed_clock_skew, signing_algorithm = excluded.signing_algorithm,
             signing_key = excluded.signing_key, updated_at = excluded.updated_at",
    )
    .bind(&template.id)
    .bind(&template.name)
    .bind(template.claims.to_string())
    .bind(template.lifetime)
    .bind(template.allowed_clock_skew)
    .bind(&template.signing_algorithm)
    .bind(&template.signing_key)
    .bind(template.created_at)
    .bind(template.updated_at)
    .execute(ex)
    .await?;
    Ok(())
}

#[tracing::instrument(skip(ex))]
pub async fn find<'e>(ex: impl Exec<'e>, id: &str) -> Result<Option<JwtTemplate>, sqlx::Error> {
    let row = sqlx::query(concat!("SELECT ", columns!(), " FROM jwt_templates WHERE id = $1"))
        .bind(id)
        .fetch_optional(ex)
        .await?;
    row.as_ref().map(JwtTemplate::from_row).transpose()
}

#[tracing::instrument(skip(ex))]
pub async fn find_by_name<'e>(ex: impl Exec<'e>, name: &str) -> Result<Option<JwtTemplate>, sqlx::Error> {
    let row = sqlx::query(concat!("SELECT ", columns!(), " FROM jwt_templates WHERE name = $1"))
        .bind(name)
        .fetch_optional(ex)
        .await?;
    row.as_ref().map(JwtTemplate::from_row).transpose()
}

#[tracing::instrument(skip(ex))]
pub async fn list<'e>(ex: impl Exec<'e>, page: &PageRequest) -> Result<Vec<JwtTemplate>, sqlx::Error> {
    let rows = sqlx::query(concat!(
        "SELECT ",
        columns!(),
        " FROM jwt_templates WHERE (created_at, id) < ($1, $2) ORDER BY created_at DESC, id DESC LIMIT $3"
    ))
    .bind(page.before.0)
    .bind(&page.before.1)
    .bind(page.limit + 1)
    .fetch_all(ex)
    .await?;
    rows.iter().map(JwtTemplate::from_row).collect()
}

#[tracing::instrument(skip(ex))]
pub async fn delete<'e>(ex: impl Exec<'e>, id: &str) -> Result<bool, sqlx::Error> {
    let result = sqlx::query("DELETE FROM jwt_templates WHERE id = $1")
        .bind(id)
        .execute(ex)
        .await?;
    Ok(result.rows_affected() == 1)
}

/// The custom session claims template (`{}` until set).
#[tracing::instrument(skip(ex))]
pub async fn session_template<'e>(ex: impl Exec<'e>) -> Result<serde_json::Value, sqlx::Error> {
    let row = sqlx::query("SELECT claims FROM session_token_template WHERE id = 1")
        .fetch_optional(ex)
        .await?;
    Ok(match row {
        Some(row) => super::json_column(row.try_get("claims")?),
        None => serde_json::json!({}),
    })
}

#[tracing::instrument(skip(ex, claims))]
pub async fn set_session_template<'e>(
    ex: impl Exec<'e>,
    claims: &serde_json::Value,
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO session_token_template (id, claims, updated_at) VALUES (1, $1, $2)
         ON CONFLICT (id) DO UPDATE SET claims = excluded.claims, updated_at = excluded.updated_at",
    )
    .bind(claims.to_string())
    .bind(now)
    .execute(ex)
    .await?;
    Ok(())
}
