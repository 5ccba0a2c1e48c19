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

/// One compiled `createRouteMatcher` pattern.
#[derive(Debug, Clone)]
struct Pattern {
    segments: Vec<Segment>,
    /// `(.*)` at the end: anything may follow (including nothing).
    open_end: bool,
}

#[derive(Debug, Clone)]
enum Segment {
    Literal(Box<[u8]>),
    Param,
}

/// The segments of a path after its leading `/`, as bytes: `/` is ASCII, so splitting the
/// bytes is splitting the string, without the `char` searcher `str::split` sets up.
fn segments(path: &str) -> impl Iterator<Item = &[u8]> {
    path.as_bytes().split(|b| *b == b'/').skip(1)
}

/// A pattern's body, and whether it ends in `(.*)`.
fn split_open_end(pattern: &str) -> (&str, bool) {
    match pattern.strip_suffix("(.*)") {
        Some(body) => (body, true),
        None => (pattern, false),
    }
}

fn is_param(segment: &[u8]) -> bool {
    segment.starts_with(b":")
}

impl Pattern {
    fn parse(pattern: &str) -> Self {
        let (body, open_end) = split_open_end(pattern);
        let segments = segments(body)
            .map(|s| {
                if is_param(s) {
                    Segment::Param
                } else {
                    Segment::Literal(s.into())
                }
            })
            .collect();
        Self { segments, open_end }
    }

    fn matches(&self, path: &str) -> bool {
        let mut parts = segments(path);
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
                Segment::Literal(lit) if self.open_end && i == last => return part.starts_with(lit),
                Segment::Literal(lit) => {
                    if part != &**lit {
                        return false;
                    }
                }
            }
        }
        self.open_end || parts.next().is_none()
    }
}

/// The lists a path is in, a bit per list (one pass over the patterns answers them all).
type Lists = u8;
const PUBLIC: Lists = 1;
const ADMIN: Lists = 2;
const BACKEND: Lists = 4;
const EXEMPT: Lists = 8;

/// A set of patterns, each tagged with the lists it comes from. A pattern without a
/// `:param` (all of the default policy's) is plain bytes: `/healthz` matches the path
/// `/healthz` exactly, and `/sign-in(.*)` every path that starts with `/sign-in` (which is
/// what the segment rules say of such a pattern). Those are kept by the byte after their
/// leading `/`, so a path is compared only with the few that share its second byte (one
/// for `/healthz`, none for most paths) instead of with every pattern. The guard
/// classifies every request.
#[derive(Debug, Clone)]
pub struct RouteMatcher {
    /// Patterns without `:param`: at 0 those without a second byte (`/`, `/(.*)`), which
    /// every path is compared with; at `b + 1` those whose second byte is `b`.
    by_second: Box<[Box<[Literal]>]>,
    /// Patterns with a `:param`, matched segment by segment.
    with_params: Vec<(Pattern, Lists)>,
}

/// A pattern without `:param`: the path equals it, or (`(.*)`) starts with it.
#[derive(Debug, Clone)]
struct Literal {
    bytes: Box<[u8]>,
    open_end: bool,
    lists: Lists,
}

impl Literal {
    fn matches(&self, path: &[u8]) -> bool {
        if self.open_end {
            path.starts_with(&self.bytes)
        } else {
            *self.bytes == *path
        }
    }
}

/// The bucket of [`RouteMatcher::by_second`] a path or a pattern's body belongs to.
fn bucket(bytes: &[u8]) -> usize {
    bytes.get(1).map_or(0, |b| usize::from(*b) + 1)
}

impl RouteMatcher {
    pub fn new(patterns: &[&str]) -> Self {
        Self::tagged(&[(patterns, 1)])
    }

    fn tagged(lists: &[(&[&str], Lists)]) -> Self {
        // A pattern in several lists (`/healthz` is public and exempt) is one entry that
        // carries all their bits: tried once per request, not once per list.
        let mut merged: Vec<(&str, Lists)> = Vec::new();
        for (patterns, list) in lists {
            for pattern in patterns.iter() {
                match merged.iter_mut().find(|(p, _)| p == pattern) {
                    Some((_, lists)) => *lists |= list,
                    None => merged.push((pattern, *list)),
                }
            }
        }
        let mut by_second: Vec<Vec<Literal>> = vec![Vec::new(); 257];
        let mut with_params = Vec::new();
        for (pattern, list) in merged {
            let (body, open_end) = split_open_end(pattern);
            if segments(body).any(is_param) {
                with_params.push((Pattern::parse(pattern), list));
            } else {
                by_second[bucket(body.as_bytes())].push(Literal {
                    bytes: body.as_bytes().into(),
                    open_end,
                    lists: list,
                });
            }
        }
        Self {
            by_second: by_second.into_iter().map(Vec::into_boxed_slice).collect(),
            with_params,
        }
    }

    /// The lists of every pattern that matches the path (0: none).
    fn lists(&self, path: &str) -> Lists {
        let bytes = path.as_bytes();
        let mut lists = 0;
        let mut add = |literals: &[Literal]| {
            for literal in literals {
                if literal.matches(bytes) {
                    lists |= literal.lists;
                }
            }
        };
        add(&self.by_second[0]);
        match bucket(bytes) {
            0 => {}
            b => add(&self.by_second[b]),
        }
        for (pattern, list) in &self.with_params {
            if lists & *list != *list && pattern.matches(path) {
                lists |= list;
            }
        }
        lists
    }

    pub fn matches(&self, path: &str) -> bool {
        self.lists(path) != 0
    }
}

/// The compiled policy the guard middleware applies: every list in one matcher, so a
/// request's path is looked at once.
#[derive(Debug, Clone)]
pub struct RoutePolicy {
    matcher: RouteMatcher,
}

impl Default for RoutePolicy {
    fn default() -> Self {
        Self {
            matcher: RouteMatcher::tagged(&[
                (PUBLIC_ROUTES, PUBLIC),
                (ADMIN_ROUTES, ADMIN),
                (BACKEND_ROUTES, BACKEND),
                (RATE_LIMIT_EXEMPT, EXEMPT),
            ]),
        }
    }
}

/// What the policy says of one path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PathRules {
    pub class: RouteClass,
    /// Counted by the rate limiter (not in `RATE_LIMIT_EXEMPT`).
    pub rate_limited: bool,
}

impl RoutePolicy {
    pub fn rules(&self, path: &str) -> PathRules {
        let lists = self.matcher.lists(path);
        let class = if lists & BACKEND != 0 {
            RouteClass::Backend
        } else if lists & ADMIN != 0 {
            RouteClass::Admin
        } else if lists & PUBLIC != 0 {
            RouteClass::Public
        } else {
            RouteClass::Protected
        };
        PathRules {
            class,
            rate_limited: lists & EXEMPT == 0,
        }
    }

    pub fn classify(&self, path: &str) -> RouteClass {
        self.rules(path).class
    }

    pub fn is_rate_limited(&self, path: &str) -> bool {
        self.rules(path).rate_limited
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
        // An empty prefix (`/(.*)`) matches every path, whatever its first byte.
        let everything = RouteMatcher::new(&["/(.*)"]);
        for path in ["/", "/x", "/api/me", "/.well-known/jwks.json"] {
            assert!(everything.matches(path), "{path}");
        }
    }

    /// A pattern without `:param` is matched as bytes (equal, or a prefix with `(.*)`):
    /// the same answer as its segments give, for every listed pattern and every path
    /// near one (the pattern's body, one byte more or less, another segment after it).
    #[test]
    fn literal_patterns_match_as_their_segments_do() {
        let patterns: Vec<&str> = [PUBLIC_ROUTES, ADMIN_ROUTES, BACKEND_ROUTES, RATE_LIMIT_EXEMPT]
            .concat()
            .into_iter()
            .chain(["/(.*)", "/a/(.*)", "/api/"])
            .collect();
        let mut paths: Vec<String> = ["/", "//", "/a", "/a/b", "/apiary", "/api/adminx", "/healthz/", "/x"]
            .map(str::to_owned)
            .to_vec();
        for pattern in &patterns {
            let body = pattern.trim_end_matches("(.*)");
            paths.extend([
                body.to_owned(),
                format!("{body}x"),
                format!("{body}/"),
                format!("{body}/x"),
            ]);
            if body.len() > 1 {
                paths.push(body[..body.len() - 1].to_owned());
            }
        }
        for pattern in &patterns {
            let matcher = RouteMatcher::new(&[pattern]);
            let segments = Pattern::parse(pattern);
            for path in &paths {
                assert_eq!(matcher.matches(path), segments.matches(path), "{pattern} on {path}");
            }
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
        // One pass answers every list: a path in two lists gets both.
        for (path, class, rate_limited) in [
            ("/healthz", RouteClass::Public, false),
            ("/assets/app.css", RouteClass::Public, false),
            ("/sign-in", RouteClass::Public, true),
            ("/api/admin/api-keys", RouteClass::Admin, true),
            ("/backend/v1/users", RouteClass::Backend, true),
            ("/api/items/item_1", RouteClass::Protected, true),
        ] {
            assert_eq!(policy.rules(path), PathRules { class, rate_limited }, "{path}");
        }
        assert!(policy.is_rate_limited("/api/me"));
        assert!(is_api_path("/api/me") && !is_api_path("/account") && !is_api_path("/apiary"));
    }
}
