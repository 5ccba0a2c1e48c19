//! The `audit_log` table: who did what, to what, from where, written in the transaction
//! of the action. Who and from where come from the request: the guard middleware runs
//! each request inside [`CONTEXT`] (the principal, or "backend", and the client's IP and
//! user agent); work outside a request (housekeeping) is the `system`.
//!
//! Most entries come from [`crate::db::events::record`] (every event of an audited kind
//! is also an entry); actions that are not events (a failed sign-in, a password or second
//! factor change, a ban, template and endpoint changes) call [`record`] themselves.

use serde::Serialize;
use serde_json::{Value, json};
use sqlx::Row;
use sqlx::any::AnyRow;
use utoipa::ToSchema;

use super::Exec;
use super::pagination::PageRequest;
use crate::ids::{IdKind, new_id};

/// Who is acting in a request.
#[derive(Debug, Clone)]
pub struct Principal {
    /// `user` or `api_key`.
    pub kind: &'static str,
    pub id: String,
    /// An impersonated session: the support agent (`act.sub`).
    pub impersonator: Option<String>,
}

/// What the guard knows about the request an action happens in. Kept as the request
/// gave it (an address, a header): made into text only when an entry is written, so the
/// requests that write none (most) pay nothing for it.
#[derive(Debug, Clone, Default)]
pub struct RequestContext {
    pub principal: Option<Principal>,
    /// A Backend API request (the secret key).
    pub backend: bool,
    pub ip: Option<std::net::IpAddr>,
    pub user_agent: Option<actix_web::http::header::HeaderValue>,
}

/// The longest user agent an entry keeps, in characters.
const MAX_USER_AGENT: usize = 512;

tokio::task_local! {
    /// The request being served (set by the guard around the handler). The auth
    /// extractors also read its presence as the sign that the guard is installed.
    pub static CONTEXT: RequestContext;
}

/// The actions recorded, as API.md lists them.
pub const ACTIONS: &[&str] = &[
    "user.created",
    "user.updated",
    "user.deleted",
    "user.banned",
    "user.unbanned",
    "session.created",
    "sign_in.failed",
    "session.ended",
    "session.revoked",
    "password.changed",
    "password.reset",
    "email.verified",
    "mfa.enabled",
    "mfa.disabled",
    "identity.linked",
    "identity.unlinked",
    "impersonation.started",
    "organization.updated",
    "organization.deleted",
    "organizationMembership.created",
    "organizationMembership.updated",
    "organizationMembership.deleted",
    "organizationInvitation.created",
    "organizationInvitation.accepted",
    "organizationInvitation.revoked",
    "role.created",
    "role.updated",
    "role.deleted",
    "apiKey.created",
    "apiKey.revoked",
    "jwtTemplate.created",
    "jwtTemplate.updated",
    "jwtTemplate.deleted",
    "webhookEndpoint.created",
    "webhookEndpoint.deleted",
];

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AuditActor {
    /// `user`, `api_key`, `backend` or `system`.
    #[serde(rename = "type")]
    #[schema(example = "user")]
    pub kind: String,
    pub id: Option<String>,
    /// In an impersonated session: who was acting as the user.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub impersonator: Option<String>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AuditTarget {
    #[serde(rename = "type")]
    #[schema(example = "user")]
    pub kind: String,
    pub id: String,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AuditEntry {
    #[schema(example = "audit_01jd3m5x0e8k2q9v7w4h6r1t3y")]
    pub id: String,
    #[schema(example = "session.created")]
    pub action: String,
    pub actor: AuditActor,
    pub target: Option<AuditTarget>,
    pub organization_id: Option<String>,
    pub ip_address: Option<String>,
    pub user_agent: Option<String>,
    /// Unix milliseconds.
    pub created_at: i64,
    #[schema(value_type = Object)]
    pub data: Value,
}

impl AuditEntry {
    fn from_row(row: &AnyRow) -> Result<Self, sqlx::Error> {
        let target_type: Option<String> = row.try_get("target_type")?;
        let target_id: Option<String> = row.try_get("target_id")?;
        let data: String = row.try_get("data")?;
        Ok(Self {
            id: row.try_get("id")?,
            action: row.try_get("action")?,
            actor: AuditActor {
                kind: row.try_get("actor_type")?,
                id: row.try_get("actor_id")?,
                impersonator: row.try_get("impersonator")?,
            },
            target: target_type.zip(target_id).map(|(kind, id)| AuditTarget { kind, id }),
            organization_id: row.try_get("organization_id")?,
            ip_address: row.try_get("ip_address")?,
            user_agent: row.try_get("user_agent")?,
            created_at: row.try_get("created_at")?,
            data: serde_json::from_str(&data).unwrap_or_else(|_| json!({})),
        })
    }
}

/// Records an entry. `subject_user`: the user an unauthenticated request acts as (a
/// sign-in, a sign-up), when the request has no principal yet.
#[allow(clippy::too_many_arguments)]
pub async fn record<'e>(
    ex: impl Exec<'e>,
    action: &str,
    target: Option<(&str, &str)>,
    organization_id: Option<&str>,
    subject_user: Option<&str>,
    data: &Value,
    now: i64,
) -> Result<(), sqlx::Error> {
    let context = CONTEXT.try_with(Clone::clone).ok();
    let (actor_type, actor_id, impersonator) = match &context {
        Some(RequestContext {
            principal: Some(principal),
            ..
        }) => (
            principal.kind,
            Some(principal.id.clone()),
            principal.impersonator.clone(),
        ),
        Some(RequestContext { backend: true, .. }) => ("backend", None, None),
        Some(_) => ("user", subject_user.map(str::to_owned), None),
        None => ("system", None, None),
    };
    let (ip, user_agent) = context.map(|c| (c.ip, c.user_agent)).unwrap_or_default();
    let ip = ip.map(|ip| ip.to_string());
    let user_agent = user_agent
        .as_ref()
        .and_then(|ua| ua.to_str().ok())
        .map(|ua| ua.chars().take(MAX_USER_AGENT).collect::<String>());
    sqlx::query(
        "INSERT INTO audit_log (id, action, actor_type, actor_id, impersonator, target_type, target_id, organization_id, ip_address, user_agent, data, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
    )
    .bind(new_id(IdKind::Audit))
    .bind(action)
    .bind(actor_type)
    .bind(actor_id)
    .bind(impersonator)
    .bind(target.map(|t| t.0))
    .bind(target.map(|t| t.1))
    .bind(organization_id)
    .bind(ip)
    .bind(user_agent)
    .bind(data.to_string())
    .bind(now)
    .execute(ex)
    .await?;
    Ok(())
}

/// An entry about a user, done by themselves or by whoever the request says (a password
/// change or reset, an address verified, a second factor on or off, a ban).
pub async fn record_on_user<'e>(ex: impl Exec<'e>, action: &str, user_id: &str, now: i64) -> Result<(), sqlx::Error> {
    record(
        ex,
        action,
        Some(("user", user_id)),
        None,
        Some(user_id),
        &json!({}),
        now,
    )
    .await
}

/// A failed sign-in (`sign_in.failed`): the email, never the secret; the user as target
/// when the address is an account's; `factor` says which proof failed.
pub async fn sign_in_failed<'e>(
    ex: impl Exec<'e>,
    email: &str,
    user_id: Option<&str>,
    factor: &str,
    now: i64,
) -> Result<(), sqlx::Error> {
    let data = json!({"email": email.trim().chars().take(254).collect::<String>(), "factor": factor});
    record(
        ex,
        "sign_in.failed",
        user_id.map(|id| ("user", id)),
        None,
        None,
        &data,
        now,
    )
    .await
}

/// The audit entry of an event of an audited kind: its target and a small `data`.
pub fn from_event(event_type: &str, data: &Value) -> Option<(&'static str, String, Value)> {
    let id = |field: &str| data.get(field).and_then(Value::as_str).map(str::to_owned);
    let pick = |fields: &[&str]| {
        let mut out = serde_json::Map::new();
        for field in fields {
            if let Some(value) = data.get(*field) {
                out.insert((*field).to_owned(), value.clone());
            }
        }
        Value::Object(out)
    };
    let (kind, target, small) = match event_type {
        "user.created" | "user.updated" | "user.deleted" => ("user", id("id")?, pick(&["email"])),
        "session.created" | "session.ended" | "session.revoked" => {
            ("session", id("id")?, pick(&["user_id", "client_id"]))
        }
        "organization.updated" | "organization.deleted" => ("organization", id("id")?, pick(&["name", "slug"])),
        "organizationMembership.created" | "organizationMembership.updated" | "organizationMembership.deleted" => {
            ("user", id("user_id")?, pick(&["role"]))
        }
        "organizationInvitation.created" | "organizationInvitation.accepted" | "organizationInvitation.revoked" => {
            ("organizationInvitation", id("id")?, pick(&["email", "role", "status"]))
        }
        "role.created" | "role.updated" | "role.deleted" => ("role", id("key")?, pick(&["permissions"])),
        "apiKey.created" | "apiKey.revoked" => ("apiKey", id("id")?, pick(&["name", "scopes"])),
        _ => return None,
    };
    Some((kind, target, small))
}

/// Filters of a listing.
#[derive(Debug, Default)]
pub struct Filter<'a> {
    /// Entries whose actor or target is this id.
    pub user_id: Option<&'a str>,
    pub organization_id: Option<&'a str>,
    pub action: Option<&'a str>,
}

/// One page of entries, newest first.
#[tracing::instrument(skip(ex))]
pub async fn list<'e>(
    ex: impl Exec<'e>,
    filter: &Filter<'_>,
    page: &PageRequest,
) -> Result<Vec<AuditEntry>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT id, action, actor_type, actor_id, impersonator, target_type, target_id, organization_id, ip_address, user_agent, data, created_at
         FROM audit_log
         WHERE ($1 = '' OR actor_id = $1 OR target_id = $1)
           AND ($2 = '' OR organization_id = $2)
           AND ($3 = '' OR action = $3)
           AND (created_at, id) < ($4, $5)
         ORDER BY created_at DESC, id DESC LIMIT $6",
    )
    .bind(filter.user_id.unwrap_or(""))
    .bind(filter.organization_id.unwrap_or(""))
    .bind(filter.action.unwrap_or(""))
    .bind(page.before.0)
    .bind(&page.before.1)
    .bind(page.limit + 1)
    .fetch_all(ex)
    .await?;
    rows.iter().map(AuditEntry::from_row).collect()
}

/// Deletes up to `limit` entries older than `cutoff`; how many.
#[tracing::instrument(skip(ex))]
pub async fn purge<'e>(ex: impl Exec<'e>, cutoff: i64, limit: i64) -> Result<u64, sqlx::Error> {
    let result =
        sqlx::query("DELETE FROM audit_log WHERE id IN (SELECT id FROM audit_log WHERE created_at < $1 LIMIT $2)")
            .bind(cutoff)
            .bind(limit)
            .execute(ex)
            .await?;
    Ok(result.rows_affected())
}
