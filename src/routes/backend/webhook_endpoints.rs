//! Outgoing webhook endpoints: subscribe a URL to event types, see its recent attempts.

use actix_web::{HttpResponse, delete, get, post, web};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_actix_web::service_config::ServiceConfig;

use crate::auth::secret_key::BackendKey;
use crate::clock::now_ms;
use crate::db::events::ALL_TYPES;
use crate::db::pagination::{Page, PageQuery};
use crate::db::webhooks::{self, DeliveryAttempt, WebhookEndpoint};
use crate::error::{AppError, AppResult, ErrorBody, FieldErrors};
use crate::ids::{IdKind, WebhookEndpointId, new_id};
use crate::state::AppState;
use crate::webhooks::signature::WebhookSecret;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(list_endpoints)
        .service(create_endpoint)
        .service(delete_endpoint)
        .service(list_attempts);
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateEndpoint {
    /// `https://…`; `http://localhost` and `http://127.0.0.1` only in development.
    #[schema(example = "https://example.com/webhooks/gatehouse")]
    pub url: String,
    /// Event types to receive (default: all).
    #[schema(example = json!(["item.created", "session.revoked"]))]
    pub events: Option<Vec<String>>,
    pub description: Option<String>,
}

/// The endpoint as created, with its signing secret (shown this once).
#[derive(Serialize, ToSchema)]
pub struct CreatedEndpoint {
    #[serde(flatten)]
    pub endpoint: WebhookEndpoint,
    /// `whsec_…`: verify deliveries with it (Standard Webhooks). Not shown again.
    pub secret: String,
}

/// In production only public `https` URLs: no loopback, private or link-local hosts
/// written as addresses or `localhost`. A name that resolves inside is refused when a
/// delivery connects (see [`crate::webhooks::address`]).
fn check_url(url: &str, production: bool) -> Result<(), String> {
    let (scheme, rest) = url.split_once("://").ok_or("must be an absolute http(s) URL")?;
    let host_port = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = host_port.rsplit_once('@').map_or(host_port, |(_, h)| h);
    let host = if host.starts_with('[') {
        host.split(']').next().unwrap_or_default().trim_start_matches('[')
    } else {
        host.split(':').next().unwrap_or_default()
    };
    if host.is_empty() || url.len() > 2048 || url.chars().any(char::is_whitespace) {
        return Err("must be an absolute http(s) URL".to_owned());
    }
    let local = host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(crate::webhooks::address::is_internal);
    match (scheme, production) {
        ("https", false) | ("http", false) => Ok(()),
        ("https", true) if !local => Ok(()),
        ("https", true) | ("http", true) if local => {
            Err("local and private addresses are allowed in development only".to_owned())
        }
        ("http", true) => Err("must use https in production".to_owned()),
        _ => Err("must be an http(s) URL".to_owned()),
    }
}

/// Subscribes a URL to events. Deliveries are signed like Clerk's (Standard Webhooks:
/// `webhook-id`, `webhook-timestamp`, `webhook-signature`), retried with backoff.
#[utoipa::path(
    tag = "backend",
    security(("secret_key" = [])),
    request_body = CreateEndpoint,
    responses((status = 201, body = CreatedEndpoint), (status = 401, body = ErrorBody), (status = 422, body = ErrorBody))
)]
#[post("/webhook_endpoints")]
#[tracing::instrument(skip_all)]
async fn create_endpoint(
    state: web::Data<AppState>,
    _key: BackendKey,
    body: web::Json<CreateEndpoint>,
) -> AppResult<HttpResponse> {
    let body = body.into_inner();
    let mut fields = FieldErrors::new();
    if let Err(reason) = check_url(&body.url, state.config.is_production()) {
        fields.insert("url".into(), reason);
    }
    let events = body.events.unwrap_or_default();
    if let Some(unknown) = events.iter().find(|e| !ALL_TYPES.contains(&e.as_str())) {
        fields.insert(
            "events".into(),
            format!("`{unknown}` is not an event type; known: {}", ALL_TYPES.join(", ")),
        );
    }
    if body.description.as_ref().is_some_and(|d| d.chars().count() > 200) {
        fields.insert("description".into(), "must be at most 200 characters".into());
    }
    if !fields.is_empty() {
        return Err(AppError::Validation(fields));
    }
    let secret = WebhookSecret::generate();
    let endpoint = WebhookEndpoint {
        id: new_id(IdKind::WebhookEndpoint),
        url: body.url,
        description: body.description,
        events,
        status: "active".into(),
        consecutive_failures: 0,
        created_at: now_ms(),
        secret: secret.clone(),
    };
    let mut tx = state.db.begin().await?;
    webhooks::insert_endpoint(&mut *tx, &endpoint).await?;
    let data = serde_json::json!({"url": endpoint.url});
    crate::db::audit::record(
        &mut *tx,
        "webhookEndpoint.created",
        Some(("webhookEndpoint", &endpoint.id)),
        None,
        None,
        &data,
        crate::clock::now_ms(),
    )
    .await?;
    tx.commit().await?;
    Ok(HttpResponse::Created().json(CreatedEndpoint { endpoint, secret }))
}

/// Endpoints, newest first (without their secrets).
#[utoipa::path(
    tag = "backend",
    security(("secret_key" = [])),
    params(PageQuery),
    responses((status = 200, body = Page<WebhookEndpoint>), (status = 401, body = ErrorBody), (status = 422, body = ErrorBody))
)]
#[get("/webhook_endpoints")]
async fn list_endpoints(
    state: web::Data<AppState>,
    _key: BackendKey,
    query: web::Query<PageQuery>,
) -> AppResult<web::Json<Page<WebhookEndpoint>>> {
    let page = query.parse()?;
    let rows = webhooks::list_endpoints(&state.db.pool, &page).await?;
    Ok(web::Json(Page::from_rows(rows, page.limit, |e| {
        (e.created_at, e.id.as_str())
    })))
}

/// Deletes an endpoint and its pending deliveries.
#[utoipa::path(
    tag = "backend",
    security(("secret_key" = [])),
    params(("id" = String, Path)),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody))
)]
#[delete("/webhook_endpoints/{id}")]
async fn delete_endpoint(
    state: web::Data<AppState>,
    _key: BackendKey,
    id: web::Path<WebhookEndpointId>,
) -> AppResult<HttpResponse> {
    let mut tx = state.db.begin().await?;
    if webhooks::delete_endpoint(&mut *tx, &id).await? {
        let data = serde_json::json!({});
        crate::db::audit::record(
            &mut *tx,
            "webhookEndpoint.deleted",
            Some(("webhookEndpoint", &id)),
            None,
            None,
            &data,
            crate::clock::now_ms(),
        )
        .await?;
        tx.commit().await?;
        Ok(HttpResponse::NoContent().finish())
    } else {
        Err(AppError::NotFound(format!("no webhook endpoint `{id}`")))
    }
}

/// The endpoint's recent delivery attempts, newest first.
#[utoipa::path(
    tag = "backend",
    security(("secret_key" = [])),
    params(("id" = String, Path), PageQuery),
    responses((status = 200, body = Page<DeliveryAttempt>), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody))
)]
#[get("/webhook_endpoints/{id}/attempts")]
async fn list_attempts(
    state: web::Data<AppState>,
    _key: BackendKey,
    id: web::Path<WebhookEndpointId>,
    query: web::Query<PageQuery>,
) -> AppResult<web::Json<Page<DeliveryAttempt>>> {
    let page = query.parse()?;
    if webhooks::find_endpoint(&state.db.pool, &id).await?.is_none() {
        return Err(AppError::NotFound(format!("no webhook endpoint `{id}`")));
    }
    let rows = webhooks::list_attempts(&state.db.pool, &id, &page).await?;
    Ok(web::Json(Page::from_rows(rows, page.limit, |a| {
        (a.created_at, a.id.as_str())
    })))
}

#[cfg(test)]
mod tests {
    use super::check_url;

    #[test]
    fn urls_by_environment() {
        assert!(check_url("http://localhost:9000/hook", false).is_ok());
        assert!(check_url("https://example.com/hook", true).is_ok());
        for bad in [
            "http://example.com/hook",
            "https://localhost/hook",
            "https://127.0.0.1/x",
            "https://10.0.0.5/x",
            "https://[::1]/x",
            "https://169.254.169.254/latest",
        ] {
            assert!(check_url(bad, true).is_err(), "{bad}");
        }
        for bad in [
            "ftp://example.com",
            "example.com/hook",
            "https://",
            "https://exa mple.com",
        ] {
            assert!(check_url(bad, false).is_err(), "{bad}");
        }
    }
}
