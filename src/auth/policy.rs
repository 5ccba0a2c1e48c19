//! The route policy: which paths are public, which need `org:admin`, which have their
//! own guard, and (by default) everything else needs a signed-in session. Patterns are
//! Clerk's `createRouteMatcher` form: a literal path, `:param` for one segment, and a
//! trailing `(.*)` for anything after.
//!
//! This is the one place to edit when you add routes.

/// Reachable without a session (the session, if any, is still resolved).
pub const PUBLIC_ROUTES: &[&str] = &[
    "/",
    "/assets(.*)",
    "/sign-in(.*)",
    "/sign-up(.*)",
    "/healthz",
    "/readyz",
    "/metrics",
    "/swagger-ui(.*)",
    "/openapi.json",
    "/.well-known(.*)",
    "/v1/sign-in(.*)",
    "/v1/sign-up(.*)",
    // The client API checks its own `__client` cookie.
    "/v1/client(.*)",
    "/v1/password-reset(.*)",
    "/v1/invitations(.*)",
    "/v1/oauth(.*)",
    "/v1/tickets(.*)",
    "/v1/environment",
    "/reset-password",
    "/accept-invitation",
    "/api/webhooks(.*)",
    "/api/public(.*)",
];

/// Need an active organization and the role `org:admin`.
pub const ADMIN_ROUTES: &[&str] = &["/api/admin(.*)"];

/// Guarded by the Backend API secret key, not by a session.
pub const BACKEND_ROUTES: &[&str] = &["/backend(.*)"];

/// Not counted by the rate limiter: probes, static assets, docs and keys.
pub const RATE_LIMIT_EXEMPT: &[&str] = &[
    "/healthz",
    "/readyz",
    "/metrics",
    "/assets(.*)",
    "/swagger-ui(.*)",
    "/openapi.json",
    "/.well-known(.*)",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteClass {
    Public,
    Admin,
    Backend,
    /// Signed in (the default for every path not listed).
    Protected,
}

use std::collections::HashMap;

/// One compiled `createRouteMatcher` pattern.
#[derive(Debug, Clone)]
struct Pattern {
    segments: Vec<Segment>,
    /// `(.*)` at the end: anything may follow (including nothing).
    open_end: bool,
}

#[derive(Debug, Clone)]
enum Segment {
    Literal(String),
    Param,
}

impl Pattern {
    fn parse(pattern: &str) -> Self {
        let (body, open_end) = match pattern.strip_suffix("(.*)") {
            Some(body) => (body, true),
            None => (pattern, false),
        };
        let segments = body
            .split('/')
            .skip(1)
            .map(|s| {
                if s.starts_with(':') {
                    Segment::Param
                } else {
                    Segment::Literal(s.to_owned())
                }
            })
            .collect();
        Self { segments, open_end }
    }

    fn matches(&self, path: &str) -> bool {
        let mut parts = path.split('/').skip(1);
        let last = self.segments.len().saturating_sub(1);
        for (i, segment) in self.segments.iter().enumerate() {
            let Some(part) = parts.next() else {
                // `/api(.*)` matches `/api`; a pattern with more segments than the path does not.
                return false;
            };
            match segment {
                Segment::Param if part.is_empty() => return false,
                Segment::Param => {}
                // The last literal before `(.*)` may be a prefix of the segment: `/sign-in(.*)`
                // matches `/sign-in`, `/sign-in/factor` and `/sign-in-with-sso`, as in Clerk.
                Segment::Literal(lit) if self.open_end && i == last => {
                    if !part.starts_with(lit.as_str()) {
                        return false;
                    }
                    return true;
                }
                Segment::Literal(lit) => {
                    if part != lit {
                        return false;
                    }
                }
            }
        }
        self.open_end || parts.next().is_none()
    }
}

/// A set of patterns; matches when any does.
/// Patterns are indexed by their first segment, so a path is only tried against the
/// few patterns that can match it (the guard classifies every request).
#[derive(Debug, Clone)]
pub struct RouteMatcher {
    /// First segment a literal to equal.
    by_first_segment: HashMap<String, Vec<Pattern>>,
    /// First segment a literal the path's first segment must start with (`/sign-in(.*)`).
    by_first_prefix: Vec<(String, Pattern)>,
    /// First segment a parameter.
    others: Vec<Pattern>,
}

impl RouteMatcher {
    pub fn new(patterns: &[&str]) -> Self {
        let mut matcher = Self {
            by_first_segment: HashMap::new(),
            by_first_prefix: Vec::new(),
            others: Vec::new(),
        };
        for pattern in patterns.iter().map(|p| Pattern::parse(p)) {
            match pattern.segments.first() {
                Some(Segment::Literal(first)) if pattern.open_end && pattern.segments.len() == 1 => {
                    matcher.by_first_prefix.push((first.clone(), pattern));
                }
                Some(Segment::Literal(first)) => {
                    matcher.by_first_segment.entry(first.clone()).or_default().push(pattern);
                }
                _ => matcher.others.push(pattern),
            }
        }
        matcher
    }

    pub fn matches(&self, path: &str) -> bool {
        let first = path.split('/').nth(1).unwrap_or_default();
        self.by_first_segment
            .get(first)
            .is_some_and(|patterns| patterns.iter().any(|p| p.matches(path)))
            || self
                .by_first_prefix
                .iter()
                .any(|(prefix, p)| first.starts_with(prefix.as_str()) && p.matches(path))
            || self.others.iter().any(|p| p.matches(path))
    }
}

/// The compiled policy the guard middleware applies.
#[derive(Debug, Clone)]
pub struct RoutePolicy {
    public: RouteMatcher,
    admin: RouteMatcher,
    backend: RouteMatcher,
    rate_limit_exempt: RouteMatcher,
}

impl Default for RoutePolicy {
    fn default() -> Self {
        Self {
            public: RouteMatcher::new(PUBLIC_ROUTES),
            admin: RouteMatcher::new(ADMIN_ROUTES),
            backend: RouteMatcher::new(BACKEND_ROUTES),
            rate_limit_exempt: RouteMatcher::new(RATE_LIMIT_EXEMPT),
        }
    }
}

impl RoutePolicy {
    pub fn classify(&self, path: &str) -> RouteClass {
        if self.backend.matches(path) {
            RouteClass::Backend
        } else if self.admin.matches(path) {
            RouteClass::Admin
        } else if self.public.matches(path) {
            RouteClass::Public
        } else {
            RouteClass::Protected
        }
    }

    pub fn is_rate_limited(&self, path: &str) -> bool {
        !self.rate_limit_exempt.matches(path)
    }
}

/// Whether a request may use the `__client` device cookie: the client API (`/v1/…`) and
/// pages. API and Backend API calls, probes, docs and assets never do.
pub fn uses_client_cookie(path: &str) -> bool {
    use std::sync::OnceLock;
    static EXEMPT: OnceLock<RouteMatcher> = OnceLock::new();
    path.starts_with("/v1/")
        || !(is_api_path(path)
            || EXEMPT
                .get_or_init(|| RouteMatcher::new(RATE_LIMIT_EXEMPT))
                .matches(path))
}

/// API paths answer 401 when signed out; other paths (pages) redirect to sign-in.
pub fn is_api_path(path: &str) -> bool {
    path == "/api" || path.starts_with("/api/") || path.starts_with("/v1/") || path.starts_with("/backend")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clerk_patterns() {
        let m = RouteMatcher::new(&["/sign-in(.*)", "/", "/api/admin(.*)", "/orgs/:id/settings"]);
        // As in Clerk (path-to-regexp), `(.*)` continues the last segment too:
        // `/api/admin(.*)` also covers `/api/administrator`.
        for path in [
            "/sign-in",
            "/sign-in/",
            "/sign-in/factor-one",
            "/",
            "/api/admin",
            "/api/admin/members/x",
            "/api/administrator",
            "/orgs/org_1/settings",
        ] {
            assert!(m.matches(path), "{path}");
        }
        for path in [
            "/signin",
            "/account",
            "/api",
            "/api/admi",
            "/orgs//settings",
            "/orgs/1/settings/x",
            "/x/",
        ] {
            assert!(!m.matches(path), "{path}");
        }
    }

    #[test]
    fn default_policy() {
        let policy = RoutePolicy::default();
        assert_eq!(policy.classify("/"), RouteClass::Public);
        assert_eq!(policy.classify("/healthz"), RouteClass::Public);
        assert_eq!(policy.classify("/swagger-ui/index.css"), RouteClass::Public);
        assert_eq!(policy.classify("/v1/client/sessions/x/tokens"), RouteClass::Public);
        assert_eq!(policy.classify("/api/admin/members"), RouteClass::Admin);
        assert_eq!(policy.classify("/backend/v1/users"), RouteClass::Backend);
        assert_eq!(policy.classify("/api/me"), RouteClass::Protected);
        assert_eq!(policy.classify("/account"), RouteClass::Protected);
        assert_eq!(policy.classify("/healthz/../api/me"), RouteClass::Protected);
        assert_eq!(policy.classify("/anything-unlisted"), RouteClass::Protected);
        assert!(!policy.is_rate_limited("/healthz"));
        assert!(policy.is_rate_limited("/api/me"));
        assert!(is_api_path("/api/me") && !is_api_path("/account") && !is_api_path("/apiary"));
    }
}
