//! The `items` table: data owned by an organization, or by one user personally.
//! Every query takes the [`Scope`]; there is no unscoped item query.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use sqlx::any::AnyRow;
use sqlx::{AssertSqlSafe, Row};
use utoipa::ToSchema;

use super::Exec;
use super::pagination::PageRequest;
use crate::ids::{IdKind, new_id};

/// Whose items a request may see: the active organization's, or the caller's own
/// personal ones. It comes from the session, never from the request body or query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    Organization(String),
    Personal { owner_id: String },
}

impl Scope {
    /// `(organization id or '', owner id or '')`: the two values every by-id query binds.
    /// `COALESCE(organization_id, '') = $org AND (organization_id IS NOT NULL OR owner_id = $owner)`
    /// then matches exactly the scope's rows, with no NULL parameter for the drivers to type.
    fn binds(&self) -> (&str, &str) {
        match self {
            Self::Organization(org) => (org, ""),
            Self::Personal { owner_id } => ("", owner_id),
        }
    }

    pub fn organization_id(&self) -> Option<&str> {
        match self {
            Self::Organization(org) => Some(org),
            Self::Personal { .. } => None,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Item {
    #[schema(example = "item_01jd3m5x0e8k2q9v7w4h6r1t3y")]
    pub id: String,
    /// `null` for personal items.
    pub organization_id: Option<String>,
    pub owner_id: String,
    pub name: String,
    /// A JSON object.
    // Kept as the stored text (validated when written), so a page is served without
    // parsing and re-serializing every item's data.
    #[schema(value_type = Object)]
    pub data: Box<RawValue>,
    /// Starts at 1 and grows by one with each update; the `ETag`.
    pub version: i64,
    /// Unix milliseconds.
    pub created_at: i64,
    /// Unix milliseconds.
    pub updated_at: i64,
}

impl Item {
    fn from_row(row: &AnyRow) -> Result<Self, sqlx::Error> {
        Ok(Self {
            id: row.try_get("id")?,
            organization_id: row.try_get("organization_id")?,
            owner_id: row.try_get("owner_id")?,
            name: row.try_get("name")?,
            data: raw_object(row.try_get("data")?),
            version: row.try_get("version")?,
            created_at: row.try_get("created_at")?,
            updated_at: row.try_get("updated_at")?,
        })
    }
}

/// A stored `data` column as raw JSON (checked to be well-formed); anything but a JSON
/// object reads as `{}`, as an empty or broken column does with [`super::json_column`].
fn raw_object(text: Option<String>) -> Box<RawValue> {
    text.filter(|t| t.trim_start().starts_with('{'))
        .and_then(|t| RawValue::from_string(t).ok())
        .unwrap_or_else(empty_object)
}

fn empty_object() -> Box<RawValue> {
    RawValue::from_string("{}".to_owned()).expect("`{}` is JSON")
}

macro_rules! columns {
    () => {
        "id, organization_id, owner_id, name, data, version, created_at, updated_at"
    };
}
macro_rules! in_scope {
    () => {
        "COALESCE(organization_id, '') = $2 AND (organization_id IS NOT NULL OR owner_id = $3)"
    };
}

#[tracing::instrument(skip(ex, data))]
pub async fn insert<'e>(
    ex: impl Exec<'e>,
    scope: &Scope,
    owner_id: &str,
    name: &str,
    data: &serde_json::Value,
    now: i64,
) -> Result<Item, sqlx::Error> {
    let text = data.to_string();
    let item = Item {
        id: new_id(IdKind::Item),
        organization_id: scope.organization_id().map(str::to_owned),
        owner_id: owner_id.to_owned(),
        name: name.to_owned(),
        data: RawValue::from_string(text.clone()).map_err(|e| sqlx::Error::Encode(e.into()))?,
        version: 1,
        created_at: now,
        updated_at: now,
    };
    sqlx::query(
        "INSERT INTO items (id, organization_id, owner_id, name, data, version, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, 1, $6, $6)",
    )
    .bind(&item.id)
    .bind(&item.organization_id)
    .bind(&item.owner_id)
    .bind(&item.name)
    .bind(text)
    .bind(now)
    .execute(ex)
    .await?;
    Ok(item)
}

#[tracing::instrument(skip(ex))]
pub async fn find<'e>(ex: impl Exec<'e>, scope: &Scope, id: &str) -> Result<Option<Item>, sqlx::Error> {
    let (org, owner) = scope.binds();
    let row = sqlx::query(concat!(
        "SELECT ",
        columns!(),
        " FROM items WHERE id = $1 AND ",
        in_scope!()
    ))
    .bind(id)
    .bind(org)
    .bind(owner)
    .fetch_optional(ex)
    .await?;
    row.as_ref().map(Item::from_row).transpose()
}

/// How many rows a page query fetches (one more than the page, to tell whether another
/// follows), written into the SQL as a literal rather than bound. With `LIMIT $n`
/// PostgreSQL's generic plan must guess the limit (10% of the rows), which in an
/// organization of a million items looks far costlier than a plan for the actual value;
/// so it re-plans every execution of the prepared statement, which cost more CPU than
/// running it (`scripts/bench-items`). With a literal the generic plan is cached after
/// five executions. The value is an integer from 2 to 101: one statement per page size.
fn fetch_count(page: &PageRequest) -> i64 {
    page.limit.clamp(1, super::pagination::MAX_LIMIT) + 1
}

/// A member's role and its permissions, read beside a page of their organization's items.
#[derive(Debug, Clone)]
pub struct MemberPage {
    pub role: String,
    pub permissions: Vec<String>,
    pub items: Vec<Item>,
}

/// One page of an organization's items together with the caller's membership, in one
/// round trip: `None` when the caller is not a member (and then no item is read). The
/// caller decides whether the role grants reading; the page is only read for members.
#[tracing::instrument(skip(ex))]
pub async fn list_for_member<'e>(
    ex: impl Exec<'e>,
    organization_id: &str,
    user_id: &str,
    page: &PageRequest,
) -> Result<Option<MemberPage>, sqlx::Error> {
    // The membership row is the one with a role; item rows have none. The items'
    // organization is the one asked for, so it is not read back.
    let rows = sqlx::query(AssertSqlSafe(format!(
        "SELECT m.role AS role, r.permissions AS permissions,
                CAST(NULL AS TEXT) AS id, CAST(NULL AS TEXT) AS owner_id, CAST(NULL AS TEXT) AS name,
                CAST(NULL AS TEXT) AS data, CAST(NULL AS BIGINT) AS version,
                CAST(NULL AS BIGINT) AS created_at, CAST(NULL AS BIGINT) AS updated_at
         FROM memberships m JOIN roles r ON r.id = m.role
         WHERE m.organization_id = $1 AND m.user_id = $2
         UNION ALL
         SELECT NULL, NULL, page.* FROM (
             SELECT id, owner_id, name, data, version, created_at, updated_at FROM items
             WHERE organization_id = $1 AND (created_at, id) < ($3, $4)
               AND EXISTS (SELECT 1 FROM memberships WHERE organization_id = $1 AND user_id = $2)
             ORDER BY created_at DESC, id DESC LIMIT {fetch}
         ) AS page",
        fetch = fetch_count(page)
    )))
    .bind(organization_id)
    .bind(user_id)
    .bind(page.before.0)
    .bind(&page.before.1)
    .fetch_all(ex)
    .await?;
    let mut member = None;
    let mut items = Vec::with_capacity(rows.len());
    for row in &rows {
        // By position: 0 role, 1 permissions, 2 id, 3 owner_id, 4 name, 5 data, 6 version,
        // 7 created_at, 8 updated_at.
        if let Some(role) = row.try_get::<Option<String>, _>(0)? {
            member = Some((role, super::roles::parse_permissions(row.try_get(1)?)));
        } else {
            items.push(Item {
                id: row.try_get(2)?,
                organization_id: Some(organization_id.to_owned()),
                owner_id: row.try_get(3)?,
                name: row.try_get(4)?,
                data: raw_object(row.try_get(5)?),
                version: row.try_get(6)?,
                created_at: row.try_get(7)?,
                updated_at: row.try_get(8)?,
            });
        }
    }
    // UNION ALL promises no order between or within its branches' rows.
    items.sort_by(|a, b| (b.created_at, &b.id).cmp(&(a.created_at, &a.id)));
    Ok(member.map(|(role, permissions)| MemberPage {
        role,
        permissions,
        items,
    }))
}

/// One page of the scope's items, newest first (each scope has an index serving it).
#[tracing::instrument(skip(ex))]
pub async fn list<'e>(ex: impl Exec<'e>, scope: &Scope, page: &PageRequest) -> Result<Vec<Item>, sqlx::Error> {
    let (filter, key) = match scope {
        Scope::Organization(org) => ("organization_id = $1", org),
        Scope::Personal { owner_id } => ("organization_id IS NULL AND owner_id = $1", owner_id),
    };
    let sql = format!(
        concat!(
            "SELECT ",
            columns!(),
            " FROM items WHERE {filter} AND (created_at, id) < ($2, $3) ORDER BY created_at DESC, id DESC LIMIT {fetch}"
        ),
        filter = filter,
        fetch = fetch_count(page)
    );
    let rows = sqlx::query(AssertSqlSafe(sql))
        .bind(key)
        .bind(page.before.0)
        .bind(&page.before.1)
        .fetch_all(ex)
        .await?;
    rows.iter().map(Item::from_row).collect()
}

/// What an update found.
#[derive(Debug)]
pub enum UpdateOutcome {
    Updated(Item),
    NotFound,
    /// The item exists but its version is not the expected one; nothing changed.
    VersionMismatch {
        current: i64,
    },
}

/// Applies the given changes and bumps `version`, only if the item is in scope and
/// (when `expected_version` is given) still at that version: one conditional UPDATE,
/// so of two racing writers with the same version exactly one wins.
#[tracing::instrument(skip(conn, data))]
pub async fn update(
    conn: &mut sqlx::AnyConnection,
    scope: &Scope,
    id: &str,
    name: Option<&str>,
    data: Option<&serde_json::Value>,
    expected_version: Option<i64>,
    now: i64,
) -> Result<UpdateOutcome, sqlx::Error> {
    let (org, owner) = scope.binds();
    let row = sqlx::query(concat!(
        "UPDATE items SET name = COALESCE($4, name), data = COALESCE($5, data), version = version + 1, updated_at = $6
         WHERE id = $1 AND ",
        in_scope!(),
        " AND ($7 < 0 OR version = $7) RETURNING ",
        columns!()
    ))
    .bind(id)
    .bind(org)
    .bind(owner)
    .bind(name)
    .bind(data.map(|d| d.to_string()))
    .bind(now)
    .bind(expected_version.unwrap_or(-1))
    .fetch_optional(&mut *conn)
    .await?;
    if let Some(row) = row {
        return Ok(UpdateOutcome::Updated(Item::from_row(&row)?));
    }
    Ok(match find(&mut *conn, scope, id).await? {
        Some(item) => UpdateOutcome::VersionMismatch { current: item.version },
        None => UpdateOutcome::NotFound,
    })
}

/// Deletes an item in scope; returns it as it was.
#[tracing::instrument(skip(ex))]
pub async fn delete<'e>(ex: impl Exec<'e>, scope: &Scope, id: &str) -> Result<Option<Item>, sqlx::Error> {
    let (org, owner) = scope.binds();
    let row = sqlx::query(concat!(
        "DELETE FROM items WHERE id = $1 AND ",
        in_scope!(),
        " RETURNING ",
        columns!()
    ))
    .bind(id)
    .bind(org)
    .bind(owner)
    .fetch_optional(ex)
    .await?;
    row.as_ref().map(Item::from_row).transpose()
}

/// Deletes a user's personal items (their account is going; organization rows stay).
#[tracing::instrument(skip(ex))]
pub async fn delete_personal<'e>(ex: impl Exec<'e>, owner_id: &str) -> Result<u64, sqlx::Error> {
    let result = sqlx::query("DELETE FROM items WHERE organization_id IS NULL AND owner_id = $1")
        .bind(owner_id)
        .execute(ex)
        .await?;
    Ok(result.rows_affected())
}
