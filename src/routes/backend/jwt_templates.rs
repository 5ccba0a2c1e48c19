//! JWT templates and the session token template.

use actix_web::{HttpResponse, delete, get, patch, post, put, web};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_actix_web::service_config::ServiceConfig;

use crate::auth::secret_key::BackendKey;
use crate::auth::shortcodes;
use crate::auth::template_tokens::{MAX_SESSION_CLAIMS_BYTES, SESSION_RESERVED, TEMPLATE_RESERVED};
use crate::clock::now_ms;
use crate::db::jwt_templates::{self, JwtTemplate};
use crate::db::pagination::{Page, PageQuery};
use crate::error::{AppError, AppResult, ErrorBody, FieldErrors, ResultExt};
use crate::ids::{IdKind, JwtTemplateId, new_id};
use crate::state::AppState;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(list_templates)
        .service(create_template)
        .service(get_template)
        .service(update_template)
        .service(delete_template)
        .service(get_session_template)
        .service(put_session_template);
}

const LIFETIME: std::ops::RangeInclusive<i64> = 30..=315_360_000;
const CLOCK_SKEW: std::ops::RangeInclusive<i64> = 0..=300;
/// HS256 keys shorter than this are refused (RFC 7518 §3.2: at least the hash size).
const MIN_HS256_KEY_BYTES: usize = 32;

/// A new template, or (on PATCH) the fields to change.
#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct TemplateInput {
    /// Unique; used in token URLs. Letters, digits, `-` and `_`, up to 64.
    #[schema(example = "supabase")]
    pub name: Option<String>,
    /// Claims with `{{shortcodes}}`.
    #[schema(value_type = Option<Object>, example = json!({"aud": "authenticated", "role": "authenticated", "email": "{{user.primary_email_address}}"}))]
    pub claims: Option<serde_json::Value>,
    /// Seconds, 30 to 315360000 (default 60).
    pub lifetime: Option<i64>,
    /// Seconds, 0 to 300 (default 5).
    pub allowed_clock_skew: Option<i64>,
    /// `RS256` (default) or `HS256` (only with a custom signing key).
    #[schema(example = "HS256")]
    pub signing_algorithm: Option<String>,
    /// `false` (default): signed RS256 with the instance's keys (published in JWKS).
    /// `true`: signed with `signing_key`. Sending a `signing_key` implies `true`.
    pub custom_signing_key: Option<bool>,
    /// With `custom_signing_key`: for HS256 a shared secret of at least 32 bytes (e.g. a
    /// Supabase project's legacy JWT secret); for RS256 an RSA private key in PEM whose
    /// public half the receiving service holds (tokens carry its RFC 7638 thumbprint as
    /// `kid`). Never returned.
    pub signing_key: Option<String>,
}

/// Applies `input` to `template`, collecting every problem.
fn apply(template: &mut JwtTemplate, input: TemplateInput) -> AppResult<()> {
    let mut fields = FieldErrors::new();
    if let Some(name) = input.name {
        let valid = !name.is_empty()
            && name.len() <= 64
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if valid {
            template.name = name;
        } else {
            fields.insert("name".into(), "must be 1 to 64 letters, digits, `-` or `_`".into());
        }
    }
    if let Some(claims) = input.claims {
        match shortcodes::validate(&claims, TEMPLATE_RESERVED) {
            Ok(()) => template.claims = claims,
            Err(reason) => {
                fields.insert("claims".into(), reason);
            }
        }
    }
    if let Some(lifetime) = input.lifetime {
        if LIFETIME.contains(&lifetime) {
            template.lifetime = lifetime;
        } else {
            fields.insert("lifetime".into(), "must be 30 to 315360000 seconds".into());
        }
    }
    if let Some(skew) = input.allowed_clock_skew {
        if CLOCK_SKEW.contains(&skew) {
            template.allowed_clock_skew = skew;
        } else {
            fields.insert("allowed_clock_skew".into(), "must be 0 to 300 seconds".into());
        }
    }
    let algorithm_changed = match input.signing_algorithm {
        Some(algorithm) if algorithm == "RS256" || algorithm == "HS256" => {
            let changed = algorithm != template.signing_algorithm;
            template.signing_algorithm = algorithm;
            changed
        }
        Some(_) => {
            fields.insert("signing_algorithm".into(), "must be RS256 or HS256".into());
            false
        }
        None => false,
    };
    let custom = input
        .custom_signing_key
        .unwrap_or(input.signing_key.is_some() || (template.custom_signing_key && !algorithm_changed));
    if !custom {
        if input.signing_key.is_some() {
            fields.insert(
                "signing_key".into(),
                "is only used with custom_signing_key: true".into(),
            );
        } else if template.signing_algorithm == "HS256" && input.custom_signing_key == Some(false) {
            fields.insert(
                "custom_signing_key".into(),
                "must be true with HS256: the instance's keys are RS256".into(),
            );
        } else if template.signing_algorithm == "HS256" {
            fields.insert(
                "signing_key".into(),
                "is required with HS256 (a custom signing key)".into(),
            );
        }
        template.signing_key = None;
    } else {
        match input.signing_key {
            Some(key) => match check_signing_key(&template.signing_algorithm, &key) {
                Ok(()) => template.signing_key = Some(key),
                Err(reason) => {
                    fields.insert("signing_key".into(), reason);
                }
            },
            // The stored key was made for the other algorithm.
            None if algorithm_changed => template.signing_key = None,
            None => {}
        }
        if template.signing_key.is_none() && !fields.contains_key("signing_key") {
            fields.insert("signing_key".into(), "is required with custom_signing_key: true".into());
        }
    }
    template.custom_signing_key = custom;
    if fields.is_empty() {
        Ok(())
    } else {
        Err(AppError::Validation(fields))
    }
}

/// An HS256 secret long enough, or an RSA private key in PEM for RS256.
fn check_signing_key(algorithm: &str, key: &str) -> Result<(), String> {
    match algorithm {
        "HS256" if key.len() < MIN_HS256_KEY_BYTES => {
            Err(format!("must be at least {MIN_HS256_KEY_BYTES} bytes for HS256"))
        }
        "HS256" => Ok(()),
        _ => crate::auth::keys::custom_rsa_key(key)
            .map(|_| ())
            .map_err(|_| "must be an RSA private key in PEM (`-----BEGIN PRIVATE KEY-----`) for RS256".to_owned()),
    }
}

async fn find(state: &AppState, id: &JwtTemplateId) -> AppResult<JwtTemplate> {
    jwt_templates::find(&state.db.pool, id)
        .await?
        .ok_or_else(|| AppError::NotFound(format!("no JWT template `{id}`")))
}

/// JWT templates, newest first.
#[utoipa::path(
    tag = "backend",
    security(("secret_key" = [])),
    params(PageQuery),
    responses((status = 200, body = Page<JwtTemplate>), (status = 401, body = ErrorBody), (status = 422, body = ErrorBody))
)]
#[get("/jwt_templates")]
async fn list_templates(
    state: web::Data<AppState>,
    _key: BackendKey,
    query: web::Query<PageQuery>,
) -> AppResult<web::Json<Page<JwtTemplate>>> {
    let page = query.parse()?;
    let rows = jwt_templates::list(&state.db.pool, &page).await?;
    Ok(web::Json(Page::from_rows(rows, page.limit, |t| {
        (t.created_at, t.id.as_str())
    })))
}

/// Creates a JWT template. Invalid claims (bad shortcode syntax, reserved claims) are
/// 422 here, never at token time. A taken name is 409.
#[utoipa::path(
    tag = "backend",
    security(("secret_key" = [])),
    request_body = TemplateInput,
    responses(
        (status = 201, body = JwtTemplate),
        (status = 401, body = ErrorBody),
        (status = 409, description = "The name is taken", body = ErrorBody),
        (status = 422, body = ErrorBody),
    )
)]
#[post("/jwt_templates")]
#[tracing::instrument(skip_all)]
async fn create_template(
    state: web::Data<AppState>,
    _key: BackendKey,
    body: web::Json<TemplateInput>,
) -> AppResult<HttpResponse> {
    let input = body.into_inner();
    let mut missing = FieldErrors::new();
    if input.name.is_none() {
        missing.insert("name".into(), "is required".into());
    }
    if input.claims.is_none() {
        missing.insert("claims".into(), "is required".into());
    }
    if !missing.is_empty() {
        return Err(AppError::Validation(missing));
    }
    let now = now_ms();
    let mut template = JwtTemplate {
        id: new_id(IdKind::JwtTemplate),
        object: "jwt_template",
        name: String::new(),
        claims: serde_json::json!({}),
        lifetime: 60,
        allowed_clock_skew: 5,
        signing_algorithm: "RS256".into(),
        custom_signing_key: false,
        created_at: now,
        updated_at: now,
        signing_key: None,
    };
    apply(&mut template, input)?;
    let name = template.name.clone();
    let mut tx = state.db.begin().await?;
    jwt_templates::upsert(&mut *tx, &template)
        .await
        .on_unique_violation(|| AppError::Conflict(format!("a JWT template named `{name}` exists")))?;
    audit_template(&mut tx, "jwtTemplate.created", &template).await?;
    tx.commit().await?;
    Ok(HttpResponse::Created().json(template))
}

#[utoipa::path(
    tag = "backend",
    security(("secret_key" = [])),
    params(("id" = String, Path)),
    responses((status = 200, body = JwtTemplate), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody))
)]
#[get("/jwt_templates/{id}")]
async fn get_template(
    state: web::Data<AppState>,
    _key: BackendKey,
    id: web::Path<JwtTemplateId>,
) -> AppResult<web::Json<JwtTemplate>> {
    Ok(web::Json(find(&state, &id).await?))
}

/// Changes the given fields of a template; the same validation as on create.
#[utoipa::path(
    tag = "backend",
    security(("secret_key" = [])),
    params(("id" = String, Path)),
    request_body = TemplateInput,
    responses(
        (status = 200, body = JwtTemplate),
        (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody),
        (status = 422, body = ErrorBody),
    )
)]
#[patch("/jwt_templates/{id}")]
#[tracing::instrument(skip_all, fields(id = %id))]
async fn update_template(
    state: web::Data<AppState>,
    _key: BackendKey,
    id: web::Path<JwtTemplateId>,
    body: web::Json<TemplateInput>,
) -> AppResult<web::Json<JwtTemplate>> {
    let mut template = find(&state, &id).await?;
    apply(&mut template, body.into_inner())?;
    template.updated_at = now_ms();
    let name = template.name.clone();
    let mut tx = state.db.begin().await?;
    jwt_templates::upsert(&mut *tx, &template)
        .await
        .on_unique_violation(|| AppError::Conflict(format!("a JWT template named `{name}` exists")))?;
    audit_template(&mut tx, "jwtTemplate.updated", &template).await?;
    tx.commit().await?;
    Ok(web::Json(template))
}

#[utoipa::path(
    tag = "backend",
    security(("secret_key" = [])),
    params(("id" = String, Path)),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody))
)]
#[delete("/jwt_templates/{id}")]
async fn delete_template(
    state: web::Data<AppState>,
    _key: BackendKey,
    id: web::Path<JwtTemplateId>,
) -> AppResult<HttpResponse> {
    let template = find(&state, &id).await?;
    let mut tx = state.db.begin().await?;
    jwt_templates::delete(&mut *tx, &template.id).await?;
    audit_template(&mut tx, "jwtTemplate.deleted", &template).await?;
    tx.commit().await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Custom claims merged into every session token.
#[derive(Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SessionTemplate {
    #[schema(value_type = Object, example = json!({"metadata": "{{user.public_metadata}}", "email": "{{user.primary_email_address}}"}))]
    pub claims: serde_json::Value,
}

#[utoipa::path(
    tag = "backend",
    security(("secret_key" = [])),
    responses((status = 200, body = SessionTemplate), (status = 401, body = ErrorBody))
)]
#[get("/session_token_template")]
async fn get_session_template(state: web::Data<AppState>, _key: BackendKey) -> AppResult<web::Json<SessionTemplate>> {
    let claims = jwt_templates::session_template(&state.db.pool).await?;
    Ok(web::Json(SessionTemplate { claims }))
}

/// Sets the custom session claims, used from each session's next refresh on. A
/// template whose compact JSON is over 1.2 KB, with bad syntax, or setting a session
/// claim (`sub`, `sid`, `o`, …) is 422 and the old one stays.
#[utoipa::path(
    tag = "backend",
    security(("secret_key" = [])),
    request_body = SessionTemplate,
    responses((status = 200, body = SessionTemplate), (status = 401, body = ErrorBody), (status = 422, body = ErrorBody))
)]
#[put("/session_token_template")]
#[tracing::instrument(skip_all)]
async fn put_session_template(
    state: web::Data<AppState>,
    _key: BackendKey,
    body: web::Json<SessionTemplate>,
) -> AppResult<web::Json<SessionTemplate>> {
    let claims = body.into_inner().claims;
    shortcodes::validate(&claims, SESSION_RESERVED).map_err(|reason| AppError::field("claims", reason))?;
    let size = claims.to_string().len();
    if size > MAX_SESSION_CLAIMS_BYTES {
        return Err(AppError::field(
            "claims",
            format!("is {size} bytes of JSON; at most {MAX_SESSION_CLAIMS_BYTES} keep session tokens small"),
        ));
    }
    jwt_templates::set_session_template(&state.db.pool, &claims, now_ms()).await?;
    Ok(web::Json(SessionTemplate { claims }))
}

/// The audit entry of a template change (in its transaction).
async fn audit_template(tx: &mut crate::db::Transaction, action: &str, template: &JwtTemplate) -> AppResult<()> {
    let data = serde_json::json!({"name": template.name});
    crate::db::audit::record(
        &mut **tx,
        action,
        Some(("jwtTemplate", &template.id)),
        None,
        None,
        &data,
        now_ms(),
    )
    .await?;
    Ok(())
}
