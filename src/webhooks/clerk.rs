//! Applying Clerk's events to the local tables: users, organizations, memberships and
//! sessions. One event, one transaction, together with its receipt (so a redelivery
//! changes nothing).

use serde::Deserialize;
use serde_json::Value;
use sqlx::AnyConnection;

use crate::db::sync::{self, SyncedSession, SyncedUser};

#[derive(Debug, Deserialize)]
pub struct ClerkEvent {
    #[serde(rename = "type")]
    pub event_type: String,
    pub data: Value,
}

/// Why an event that verified could not be applied. Both are 4xx: Svix retries them
/// with backoff and shows them in its dashboard, and a retry can succeed (a missing
/// user may arrive meanwhile); neither becomes a 5xx loop.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// The payload does not have the shape this event type needs (400).
    #[error("{0}")]
    Invalid(String),
    /// It refers to something not here yet, or collides with local data (409).
    #[error("{0}")]
    Conflict(String),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// What the caller must do after the commit.
#[derive(Debug, Default)]
pub struct Applied {
    /// Sessions that stopped: revoke them on every instance.
    pub stopped_sessions: Vec<String>,
    /// False for types this server ignores.
    pub handled: bool,
}

#[derive(Deserialize)]
struct EmailAddress {
    id: String,
    email_address: String,
}

#[derive(Deserialize)]
struct UserData {
    id: String,
    #[serde(default)]
    email_addresses: Vec<EmailAddress>,
    primary_email_address_id: Option<String>,
    first_name: Option<String>,
    last_name: Option<String>,
    #[serde(default)]
    public_metadata: Value,
    created_at: Option<i64>,
    updated_at: Option<i64>,
}

#[derive(Deserialize)]
struct Deleted {
    id: String,
}

#[derive(Deserialize)]
struct OrganizationData {
    id: String,
    name: String,
    slug: Option<String>,
    created_at: Option<i64>,
    updated_at: Option<i64>,
}

#[derive(Deserialize)]
struct PublicUserData {
    user_id: String,
}

#[derive(Deserialize)]
struct MembershipData {
    id: String,
    organization: OrganizationData,
    public_user_data: PublicUserData,
    role: Option<String>,
    created_at: Option<i64>,
    updated_at: Option<i64>,
}

#[derive(Deserialize)]
struct SessionData {
    id: String,
    user_id: String,
    client_id: Option<String>,
    created_at: Option<i64>,
    last_active_at: Option<i64>,
    expire_at: Option<i64>,
}

fn parse<T: for<'de> Deserialize<'de>>(event: &ClerkEvent) -> Result<T, ApplyError> {
    serde_json::from_value(event.data.clone())
        .map_err(|e| ApplyError::Invalid(format!("`{}` data does not fit: {e}", event.event_type)))
}

fn unique_conflict(what: &'static str) -> impl FnOnce(sqlx::Error) -> ApplyError {
    move |e| match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => {
            ApplyError::Conflict(format!("{what} collides with a local one"))
        }
        _ => ApplyError::Database(e),
    }
}

pub async fn apply(conn: &mut AnyConnection, event: &ClerkEvent, now: i64) -> Result<Applied, ApplyError> {
    let mut applied = Applied {
        handled: true,
        ..Applied::default()
    };
    match event.event_type.as_str() {
        "user.created" | "user.updated" => {
            let user: UserData = parse(event)?;
            let email = user
                .primary_email_address_id
                .as_ref()
                .and_then(|id| user.email_addresses.iter().find(|e| &e.id == id))
                .or(user.email_addresses.first())
                .map(|e| e.email_address.clone())
                // Clerk users may have no email (phone, username): keep the row unique anyway.
                .unwrap_or_else(|| format!("{}@users.clerk.invalid", user.id));
            let metadata = if user.public_metadata.is_object() {
                user.public_metadata.clone()
            } else {
                serde_json::json!({})
            };
            let synced = SyncedUser {
                id: &user.id,
                email: &email,
                first_name: user.first_name.as_deref(),
                last_name: user.last_name.as_deref(),
                public_metadata: &metadata,
                created_at: user.created_at.unwrap_or(now),
                updated_at: user.updated_at.unwrap_or(now),
            };
            sync::upsert_user(conn, &synced)
                .await
                .map_err(unique_conflict("the user's email"))?;
        }
        "user.deleted" => {
            let deleted: Deleted = parse(event)?;
            applied.stopped_sessions = sync::delete_user(conn, &deleted.id).await?;
        }
        "organization.created" | "organization.updated" => {
            let org: OrganizationData = parse(event)?;
            upsert_organization(conn, &org, now).await?;
        }
        "organization.deleted" => {
            let deleted: Deleted = parse(event)?;
            sync::delete_organization(conn, &deleted.id).await?;
        }
        "organizationMembership.created" | "organizationMembership.updated" => {
            let membership: MembershipData = parse(event)?;
            let user_id = &membership.public_user_data.user_id;
            if !sync::user_exists(conn, user_id).await? {
                return Err(ApplyError::Conflict(format!("user `{user_id}` is not known here yet")));
            }
            upsert_organization(conn, &membership.organization, now).await?;
            let role = membership.role.as_deref().unwrap_or("org:member");
            sync::ensure_role(conn, role, now).await?;
            sync::upsert_membership(
                conn,
                &membership.id,
                &membership.organization.id,
                user_id,
                role,
                membership.created_at.unwrap_or(now),
                membership.updated_at.unwrap_or(now),
            )
            .await?;
        }
        "organizationMembership.deleted" => {
            let membership: MembershipData = parse(event)?;
            sync::delete_membership(conn, &membership.organization.id, &membership.public_user_data.user_id).await?;
        }
        "session.created" => {
            let session: SessionData = parse(event)?;
            if !sync::user_exists(conn, &session.user_id).await? {
                return Err(ApplyError::Conflict(format!(
                    "user `{}` is not known here yet",
                    session.user_id
                )));
            }
            let client_id = session
                .client_id
                .clone()
                .unwrap_or_else(|| format!("client_{}", &session.id));
            let synced = SyncedSession {
                id: &session.id,
                client_id: &client_id,
                user_id: &session.user_id,
                status: "active",
                created_at: session.created_at.unwrap_or(now),
                last_active_at: session.last_active_at.unwrap_or(now),
                expire_at: session.expire_at.unwrap_or(now + 7 * 24 * 3600 * 1000),
            };
            sync::upsert_session(conn, &synced, now).await?;
        }
        "session.ended" | "session.removed" | "session.revoked" => {
            let session: SessionData = parse(event)?;
            let status = if event.event_type == "session.revoked" {
                "revoked"
            } else {
                "ended"
            };
            sync::set_session_status(conn, &session.id, status, now).await?;
            applied.stopped_sessions.push(session.id);
        }
        _ => applied.handled = false,
    }
    Ok(applied)
}

async fn upsert_organization(conn: &mut AnyConnection, org: &OrganizationData, now: i64) -> Result<(), ApplyError> {
    let slug = org.slug.clone().unwrap_or_else(|| org.id.to_lowercase());
    sync::upsert_organization(
        conn,
        &org.id,
        &org.name,
        &slug,
        org.created_at.unwrap_or(now),
        org.updated_at.unwrap_or(now),
    )
    .await
    .map_err(unique_conflict("the organization's slug"))
}
