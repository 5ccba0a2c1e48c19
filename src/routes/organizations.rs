//! `POST /api/organizations`.

use actix_web::{HttpResponse, post, web};
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_actix_web::service_config::ServiceConfig;

use crate::auth::extractors::Auth;
use crate::db::organizations::Organization;
use crate::error::{AppError, AppResult, ErrorBody, FieldErrors};
use crate::services;
use crate::state::AppState;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(create_organization);
}

const MAX_NAME_CHARS: usize = 100;
const MAX_SLUG_CHARS: usize = 64;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateOrganization {
    #[schema(example = "Acme Inc.")]
    pub name: String,
    /// Lowercase letters, digits and dashes; made from the name when absent.
    #[schema(example = "acme")]
    pub slug: Option<String>,
}

/// An organization's name (trimmed): 1 to 100 characters, no control characters.
pub fn check_name(name: &str, fields: &mut FieldErrors) {
    if name.is_empty() {
        fields.insert("name".into(), "is required".into());
    } else if name.chars().count() > MAX_NAME_CHARS {
        fields.insert("name".into(), format!("must be at most {MAX_NAME_CHARS} characters"));
    } else if name.chars().any(char::is_control) {
        fields.insert("name".into(), "must not contain control characters".into());
    }
}

/// `Acme Inc.` → `acme-inc`.
pub fn slugify(name: &str) -> String {
    let mut slug = String::new();
    for c in name.chars().flat_map(char::to_lowercase) {
        if c.is_ascii_alphanumeric() {
            slug.push(c);
        } else if !slug.is_empty() && !slug.ends_with('-') {
            slug.push('-');
        }
    }
    slug.trim_end_matches('-')
        .chars()
        .take(MAX_SLUG_CHARS)
        .collect::<String>()
        .trim_end_matches('-')
        .to_owned()
}

pub fn valid_slug(slug: &str) -> bool {
    !slug.is_empty()
        && slug.len() <= MAX_SLUG_CHARS
        && !slug.starts_with('-')
        && !slug.ends_with('-')
        && slug
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// Creates an organization; its creator becomes `org:admin`. A taken slug is 409.
#[utoipa::path(
    tag = "organizations",
    security(("session_token" = [])),
    request_body = CreateOrganization,
    responses(
        (status = 201, body = Organization),
        (status = 401, body = ErrorBody),
        (status = 409, description = "The slug is taken", body = ErrorBody),
        (status = 422, body = ErrorBody),
    )
)]
#[post("/organizations")]
#[tracing::instrument(skip_all, fields(user_id = %auth.user_id))]
async fn create_organization(
    state: web::Data<AppState>,
    auth: Auth,
    body: web::Json<CreateOrganization>,
) -> AppResult<HttpResponse> {
    let body = body.into_inner();
    let name = body.name.trim();
    let mut fields = FieldErrors::new();
    check_name(name, &mut fields);
    let slug = match body.slug.as_deref().map(str::trim) {
        Some(slug) => slug.to_owned(),
        None => slugify(name),
    };
    if fields.is_empty() && !valid_slug(&slug) {
        let reason = if body.slug.is_some() {
            format!("must be 1 to {MAX_SLUG_CHARS} lowercase letters, digits or dashes")
        } else {
            "could not be made from the name: give one".to_owned()
        };
        fields.insert("slug".into(), reason);
    }
    if !fields.is_empty() {
        return Err(AppError::Validation(fields));
    }
    let org = services::memberships::create_organization(&state, &auth.user_id, name, &slug).await?;
    Ok(HttpResponse::Created().json(org))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs() {
        assert_eq!(slugify("Acme Inc."), "acme-inc");
        assert_eq!(slugify("  Ünïcode & Co  "), "n-code-co");
        assert_eq!(slugify("!!!"), "");
        assert!(valid_slug("acme-1") && !valid_slug("Acme") && !valid_slug("-a") && !valid_slug(""));
    }
}
