//! Claim templates with shortcodes, as Clerk's JWT templates and custom session claims
//! write them: `{"email": "{{user.primary_email_address}}", "name": "{{user.first_name || 'friend'}}"}`.
//!
//! - A value that is one lone shortcode keeps its JSON type (an object stays an object).
//! - Text around shortcodes makes the value a string.
//! - `a || b || 'literal'` takes the first alternative that is neither null nor empty.
//! - A well-formed but unknown shortcode renders as `null`; malformed syntax is refused
//!   by [`validate`] when the template is saved, never at token time.

use serde_json::{Map, Value};

/// What shortcodes can read.
#[derive(Debug, Clone, Default)]
pub struct TemplateContext {
    pub user_id: String,
    pub email: String,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub public_metadata: Value,
    /// Unix seconds.
    pub user_created_at: i64,
    pub org: Option<OrgValues>,
    pub session_id: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct OrgValues {
    pub id: String,
    pub slug: String,
    pub name: String,
    pub role: String,
}

/// The shortcodes this renderer knows (plus `user.public_metadata.<path>`).
pub const SHORTCODES: &[&str] = &[
    "user.id",
    "user.primary_email_address",
    "user.first_name",
    "user.last_name",
    "user.full_name",
    "user.public_metadata",
    "user.created_at",
    "org.id",
    "org.slug",
    "org.name",
    "org.role",
    "session.id",
];

#[derive(Debug, Clone, PartialEq)]
enum Alternative {
    Path(String),
    Literal(String),
}

#[derive(Debug, Clone, PartialEq)]
enum Segment {
    Text(String),
    Expr(Vec<Alternative>),
}

/// Splits a string into text and `{{…}}` expressions.
fn parse(text: &str) -> Result<Vec<Segment>, String> {
    let mut segments = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        if start > 0 {
            segments.push(Segment::Text(rest[..start].to_owned()));
        }
        let after = &rest[start + 2..];
        let end = find_close(after).ok_or_else(|| format!("`{{{{` without a closing `}}}}` in {text:?}"))?;
        segments.push(Segment::Expr(parse_expression(&after[..end])?));
        rest = &after[end + 2..];
    }
    if !rest.is_empty() {
        segments.push(Segment::Text(rest.to_owned()));
    }
    Ok(segments)
}

/// The position of the `}}` closing an expression, skipping quoted literals.
fn find_close(s: &str) -> Option<usize> {
    let bytes = s.as_bytes();
    let mut quoted = false;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\'' => quoted = !quoted,
            b'}' if !quoted && bytes.get(i + 1) == Some(&b'}') => return Some(i),
            _ => {}
        }
        i += 1;
    }
    None
}

fn parse_expression(expr: &str) -> Result<Vec<Alternative>, String> {
    let mut alternatives = Vec::new();
    let mut rest = expr.trim();
    loop {
        let (alternative, remaining) = if let Some(body) = rest.strip_prefix('\'') {
            let close = body
                .find('\'')
                .ok_or_else(|| format!("unterminated literal in `{{{{{expr}}}}}`"))?;
            (
                Alternative::Literal(body[..close].to_owned()),
                body[close + 1..].trim_start(),
            )
        } else {
            let end = rest.find("||").unwrap_or(rest.len());
            let path = rest[..end].trim();
            let valid = !path.is_empty()
                && path.split('.').all(|part| {
                    !part.is_empty()
                        && part
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
                });
            if !valid {
                return Err(format!(
                    "`{{{{{expr}}}}}` is not a shortcode, a `||` list, or a 'quoted literal'"
                ));
            }
            if path == "user.private_metadata" || path.starts_with("user.private_metadata.") {
                return Err("`user.private_metadata` is backend-only: it never goes into a token".to_owned());
            }
            (Alternative::Path(path.to_owned()), &rest[end..])
        };
        alternatives.push(alternative);
        if remaining.is_empty() {
            return Ok(alternatives);
        }
        rest = remaining
            .strip_prefix("||")
            .ok_or_else(|| format!("expected `||` in `{{{{{expr}}}}}`"))?
            .trim();
    }
}

/// Checks a template: an object whose string values parse, with no reserved claim at
/// the top level. Returns the first problem.
pub fn validate(claims: &Value, reserved: &[&str]) -> Result<(), String> {
    let Value::Object(map) = claims else {
        return Err("must be a JSON object".to_owned());
    };
    if let Some(key) = map.keys().find(|k| reserved.contains(&k.as_str())) {
        return Err(format!("`{key}` is set by the server and cannot be overridden"));
    }
    validate_value(claims)
}

fn validate_value(value: &Value) -> Result<(), String> {
    match value {
        Value::String(s) => parse(s).map(|_| ()),
        Value::Array(items) => items.iter().try_for_each(validate_value),
        Value::Object(map) => map.values().try_for_each(validate_value),
        _ => Ok(()),
    }
}

/// Renders a (validated) template. Strings that do not parse are left as they are.
pub fn render(claims: &Value, ctx: &TemplateContext) -> Value {
    match claims {
        Value::String(s) => render_string(s, ctx),
        Value::Array(items) => Value::Array(items.iter().map(|v| render(v, ctx)).collect()),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), render(v, ctx)))
                .collect::<Map<_, _>>(),
        ),
        other => other.clone(),
    }
}

fn render_string(s: &str, ctx: &TemplateContext) -> Value {
    let Ok(segments) = parse(s) else {
        return Value::String(s.to_owned());
    };
    match segments.as_slice() {
        [] => Value::String(String::new()),
        [Segment::Text(text)] => Value::String(text.clone()),
        // A lone shortcode keeps its JSON type.
        [Segment::Expr(alternatives)] => evaluate(alternatives, ctx),
        _ => {
            let mut out = String::new();
            for segment in &segments {
                match segment {
                    Segment::Text(text) => out.push_str(text),
                    Segment::Expr(alternatives) => match evaluate(alternatives, ctx) {
                        Value::Null => {}
                        Value::String(s) => out.push_str(&s),
                        other => out.push_str(&other.to_string()),
                    },
                }
            }
            Value::String(out)
        }
    }
}

fn evaluate(alternatives: &[Alternative], ctx: &TemplateContext) -> Value {
    for alternative in alternatives {
        let value = match alternative {
            Alternative::Literal(text) => Value::String(text.clone()),
            Alternative::Path(path) => lookup(path, ctx),
        };
        let missing = value.is_null() || value.as_str() == Some("");
        if !missing {
            return value;
        }
    }
    Value::Null
}

fn lookup(path: &str, ctx: &TemplateContext) -> Value {
    let text = |s: &str| Value::String(s.to_owned());
    let optional = |s: &Option<String>| s.as_deref().map_or(Value::Null, text);
    let org = ctx.org.as_ref();
    match path {
        "user.id" => text(&ctx.user_id),
        "user.primary_email_address" => text(&ctx.email),
        "user.first_name" => optional(&ctx.first_name),
        "user.last_name" => optional(&ctx.last_name),
        "user.full_name" => {
            let full = [ctx.first_name.as_deref(), ctx.last_name.as_deref()]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(" ");
            if full.is_empty() {
                Value::Null
            } else {
                Value::String(full)
            }
        }
        "user.public_metadata" => ctx.public_metadata.clone(),
        "user.created_at" => Value::from(ctx.user_created_at),
        "org.id" => org.map_or(Value::Null, |o| text(&o.id)),
        "org.slug" => org.map_or(Value::Null, |o| text(&o.slug)),
        "org.name" => org.map_or(Value::Null, |o| text(&o.name)),
        "org.role" => org.map_or(Value::Null, |o| text(&o.role)),
        "session.id" => optional(&ctx.session_id),
        _ => match path.strip_prefix("user.public_metadata.") {
            Some(nested) => nested
                .split('.')
                .try_fold(&ctx.public_metadata, |value, key| value.get(key))
                .cloned()
                .unwrap_or(Value::Null),
            None => Value::Null,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ctx() -> TemplateContext {
        TemplateContext {
            user_id: "user_1".into(),
            email: "ada@example.com".into(),
            first_name: Some("Ada".into()),
            last_name: None,
            public_metadata: json!({"plan": "pro", "limits": {"seats": 5}, "tags": ["a"]}),
            user_created_at: 1_700_000_000,
            org: Some(OrgValues {
                id: "org_1".into(),
                slug: "acme".into(),
                name: "Acme".into(),
                role: "org:admin".into(),
            }),
            session_id: Some("sess_1".into()),
        }
    }

    #[test]
    fn lone_shortcodes_keep_their_type_and_text_becomes_a_string() {
        let template = json!({
            "metadata": "{{user.public_metadata}}",
            "seats": "{{user.public_metadata.limits.seats}}",
            "email": "{{user.primary_email_address}}",
            "greeting": "Hello {{user.first_name}} from {{org.name}}!",
            "created": "{{user.created_at}}",
            "created_text": "at {{user.created_at}}",
            "nested": {"list": ["{{org.slug}}", 3, true]},
            "plain": "no shortcodes",
            "aud": "authenticated",
        });
        let out = render(&template, &ctx());
        assert_eq!(
            out["metadata"],
            json!({"plan": "pro", "limits": {"seats": 5}, "tags": ["a"]})
        );
        assert_eq!(out["seats"], json!(5));
        assert_eq!(out["email"], "ada@example.com");
        assert_eq!(out["greeting"], "Hello Ada from Acme!");
        assert_eq!(out["created"], json!(1_700_000_000));
        assert_eq!(out["created_text"], "at 1700000000");
        assert_eq!(out["nested"], json!({"list": ["acme", 3, true]}));
        assert_eq!(out["plain"], "no shortcodes");
    }

    #[test]
    fn fallbacks_unknowns_and_missing_values() {
        let template = json!({
            "last": "{{user.last_name || 'unknown'}}",
            "first": "{{ user.first_name || 'unknown' }}",
            "chain": "{{user.last_name || user.public_metadata.nickname || 'n/a'}}",
            "full": "{{user.full_name}}",
            "nope": "{{user.favourite_color}}",
            "deep": "{{user.public_metadata.limits.missing.x}}",
            "in_text": "[{{user.last_name}}]",
        });
        let out = render(&template, &ctx());
        assert_eq!(out["last"], "unknown");
        assert_eq!(out["first"], "Ada");
        assert_eq!(out["chain"], "n/a");
        assert_eq!(out["full"], "Ada");
        assert_eq!(out["nope"], Value::Null);
        assert_eq!(out["deep"], Value::Null);
        assert_eq!(out["in_text"], "[]");
        let personal = TemplateContext { org: None, ..ctx() };
        assert_eq!(render(&json!({"o": "{{org.id}}"}), &personal)["o"], Value::Null);
    }

    #[test]
    fn validation_refuses_bad_syntax_and_reserved_claims() {
        let reserved = ["iss", "exp", "iat", "nbf", "jti", "sub"];
        assert!(validate(&json!({"a": "{{user.id}}", "b": ["{{org.id || 'x'}}"]}), &reserved).is_ok());
        assert!(validate(&json!({"role": "authenticated", "aud": "x"}), &reserved).is_ok());
        for bad in [
            json!({"a": "{{user.id"}),
            json!({"a": "{{}}"}),
            json!({"a": "{{user.id ||}}"}),
            json!({"a": "{{'open}}"}),
            json!({"a": "{{user id}}"}),
            json!({"a": "{{user.id 'x'}}"}),
            json!({"a": {"b": "{{a..b}}"}}),
            json!({"sub": "x"}),
            json!({"exp": 1}),
            json!(["not", "an", "object"]),
        ] {
            assert!(validate(&bad, &reserved).is_err(), "{bad}");
        }
    }

    /// Property: no input makes parsing, validation or rendering panic, and rendering
    /// keeps an object's keys. Deterministic pseudo-random strings over the characters
    /// the grammar cares about.
    #[test]
    fn no_input_panics() {
        let alphabet: Vec<char> = "{}|' .-_abuserog1\\\"é😀".chars().collect();
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for _ in 0..20_000 {
            let len = (next() % 24) as usize;
            let mut s: String = (0..len)
                .map(|_| alphabet[(next() % alphabet.len() as u64) as usize])
                .collect();
            if next() % 3 == 0 {
                s = format!("{{{{{s}}}}}");
            }
            let template = json!({"k": s, "n": [s.clone(), {"d": s}]});
            let _ = validate(&template, &["sub"]);
            let out = render(&template, &ctx());
            assert!(out.get("k").is_some() && out.get("n").is_some());
        }
    }

    #[test]
    fn private_metadata_is_never_a_shortcode() {
        for template in [
            json!({"x": "{{user.private_metadata}}"}),
            json!({"x": "{{user.id || user.private_metadata.plan}}"}),
        ] {
            let error = validate(&template, &[]).unwrap_err();
            assert!(error.contains("private_metadata"), "{error}");
        }
    }
}
