//! The `invitations` table: who was invited to which organization with which role.

use serde::Serialize;
use sqlx::Row;
use sqlx::any::AnyRow;
use utoipa::ToSchema;

use super::Exec;
use super::pagination::PageRequest;
use crate::ids::{IdKind, new_id};

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Invitation {
    #[schema(example = "orginv_01jd3m5x0e8k2q9v7w4h6r1t3y")]
    pub id: String,
    pub organization_id: String,
    pub email: String,
    #[schema(example = "org:member")]
    pub role: String,
    /// `pending`, `accepted`, `revoked` or `expired`.
    #[schema(example = "pending")]
    pub status: String,
    /// Unix milliseconds.
    pub created_at: i64,
    /// Unix milliseconds.
    pub expire_at: i64,
}

impl Invitation {
    fn from_row(row: &AnyRow, now: i64) -> Result<Self, sqlx::Error> {
        let status: String = row.try_get("status")?;
        let expire_at: i64 = row.try_get("expires_at")?;
        Ok(Self {
            id: row.try_get("id")?,
            organization_id: row.try_get("organization_id")?,
            email: row.try_get("email")?,
            role: row.try_get("role")?,
            status: if status == "pending" && expire_at <= now {
                "expired".to_owned()
            } else {
                status
            },
            created_at: row.try_get("created_at")?,
            expire_at,
        })
    }

    pub fn is_pending(&self) -> bool {
        self.status == "pending"
    }
}

macro_rules! columns {
    () => {
        "id, organization_id, email, role, status, expires_at, created_at"
    };
}

pub struct NewInvitation<'a> {
    pub organization_id: &'a str,
    pub email: &'a str,
    pub role: &'a str,
    pub inviter_id: &'a str,
    pub expires_at: i64,
}

#[tracing::instrument(skip_all)]
pub async fn insert<'e>(ex: impl Exec<'e>, new: &NewInvitation<'_>, now: i64) -> Result<Invitation, sqlx::Error> {
    let invitation = Invitation {
        id: new_id(IdKind::Invitation),
        organization_id: new.organization_id.to_owned(),
        email: new.email.trim().to_owned(),
        role: new.role.to_owned(),
        status: "pending".to_owned(),
        created_at: now,
        expire_at: new.expires_at,
    };
    sqlx::query(
        "INSERT INTO invitations (id, organization_id, email, email_normalized, role, status, inviter_id, accepted_by, expires_at, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, 'pending', $6, NULL, $7, $8, $8)",
    )
    .bind(&invitation.id)
    .bind(&invitation.organization_id)
    .bind(&invitation.email)
    .bind(super::users::normalize_email(&invitation.email))
    .bind(&invitation.role)
    .bind(new.inviter_id)
    .bind(invitation.expire_at)
    .bind(now)
    .execute(ex)
    .await?;
    Ok(invitation)
}

#[tracing::instrument(skip(ex))]
pub async fn find<'e>(ex: impl Exec<'e>, id: &str, now: i64) -> Result<Option<Invitation>, sqlx::Error> {
    let row = sqlx::query(concat!("SELECT ", columns!(), " FROM invitations WHERE id = $1"))
        .bind(id)
        .fetch_optional(ex)
        .await?;
    row.map(|row| Invitation::from_row(&row, now)).transpose()
}

/// Whether the organization has a live pending invitation for this address.
#[tracing::instrument(skip(ex, email))]
pub async fn pending_exists<'e>(
    ex: impl Exec<'e>,
    organization_id: &str,
    email: &str,
    now: i64,
) -> Result<bool, sqlx::Error> {
    let row = sqlx::query(
        "SELECT 1 FROM invitations WHERE organization_id = $1 AND email_normalized = $2 AND status = 'pending' AND expires_at > $3",
    )
    .bind(organization_id)
    .bind(super::users::normalize_email(email))
    .bind(now)
    .fetch_optional(ex)
    .await?;
    Ok(row.is_some())
}

/// One page of an organization's invitations, newest first, optionally of one status.
#[tracing::instrument(skip(ex))]
pub async fn list<'e>(
    ex: impl Exec<'e>,
    organization_id: &str,
    status: Option<&str>,
    page: &PageRequest,
    now: i64,
) -> Result<Vec<Invitation>, sqlx::Error> {
    // The status as it reads: a pending invitation past its expiry is `expired`.
    let rows = sqlx::query(concat!(
        "SELECT ",
        columns!(),
        " FROM invitations WHERE organization_id = $1 AND (created_at, id) < ($2, $3)
           AND ($4 = '' OR (CASE WHEN status = 'pending' AND expires_at <= $5 THEN 'expired' ELSE status END) = $4)
         ORDER BY created_at DESC, id DESC LIMIT $6"
    ))
    .bind(organization_id)
    .bind(page.before.0)
    .bind(&page.before.1)
    .bind(status.unwrap_or(""))
    .bind(now)
    .bind(page.limit + 1)
    .fetch_all(ex)
    .await?;
    rows.iter().map(|row| Invitation::from_row(row, now)).collect()
}

/// Live pending invitations to an address, newest first, with their organization.
#[tracing::instrument(skip(ex, email))]
pub async fn pending_for_email<'e>(
    ex: impl Exec<'e>,
    email: &str,
    now: i64,
) -> Result<Vec<(Invitation, super::organizations::Organization)>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT i.id, i.organization_id, i.email, i.role, i.status, i.expires_at, i.created_at,
                o.name AS org_name, o.slug AS org_slug, o.created_at AS org_created_at
         FROM invitations i JOIN organizations o ON o.id = i.organization_id
         WHERE i.email_normalized = $1 AND i.status = 'pending' AND i.expires_at > $2
         ORDER BY i.created_at DESC, i.id DESC LIMIT 100",
    )
    .bind(super::users::normalize_email(email))
    .bind(now)
    .fetch_all(ex)
    .await?;
    rows.iter()
        .map(|row| {
            let invitation = Invitation::from_row(row, now)?;
            let org = super::organizations::Organization {
                id: invitation.organization_id.clone(),
                name: row.try_get("org_name")?,
                slug: row.try_get("org_slug")?,
                created_at: row.try_get("org_created_at")?,
            };
            Ok((invitation, org))
        })
        .collect()
}

/// Moves a live pending invitation to `accepted` (once: of two racing accepts, one wins).
#[tracing::instrument(skip(ex))]
pub async fn accept<'e>(ex: impl Exec<'e>, id: &str, user_id: &str, now: i64) -> Result<bool, sqlx::Error> {
    let result = sqlx::query(
        "UPDATE invitations SET status = 'accepted', accepted_by = $1, updated_at = $2
         WHERE id = $3 AND status = 'pending' AND expires_at > $2",
    )
    .bind(user_id)
    .bind(now)
    .bind(id)
    .execute(ex)
    .await?;
    Ok(result.rows_affected() == 1)
}

/// Moves a live pending invitation to `revoked`.
#[tracing::instrument(skip(ex))]
pub async fn revoke<'e>(ex: impl Exec<'e>, organization_id: &str, id: &str, now: i64) -> Result<bool, sqlx::Error> {
    let result = sqlx::query(
        "UPDATE invitations SET status = 'revoked', updated_at = $1
         WHERE id = $2 AND organization_id = $3 AND status = 'pending' AND expires_at > $1",
    )
    .bind(now)
    .bind(id)
    .bind(organization_id)
    .execute(ex)
    .await?;
    Ok(result.rows_affected() == 1)
}

/// Whether live pending invitations use a role.
#[tracing::instrument(skip(ex))]
pub async fn role_in_use<'e>(ex: impl Exec<'e>, role: &str, now: i64) -> Result<bool, sqlx::Error> {
    let row =
        sqlx::query("SELECT 1 FROM invitations WHERE role = $1 AND status = 'pending' AND expires_at > $2 LIMIT 1")
            .bind(role)
            .bind(now)
            .fetch_optional(ex)
            .await?;
    Ok(row.is_some())
}
