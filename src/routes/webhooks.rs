//! `POST /api/webhooks/clerk`: Clerk's events, verified over the raw body before any
//! parsing, applied once per message id.

use actix_web::{HttpRequest, HttpResponse, post, web};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_actix_web::service_config::ServiceConfig;

use crate::clock::{now_ms, now_secs};
use crate::db::sync;
use crate::error::{AppError, AppResult, ErrorBody};
use crate::state::AppState;
use crate::webhooks::clerk::{ApplyError, ClerkEvent, apply};
use crate::webhooks::signature::WebhookSecret;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(clerk_webhook);
}

/// Clerk's payloads are small; anything larger is refused before verification.
pub const MAX_WEBHOOK_BYTES: usize = 256 * 1024;

#[derive(Serialize, ToSchema)]
pub struct WebhookReceipt {
    /// False for a redelivery (nothing changed) and for types this server ignores.
    pub applied: bool,
}

/// Receives Clerk's webhooks (Svix-signed) and keeps users, organizations, memberships
/// and sessions in sync. A redelivered `svix-id` answers 200 and changes nothing; unknown
/// types answer 200 and are ignored. A verified payload that cannot be applied is 400
/// (malformed) or 409 (refers to something not here yet): Svix retries both with backoff.
#[utoipa::path(
    tag = "webhooks",
    request_body(content = Object, description = "A Clerk event: `{type, data, …}`"),
    params(
        ("svix-id" = String, Header), ("svix-timestamp" = String, Header),
        ("svix-signature" = String, Header, description = "Space-separated `v1,<base64>`; any one valid passes"),
    ),
    responses(
        (status = 200, body = WebhookReceipt),
        (status = 400, description = "`invalid_signature`, or a payload of the wrong shape", body = ErrorBody),
        (status = 409, description = "Refers to a user not synced yet, or collides with local data", body = ErrorBody),
        (status = 413, body = ErrorBody),
        (status = 503, description = "CLERK_WEBHOOK_SIGNING_SECRET is not set", body = ErrorBody),
    )
)]
#[post("/webhooks/clerk")]
#[tracing::instrument(skip_all)]
async fn clerk_webhook(state: web::Data<AppState>, req: HttpRequest, payload: web::Payload) -> AppResult<HttpResponse> {
    let secret = state
        .config
        .clerk
        .webhook_signing_secret
        .as_deref()
        .ok_or_else(|| AppError::ServiceUnavailable("CLERK_WEBHOOK_SIGNING_SECRET is not set".to_owned()))?;
    let secret = WebhookSecret::parse(secret).map_err(|e| AppError::internal(e.to_string()))?;
    let body = payload
        .to_bytes_limited(MAX_WEBHOOK_BYTES)
        .await
        .map_err(|_| AppError::PayloadTooLarge(format!("webhook bodies are at most {MAX_WEBHOOK_BYTES} bytes")))?
        .map_err(|e| AppError::BadRequest(format!("could not read the body: {e}")))?;
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    };
    let (id, timestamp, signatures) = (header("svix-id"), header("svix-timestamp"), header("svix-signature"));
    if id.is_empty() || timestamp.is_empty() || signatures.is_empty() {
        return Err(AppError::InvalidSignature(
            "svix-id, svix-timestamp and svix-signature are required".to_owned(),
        ));
    }
    secret
        .verify(id, timestamp, signatures, &body, now_secs())
        .map_err(|e| AppError::InvalidSignature(e.to_string()))?;

    let event: ClerkEvent = serde_json::from_slice(&body)
        .map_err(|e| AppError::BadRequest(format!("the event is not `{{type, data}}` JSON: {e}")))?;
    let now = now_ms();
    let mut tx = state.db.begin().await?;
    if !sync::record_receipt(&mut tx, id, &event.event_type, now).await? {
        tracing::info!(svix_id = id, event_type = %event.event_type, "redelivered webhook ignored");
        return Ok(HttpResponse::Ok().json(WebhookReceipt { applied: false }));
    }
    let applied = match apply(&mut tx, &event, now).await {
        Ok(applied) => applied,
        Err(ApplyError::Invalid(message)) => return Err(AppError::BadRequest(message)),
        Err(ApplyError::Conflict(message)) => return Err(AppError::Conflict(message)),
        Err(ApplyError::Database(e)) => return Err(e.into()),
    };
    tx.commit().await?;
    if !applied.handled {
        tracing::info!(event_type = %event.event_type, "ignored a Clerk event type this server does not handle");
    }
    state.revocations.stopped(&state.db, &applied.stopped_sessions).await;
    Ok(HttpResponse::Ok().json(WebhookReceipt {
        applied: applied.handled,
    }))
}
