//! Typed configuration, read from the environment (and `.env` in development) and
//! validated once at start-up. Every problem is reported at once, by variable name.

use std::path::PathBuf;
use std::time::Duration;

/// `development` (the default) or `production`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppEnv {
    Development,
    Production,
}

/// Requests allowed per window, or no limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateLimit {
    Off,
    PerWindow { requests: u32, window: Duration },
}

impl RateLimit {
    /// Parses `off` or `N/Ds` (also `N/Dm`, `N/Dh`; a bare `N/D` means seconds).
    pub fn parse(value: &str) -> Result<Self, String> {
        let value = value.trim();
        if value.eq_ignore_ascii_case("off") {
            return Ok(Self::Off);
        }
        let usage = || format!("`{value}` is not `off` or `N/Ds` (for example `10/10s`)");
        let (requests, window) = value.split_once('/').ok_or_else(usage)?;
        let requests: u32 = requests.trim().parse().map_err(|_| usage())?;
        let window = window.trim();
        let (number, unit) = match window.find(|c: char| !c.is_ascii_digit()) {
            Some(i) => window.split_at(i),
            None => (window, "s"),
        };
        let number: u64 = number.parse().map_err(|_| usage())?;
        let seconds = match unit {
            "s" => number,
            "m" => number * 60,
            "h" => number * 3600,
            _ => return Err(usage()),
        };
        if requests == 0 || seconds == 0 {
            return Err(format!("`{value}`: both the count and the window must be above 0"));
        }
        Ok(Self::PerWindow {
            requests,
            window: Duration::from_secs(seconds),
        })
    }
}

/// Settings for trusting a real Clerk instance (used by the Clerk issue; parsed here
/// so that a typo fails at start-up).
#[derive(Debug, Clone, Default)]
pub struct ClerkConfig {
    pub jwt_key: Option<String>,
    pub jwks_url: Option<String>,
    /// Seconds between JWKS refetches caused by an unknown `kid` (the cache itself lives 5 minutes).
    pub jwks_min_refetch: Duration,
    pub issuer: Option<String>,
    pub authorized_parties: Vec<String>,
    pub webhook_signing_secret: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub app_env: AppEnv,
    pub database_url: String,
    pub host: String,
    pub port: u16,
    /// Backend API bearer secret; `None` in development means "generate and store".
    pub secret_key: Option<String>,
    /// PEM (or a path to a PEM file) of the active signing key.
    pub signing_key: Option<String>,
    /// Folder of further PEM keys published in JWKS (rotation).
    pub signing_keys_dir: Option<PathBuf>,
    /// Where development secrets and keys are stored (`DATA_DIR`; by default beside the
    /// SQLite file, or `./data`).
    pub data_dir: PathBuf,
    pub issuer: String,
    pub allowed_origins: Vec<String>,
    pub session_token_lifetime: Duration,
    pub session_lifetime: Duration,
    pub rate_limit: RateLimit,
    pub max_token_age: Option<Duration>,
    pub redis_url: Option<String>,
    /// Prefix of every key this app writes to Redis (several apps can share one Redis).
    pub redis_key_prefix: String,
    /// Take the client IP from `X-Forwarded-For` / `Forwarded` (only behind a proxy you run).
    pub trust_proxy_headers: bool,
    pub clerk: ClerkConfig,
    /// First retry delay of outgoing webhooks (doubles per attempt, with jitter).
    pub webhook_retry_base: Duration,
    /// How long finished rows (sessions, webhook deliveries, events, receipts, …) are kept.
    pub retention: Duration,
    /// How long audit entries are kept (`AUDIT_RETENTION_DAYS`, default 365).
    pub audit_retention: Duration,
    /// HTTP worker threads (`WORKERS`; default: one per physical core).
    pub workers: Option<usize>,
    pub email: EmailConfig,
    /// How long an invitation can be accepted (`INVITATION_LIFETIME`, seconds).
    pub invitation_lifetime: Duration,
    /// The product's name as users see it (`APP_NAME`): the issuer shown by
    /// authenticator apps.
    pub app_name: String,
    /// Social and enterprise sign-in providers, in the order the pages show them.
    pub oauth_providers: Vec<OAuthProviderConfig>,
}

/// Whether a new account must confirm its email address before it can sign in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmailVerification {
    /// Sign-up signs in at once and emails a code.
    Optional,
    /// Sign-up creates a pending sign-up and emails a code; no user until it is confirmed.
    Required,
    /// No email at sign-up (a code can still be asked for).
    Off,
}

impl EmailVerification {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Optional => "optional",
            Self::Required => "required",
            Self::Off => "off",
        }
    }
}

/// Email delivery and the account flows that send email.
#[derive(Debug, Clone)]
pub struct EmailConfig {
    /// `smtp://[user:pass@]host:port` (STARTTLS when offered) or `smtps://…`; `None`:
    /// emails are written to the log (development).
    pub smtp_url: Option<String>,
    /// The `From:` mailbox.
    pub from: String,
    /// The base of links in emails (`PUBLIC_URL`, default `http://HOST:PORT`).
    pub public_url: String,
    pub verification: EmailVerification,
    /// First retry delay of a failed send (doubles per attempt, with jitter).
    pub retry_base: Duration,
}

/// One sign-in provider (`OIDC_PROVIDERS` and `OIDC_<NAME>_*`, or `OAUTH_GITHUB_*`).
#[derive(Debug, Clone)]
pub struct OAuthProviderConfig {
    /// Lowercase name, in URLs (`/v1/oauth/{name}`) and identities.
    pub name: String,
    pub kind: OAuthProviderKind,
    pub client_id: String,
    pub client_secret: String,
}

#[derive(Debug, Clone)]
pub enum OAuthProviderKind {
    /// Any OpenID Connect provider, found by discovery from its issuer URL.
    Oidc { issuer: String },
    /// GitHub's OAuth 2.0 apps; the URLs change only for GitHub Enterprise (and tests).
    GitHub {
        authorize_url: String,
        token_url: String,
        api_url: String,
    },
}

pub const DEFAULT_EMAIL_FROM: &str = "Gatehouse <no-reply@localhost>";

pub const DEFAULT_DATABASE_URL: &str = "sqlite://data/gatehouse.db";

/// Reads `OIDC_PROVIDERS` and each provider's `OIDC_<NAME>_ISSUER/_CLIENT_ID/
/// _CLIENT_SECRET`, then `OAUTH_GITHUB_*`. An issuer must be `https://`; `http://` only
/// on a loopback address in development (a local Keycloak, a test's mock).
fn oauth_providers(
    var: &impl Fn(&str) -> Option<String>,
    app_env: AppEnv,
    problems: &mut Vec<String>,
) -> Vec<OAuthProviderConfig> {
    let mut providers = Vec::new();
    for name in var("OIDC_PROVIDERS").map(|v| list(&v)).unwrap_or_default() {
        let name = name.to_lowercase();
        if name.is_empty()
            || name.len() > 32
            || !name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        {
            problems.push(format!(
                "OIDC_PROVIDERS: `{name}` is not a name of lowercase letters, digits and `_` (at most 32)"
            ));
            continue;
        }
        if name == "github" {
            problems
                .push("OIDC_PROVIDERS: `github` is configured by OAUTH_GITHUB_CLIENT_ID/_SECRET, not here".to_owned());
            continue;
        }
        if providers.iter().any(|p: &OAuthProviderConfig| p.name == name) {
            problems.push(format!("OIDC_PROVIDERS: `{name}` is listed twice"));
            continue;
        }
        let prefix = format!("OIDC_{}", name.to_uppercase());
        let mut required = |suffix: &str| {
            let key = format!("{prefix}_{suffix}");
            var(&key).map(|v| v.trim().to_owned()).unwrap_or_else(|| {
                problems.push(format!("{key}: required because OIDC_PROVIDERS lists `{name}`"));
                String::new()
            })
        };
        let issuer = required("ISSUER").trim_end_matches('/').to_owned();
        let client_id = required("CLIENT_ID");
        let client_secret = required("CLIENT_SECRET");
        if !issuer.is_empty()
            && let Err(why) = check_issuer(&issuer, app_env)
        {
            problems.push(format!("{prefix}_ISSUER: {why}"));
        }
        providers.push(OAuthProviderConfig {
            name,
            kind: OAuthProviderKind::Oidc { issuer },
            client_id,
            client_secret,
        });
    }
    match (var("OAUTH_GITHUB_CLIENT_ID"), var("OAUTH_GITHUB_CLIENT_SECRET")) {
        (Some(client_id), Some(client_secret)) => {
            let mut url = |key: &str, default: &str| {
                let value = var(key).unwrap_or_else(|| default.to_owned());
                if let Err(why) = check_issuer(&value, app_env) {
                    problems.push(format!("{key}: {why}"));
                }
                value.trim_end_matches('/').to_owned()
            };
            providers.push(OAuthProviderConfig {
                name: "github".to_owned(),
                kind: OAuthProviderKind::GitHub {
                    authorize_url: url("OAUTH_GITHUB_AUTHORIZE_URL", "https://github.com/login/oauth/authorize"),
                    token_url: url("OAUTH_GITHUB_TOKEN_URL", "https://github.com/login/oauth/access_token"),
                    api_url: url("OAUTH_GITHUB_API_URL", "https://api.github.com"),
                },
                client_id: client_id.trim().to_owned(),
                client_secret: client_secret.trim().to_owned(),
            });
        }
        (None, None) => {}
        _ => problems.push("OAUTH_GITHUB_CLIENT_ID and OAUTH_GITHUB_CLIENT_SECRET: set both, or neither".to_owned()),
    }
    providers
}

/// `https://…`, or `http://` on a loopback host in development.
fn check_issuer(url: &str, app_env: AppEnv) -> Result<(), &'static str> {
    if let Some(rest) = url.strip_prefix("https://") {
        return if rest.is_empty() { Err("has no host") } else { Ok(()) };
    }
    let Some(rest) = url.strip_prefix("http://") else {
        return Err("must be an https:// URL");
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => authority.rsplit_once(':').map_or(authority, |(host, _)| host),
    };
    let loopback = host == "localhost" || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback());
    match (loopback, app_env) {
        (true, AppEnv::Development) => Ok(()),
        (true, AppEnv::Production) => Err("must be an https:// URL in production"),
        (false, _) => Err("must be an https:// URL (http:// only on a loopback address in development)"),
    }
}

/// All the problems found in the environment, one line each.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration:\n  - {}", .0.join("\n  - "))]
pub struct ConfigError(pub Vec<String>);

impl Config {
    /// Reads the process environment (after loading `.env` if present).
    pub fn from_env() -> Result<Self, ConfigError> {
        let _ = dotenvy::dotenv();
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Builds the configuration from any variable source (tests pass a map).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let var = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let mut problems = Vec::new();

        let app_env = match var("APP_ENV").as_deref().map(str::trim) {
            None | Some("development") | Some("dev") => AppEnv::Development,
            Some("production") | Some("prod") => AppEnv::Production,
            Some(other) => {
                problems.push(format!("APP_ENV: `{other}` is not `development` or `production`"));
                AppEnv::Development
            }
        };
        let database_url = var("DATABASE_URL").unwrap_or_else(|| DEFAULT_DATABASE_URL.to_owned());
        if !(database_url.starts_with("sqlite:")
            || database_url.starts_with("postgres://")
            || database_url.starts_with("postgresql://"))
        {
            problems.push("DATABASE_URL: must start with `sqlite:` or `postgres://`".to_owned());
        }
        let host = var("HOST").unwrap_or_else(|| "127.0.0.1".to_owned());
        let port = parse_or(&var, "PORT", 8080u16, &mut problems);
        let seconds = |name: &str, default: u64, min: u64, problems: &mut Vec<String>| {
            let value = parse_or(&var, name, default, problems);
            if value < min {
                problems.push(format!("{name}: must be at least {min} seconds"));
            }
            Duration::from_secs(value)
        };
        let session_token_lifetime = seconds("SESSION_TOKEN_LIFETIME", 60, 10, &mut problems);
        let session_lifetime = seconds("SESSION_LIFETIME", 604_800, 60, &mut problems);
        let max_token_age = var("MAX_TOKEN_AGE").map(|_| seconds("MAX_TOKEN_AGE", 0, 1, &mut problems));
        let rate_limit = match var("RATE_LIMIT") {
            None => RateLimit::parse("10/10s").expect("default rate limit parses"),
            Some(value) => RateLimit::parse(&value).unwrap_or_else(|e| {
                problems.push(format!("RATE_LIMIT: {e}"));
                RateLimit::Off
            }),
        };
        let issuer = var("ISSUER")
            .map(|v| v.trim_end_matches('/').to_owned())
            .unwrap_or_else(|| format!("http://{host}:{port}"));
        let allowed_origins = var("ALLOWED_ORIGINS")
            .map(|v| list(&v))
            .unwrap_or_else(|| vec![format!("http://localhost:{port}"), format!("http://127.0.0.1:{port}")]);
        for origin in &allowed_origins {
            if !(origin.starts_with("http://") || origin.starts_with("https://")) || origin.ends_with('/') {
                problems.push(format!(
                    "ALLOWED_ORIGINS: `{origin}` is not an origin like `https://app.example.com`"
                ));
            }
        }
        let secret_key = var("SECRET_KEY");
        if secret_key.as_ref().is_some_and(|key| key.len() < 32) {
            problems.push("SECRET_KEY: must be at least 32 characters".to_owned());
        }
        let signing_key = var("SIGNING_KEY");
        let signing_keys_dir = var("SIGNING_KEYS_DIR").map(PathBuf::from);
        let trust_proxy_headers = parse_or(&var, "TRUST_PROXY_HEADERS", false, &mut problems);
        let webhook_retry_base = Duration::from_millis(parse_or(&var, "WEBHOOK_RETRY_BASE_MS", 5000u64, &mut problems));
        let retention_days = parse_or(&var, "RETENTION_DAYS", 30u64, &mut problems);
        let audit_retention_days = parse_or(&var, "AUDIT_RETENTION_DAYS", 365u64, &mut problems);
        if audit_retention_days == 0 {
            problems.push("AUDIT_RETENTION_DAYS: must be at least 1".to_owned());
        }
        if retention_days == 0 {
            problems.push("RETENTION_DAYS: must be at least 1".to_owned());
        }
        let invitation_lifetime = seconds("INVITATION_LIFETIME", 604_800, 60, &mut problems);
        let app_name = var("APP_NAME").unwrap_or_else(|| "Gatehouse".to_owned());
        if app_name.trim().is_empty()
            || app_name.len() > 64
            || app_name.contains(':')
            || app_name.chars().any(char::is_control)
        {
            problems.push("APP_NAME: 1 to 64 characters, without `:` or control characters".to_owned());
        }
        let workers = var("WORKERS").map(|_| parse_or(&var, "WORKERS", 1usize, &mut problems));
        let smtp_url = var("SMTP_URL");
        if let Some(url) = &smtp_url
            && !(url.starts_with("smtp://") || url.starts_with("smtps://"))
        {
            problems.push("SMTP_URL: must start with `smtp://` or `smtps://`".to_owned());
        }
        let from = var("EMAIL_FROM").unwrap_or_else(|| DEFAULT_EMAIL_FROM.to_owned());
        if !from.contains('@') {
            problems.push(format!(
                "EMAIL_FROM: `{from}` is not a mailbox like `Acme <no-reply@acme.com>`"
            ));
        }
        let public_url = var("PUBLIC_URL")
            .map(|v| v.trim_end_matches('/').to_owned())
            .unwrap_or_else(|| format!("http://{host}:{port}"));
        if !(public_url.starts_with("http://") || public_url.starts_with("https://")) {
            problems.push("PUBLIC_URL: must be an http(s) URL".to_owned());
        }
        let verification = match var("EMAIL_VERIFICATION").as_deref().map(str::trim) {
            None | Some("optional") => EmailVerification::Optional,
            Some("required") => EmailVerification::Required,
            Some("off") => EmailVerification::Off,
            Some(other) => {
                problems.push(format!(
                    "EMAIL_VERIFICATION: `{other}` is not `optional`, `required` or `off`"
                ));
                EmailVerification::Optional
            }
        };
        let email = EmailConfig {
            smtp_url,
            from,
            public_url,
            verification,
            retry_base: Duration::from_millis(parse_or(&var, "EMAIL_RETRY_BASE_MS", 5000u64, &mut problems)),
        };
        if workers == Some(0) {
            problems.push("WORKERS: must be at least 1".to_owned());
        }
        let data_dir = var("DATA_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| data_dir_for(&database_url));

        let clerk = ClerkConfig {
            jwt_key: var("CLERK_JWT_KEY"),
            jwks_url: var("CLERK_JWKS_URL"),
            jwks_min_refetch: Duration::from_secs(parse_or(&var, "CLERK_JWKS_MIN_REFETCH", 30u64, &mut problems)),
            issuer: var("CLERK_ISSUER"),
            authorized_parties: var("CLERK_AUTHORIZED_PARTIES").map(|v| list(&v)).unwrap_or_default(),
            webhook_signing_secret: var("CLERK_WEBHOOK_SIGNING_SECRET"),
        };
        if clerk.jwt_key.is_some() && clerk.jwks_url.is_some() {
            problems.push("CLERK_JWT_KEY and CLERK_JWKS_URL: set one, not both".to_owned());
        }
        if let Some(url) = &clerk.jwks_url
            && !(url.starts_with("https://") || url.starts_with("http://"))
        {
            problems.push("CLERK_JWKS_URL: must be an http(s) URL".to_owned());
        }
        if (clerk.jwt_key.is_some() || clerk.jwks_url.is_some()) && clerk.issuer.is_none() {
            problems.push("CLERK_ISSUER: required when CLERK_JWT_KEY or CLERK_JWKS_URL is set".to_owned());
        }

        let oauth_providers = oauth_providers(&var, app_env, &mut problems);

        if app_env == AppEnv::Production {
            if secret_key.is_none() {
                problems.push(
                    "SECRET_KEY: required when APP_ENV=production (development generates one; production must not)"
                        .to_owned(),
                );
            }
            if signing_key.is_none() {
                problems.push(
                    "SIGNING_KEY: required when APP_ENV=production (create one with `gatehouse keys generate`)"
                        .to_owned(),
                );
            }
        }

        if !problems.is_empty() {
            return Err(ConfigError(problems));
        }
        Ok(Self {
            app_env,
            database_url,
            host,
            port,
            secret_key,
            signing_key,
            signing_keys_dir,
            data_dir,
            issuer,
            allowed_origins,
            session_token_lifetime,
            session_lifetime,
            rate_limit,
            max_token_age,
            redis_url: var("REDIS_URL"),
            redis_key_prefix: var("REDIS_KEY_PREFIX").unwrap_or_else(|| "gatehouse:".to_owned()),
            trust_proxy_headers,
            clerk,
            webhook_retry_base,
            retention: Duration::from_secs(retention_days * 86_400),
            audit_retention: Duration::from_secs(audit_retention_days * 86_400),
            workers,
            email,
            invitation_lifetime,
            app_name,
            oauth_providers,
        })
    }

    pub fn app_env_name(&self) -> &'static str {
        match self.app_env {
            AppEnv::Development => "development",
            AppEnv::Production => "production",
        }
    }

    pub fn is_production(&self) -> bool {
        self.app_env == AppEnv::Production
    }

    pub fn is_origin_allowed(&self, origin: &str) -> bool {
        self.allowed_origins.iter().any(|allowed| allowed == origin)
    }
}

fn parse_or<T: std::str::FromStr>(
    var: &impl Fn(&str) -> Option<String>,
    name: &str,
    default: T,
    problems: &mut Vec<String>,
) -> T {
    match var(name) {
        None => default,
        Some(raw) => raw.trim().parse().unwrap_or_else(|_| {
            problems.push(format!("{name}: `{raw}` is not a valid value"));
            default
        }),
    }
}

fn list(value: &str) -> Vec<String> {
    value
        .split(',')
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect()
}

/// The folder beside the SQLite file, or `./data` for PostgreSQL.
fn data_dir_for(database_url: &str) -> PathBuf {
    if let Some(rest) = database_url.strip_prefix("sqlite:") {
        let path = rest.trim_start_matches("//").split('?').next().unwrap_or_default();
        if !path.is_empty()
            && path != ":memory:"
            && let Some(parent) = std::path::Path::new(path).parent()
            && !parent.as_os_str().is_empty()
        {
            return parent.to_path_buf();
        }
    }
    PathBuf::from("data")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Config::from_lookup(|name| map.get(name).cloned())
    }

    #[test]
    fn defaults_are_a_working_development_setup() {
        let config = config(&[]).unwrap();
        assert_eq!(config.database_url, DEFAULT_DATABASE_URL);
        assert_eq!(config.port, 8080);
        assert_eq!(config.issuer, "http://127.0.0.1:8080");
        assert_eq!(config.session_token_lifetime, Duration::from_secs(60));
        assert_eq!(config.data_dir, PathBuf::from("data"));
        assert!(config.is_origin_allowed("http://localhost:8080"));
        assert!(!config.is_origin_allowed("http://evil.example"));
        assert_eq!(
            config.rate_limit,
            RateLimit::PerWindow {
                requests: 10,
                window: Duration::from_secs(10)
            }
        );
    }

    #[test]
    fn production_refuses_development_defaults() {
        let err = config(&[("APP_ENV", "production")]).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("SECRET_KEY"), "{text}");
        assert!(text.contains("SIGNING_KEY"), "{text}");
    }

    #[test]
    fn every_problem_is_reported_by_name() {
        let err = config(&[("PORT", "eighty"), ("RATE_LIMIT", "lots"), ("APP_ENV", "staging")]).unwrap_err();
        assert_eq!(err.0.len(), 3, "{err}");
    }

    #[test]
    fn rate_limit_forms() {
        assert_eq!(RateLimit::parse("off").unwrap(), RateLimit::Off);
        assert_eq!(
            RateLimit::parse("100/1m").unwrap(),
            RateLimit::PerWindow {
                requests: 100,
                window: Duration::from_secs(60)
            }
        );
        assert!(RateLimit::parse("0/10s").is_err());
        assert!(RateLimit::parse("10/10x").is_err());
        assert!(RateLimit::parse("10").is_err());
    }

    #[test]
    fn data_dir_sits_beside_the_sqlite_file() {
        assert_eq!(data_dir_for("sqlite:///tmp/x/app.db"), PathBuf::from("/tmp/x"));
        assert_eq!(
            data_dir_for("sqlite://data/gatehouse.db?mode=rwc"),
            PathBuf::from("data")
        );
        assert_eq!(data_dir_for("postgres://localhost/app"), PathBuf::from("data"));
    }

    #[test]
    fn oauth_providers_are_read_and_checked() {
        let okta = [
            ("OIDC_PROVIDERS", "Okta, google"),
            ("OIDC_OKTA_ISSUER", "https://acme.okta.com/"),
            ("OIDC_OKTA_CLIENT_ID", "id"),
            ("OIDC_OKTA_CLIENT_SECRET", "secret"),
            ("OIDC_GOOGLE_ISSUER", "http://127.0.0.1:8081"),
            ("OIDC_GOOGLE_CLIENT_ID", "gid"),
            ("OIDC_GOOGLE_CLIENT_SECRET", "gsecret"),
            ("OAUTH_GITHUB_CLIENT_ID", "ghid"),
            ("OAUTH_GITHUB_CLIENT_SECRET", "ghsecret"),
        ];
        let providers = config(&okta).unwrap().oauth_providers;
        let names: Vec<&str> = providers.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["okta", "google", "github"]);
        assert!(matches!(&providers[0].kind, OAuthProviderKind::Oidc { issuer } if issuer == "https://acme.okta.com"));
        assert!(
            matches!(&providers[2].kind, OAuthProviderKind::GitHub { api_url, .. } if api_url == "https://api.github.com")
        );

        // http:// only on loopback, only in development.
        let err = config(&[
            ("OIDC_PROVIDERS", "corp"),
            ("OIDC_CORP_ISSUER", "http://sso.corp.example"),
            ("OIDC_CORP_CLIENT_ID", "id"),
            ("OIDC_CORP_CLIENT_SECRET", "s"),
        ])
        .unwrap_err();
        assert!(
            err.0
                .iter()
                .any(|p| p.starts_with("OIDC_CORP_ISSUER: must be an https://")),
            "{err}"
        );
        for loopback in [
            "http://localhost:8081",
            "http://[::1]:8081",
            "http://127.0.0.2/realms/x",
        ] {
            let ok = config(&[
                ("OIDC_PROVIDERS", "kc"),
                ("OIDC_KC_ISSUER", loopback),
                ("OIDC_KC_CLIENT_ID", "id"),
                ("OIDC_KC_CLIENT_SECRET", "s"),
            ]);
            assert!(ok.is_ok(), "{loopback}");
        }
        let err = config(&[
            ("APP_ENV", "production"),
            ("OIDC_PROVIDERS", "kc"),
            ("OIDC_KC_ISSUER", "http://localhost:8081"),
            ("OIDC_KC_CLIENT_ID", "id"),
            ("OIDC_KC_CLIENT_SECRET", "s"),
        ])
        .unwrap_err();
        assert!(
            err.0
                .iter()
                .any(|p| p == "OIDC_KC_ISSUER: must be an https:// URL in production"),
            "{err}"
        );
        // A userinfo-looking host is not loopback.
        assert!(check_issuer("http://127.0.0.1.evil.example", AppEnv::Development).is_err());
        assert!(check_issuer("http://localhost@evil.example", AppEnv::Development).is_err());

        // Missing parts, bad names, duplicates and half a GitHub are each reported.
        let err = config(&[
            ("OIDC_PROVIDERS", "okta,okta,bad name,github"),
            ("OIDC_OKTA_ISSUER", "https://acme.okta.com"),
            ("OAUTH_GITHUB_CLIENT_ID", "ghid"),
        ])
        .unwrap_err();
        for expected in [
            "OIDC_OKTA_CLIENT_ID: required because OIDC_PROVIDERS lists `okta`",
            "OIDC_OKTA_CLIENT_SECRET: required because OIDC_PROVIDERS lists `okta`",
            "OIDC_PROVIDERS: `okta` is listed twice",
            "OIDC_PROVIDERS: `github` is configured by OAUTH_GITHUB_CLIENT_ID/_SECRET, not here",
            "OAUTH_GITHUB_CLIENT_ID and OAUTH_GITHUB_CLIENT_SECRET: set both, or neither",
        ] {
            assert!(err.0.iter().any(|p| p == expected), "missing `{expected}` in {err}");
        }
        assert!(
            err.0.iter().any(|p| p.starts_with("OIDC_PROVIDERS: `bad name`")),
            "{err}"
        );
    }
}
