//! The `events` table: the transactional outbox. Each change worth reporting writes its
//! event in the same transaction, so an event exists exactly when its change does.

use crate::ids::{IdKind, new_id};

/// Event types (the outgoing-webhooks worker delivers them).
pub const ITEM_CREATED: &str = "item.created";
pub const ITEM_UPDATED: &str = "item.updated";
pub const ITEM_DELETED: &str = "item.deleted";
pub const USER_CREATED: &str = "user.created";
pub const USER_UPDATED: &str = "user.updated";
pub const USER_DELETED: &str = "user.deleted";
pub const SESSION_CREATED: &str = "session.created";
pub const SESSION_ENDED: &str = "session.ended";
pub const SESSION_REVOKED: &str = "session.revoked";
pub const ORGANIZATION_CREATED: &str = "organization.created";
pub const ORGANIZATION_UPDATED: &str = "organization.updated";
pub const ORGANIZATION_DELETED: &str = "organization.deleted";
pub const INVITATION_CREATED: &str = "organizationInvitation.created";
pub const INVITATION_ACCEPTED: &str = "organizationInvitation.accepted";
pub const INVITATION_REVOKED: &str = "organizationInvitation.revoked";
pub const ROLE_CREATED: &str = "role.created";
pub const ROLE_UPDATED: &str = "role.updated";
pub const ROLE_DELETED: &str = "role.deleted";
pub const API_KEY_CREATED: &str = "apiKey.created";
pub const API_KEY_REVOKED: &str = "apiKey.revoked";
pub const MEMBERSHIP_CREATED: &str = "organizationMembership.created";
pub const MEMBERSHIP_UPDATED: &str = "organizationMembership.updated";
pub const MEMBERSHIP_DELETED: &str = "organizationMembership.deleted";

/// Every type an endpoint can subscribe to.
pub const ALL_TYPES: &[&str] = &[
    USER_CREATED,
    USER_UPDATED,
    USER_DELETED,
    SESSION_CREATED,
    SESSION_ENDED,
    SESSION_REVOKED,
    ORGANIZATION_CREATED,
    ORGANIZATION_UPDATED,
    ORGANIZATION_DELETED,
    MEMBERSHIP_CREATED,
    MEMBERSHIP_UPDATED,
    MEMBERSHIP_DELETED,
    INVITATION_CREATED,
    INVITATION_ACCEPTED,
    INVITATION_REVOKED,
    ROLE_CREATED,
    ROLE_UPDATED,
    ROLE_DELETED,
    API_KEY_CREATED,
    API_KEY_REVOKED,
    ITEM_CREATED,
    ITEM_UPDATED,
    ITEM_DELETED,
];

/// The NOTIFY channel that wakes the outbox workers (PostgreSQL): sent in the event's
/// transaction, so it arrives when the event is committed.
pub const OUTBOX_CHANNEL: &str = "gatehouse_outbox";

/// Records an event (and its audit entry, when it is of an audited kind) and, in the
/// same transaction, one pending delivery per endpoint
/// subscribed to its type; on PostgreSQL, when there is a delivery, a `NOTIFY` that
/// wakes the outbox workers as the transaction commits.
#[tracing::instrument(skip(conn, data))]
pub async fn record(
    conn: &mut sqlx::AnyConnection,
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
    .execute(&mut *conn)
    .await?;
    // Every event of an audited kind is also an audit entry, in the same transaction.
    if let Some((kind, target, small)) = super::audit::from_event(event_type, data) {
        super::audit::record(
            &mut *conn,
            event_type,
            Some((kind, &target)),
            organization_id,
            user_id,
            &small,
            now,
        )
        .await?;
    }
    let deliveries = super::webhooks::fan_out(&mut *conn, &id, event_type, now).await?;
    if deliveries > 0 {
        super::notify_on_commit(conn, OUTBOX_CHANNEL).await?;
    }
    Ok(id)
}
