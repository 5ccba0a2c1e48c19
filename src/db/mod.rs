//! The storage layer: one module per table, one code path for SQLite and PostgreSQL
//! (sqlx `Any`). Handlers never build SQL; every function here takes what scopes it.

pub mod actor_tokens;
pub mod api_keys;
pub mod audit;
pub mod clients;
pub mod codes;
pub mod emails;
pub mod events;
pub mod idempotency;
pub mod identities;
pub mod invitations;
pub mod items;
pub mod jwt_templates;
pub mod listener;
pub mod memberships;
mod migrations;
pub mod org_settings;
pub mod organizations;
pub mod pagination;
pub mod retention;
pub mod roles;
pub mod second_factor;
pub mod sessions;
pub mod sign_in_attempts;
pub mod sign_ups;
pub mod sync;
pub mod users;
pub mod webhooks;

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;

use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::{Any, AnyPool, Executor};

/// Connections idle longer than this are checked before they are handed out.
const IDLE_BEFORE_PING: Duration = Duration::from_secs(10);

/// Which SQL dialect `DATABASE_URL` points at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

impl Dialect {
    pub fn from_url(url: &str) -> Self {
        if url.starts_with("sqlite:") {
            Self::Sqlite
        } else {
            Self::Postgres
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Sqlite => "sqlite",
            Self::Postgres => "postgres",
        }
    }
}

/// The connection pool and the dialect it speaks.
#[derive(Debug, Clone)]
pub struct Db {
    pub pool: AnyPool,
    pub dialect: Dialect,
    /// The URL the pool connects with (see [`postgres_url`]); listeners use it too.
    url: Arc<str>,
}

/// A transaction on either dialect.
pub type Transaction = sqlx::Transaction<'static, Any>;

/// The executor type the repository functions accept: `&AnyPool` or `&mut *tx`.
pub trait Exec<'e>: Executor<'e, Database = Any> {}
impl<'e, T: Executor<'e, Database = Any>> Exec<'e> for T {}

impl Db {
    /// Connects (creating the SQLite file and its folder on first run).
    pub async fn connect(url: &str) -> Result<Self, sqlx::Error> {
        install_default_drivers();
        let dialect = Dialect::from_url(url);
        let url: Arc<str> = match dialect {
            Dialect::Sqlite => prepare_sqlite_url(url)?.into(),
            Dialect::Postgres => {
                let effective = postgres_url(url, std::env::var_os("PGSSLMODE").is_some());
                if let Cow::Owned(_) = effective {
                    tracing::info!(
                        "PostgreSQL on a loopback address without `sslmode`: connecting without TLS (sslmode=disable)"
                    );
                }
                effective.into()
            }
        };
        let pool = AnyPoolOptions::new()
            .max_connections(match dialect {
                Dialect::Sqlite => 8,
                Dialect::Postgres => 16,
            })
            // While the database is away a request waits this long, then answers 503.
            .acquire_timeout(Duration::from_secs(3))
            // sqlx pings every connection it hands out by default: a round trip before
            // every query. Only connections idle for a while are checked; one that died
            // meanwhile fails its query (503) and is discarded when it is given back
            // (sqlx pings on release, off the request path).
            .test_before_acquire(false)
            .before_acquire(|conn, meta| {
                Box::pin(async move {
                    if meta.idle_for > IDLE_BEFORE_PING {
                        sqlx::Connection::ping(conn).await?;
                    }
                    Ok(true)
                })
            })
            .after_connect(move |conn, _meta| {
                Box::pin(async move {
                    if dialect == Dialect::Sqlite {
                        // WAL lets readers proceed while one writer commits.
                        conn.execute("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 5000;")
                            .await?;
                    }
                    Ok(())
                })
            })
            .connect(&url)
            .await?;
        Ok(Self { pool, dialect, url })
    }

    /// The URL the pool connects with, for connections of its own (`LISTEN`).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Begins a transaction. On SQLite it takes the write lock at once (`BEGIN
    /// IMMEDIATE`): a deferred transaction that reads and then writes fails with
    /// `SQLITE_BUSY` at once when another connection committed in between (the busy
    /// timeout does not apply to that upgrade), which under load turned into 503s. On
    /// PostgreSQL a plain `BEGIN`.
    pub async fn begin(&self) -> Result<Transaction, sqlx::Error> {
        match self.dialect {
            Dialect::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await,
            Dialect::Postgres => self.pool.begin().await,
        }
    }

    /// Applies the migrations of this backend that have not run yet.
    pub async fn migrate(&self) -> Result<(), sqlx::migrate::MigrateError> {
        migrations::migrator().run(&self.pool).await
    }

    /// A cheap round trip, for `/readyz`.
    pub async fn ping(&self) -> Result<(), sqlx::Error> {
        sqlx::query("SELECT 1").execute(&self.pool).await.map(|_| ())
    }

    /// `NOTIFY channel, payload` (PostgreSQL): every instance's listener hears it.
    pub async fn notify(&self, channel: &str, payload: &str) -> Result<(), sqlx::Error> {
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(channel)
            .bind(payload)
            .execute(&self.pool)
            .await
            .map(|_| ())
    }
}

/// On PostgreSQL, `NOTIFY channel` inside the caller's transaction: the workers listening
/// hear it when (and only if) that transaction commits. Nothing on SQLite, which has no
/// notifications (its workers poll).
pub async fn notify_on_commit(conn: &mut sqlx::AnyConnection, channel: &str) -> Result<(), sqlx::Error> {
    if conn.backend_name() != "PostgreSQL" {
        return Ok(());
    }
    sqlx::query("SELECT pg_notify($1, '')")
        .bind(channel)
        .execute(conn)
        .await
        .map(|_| ())
}

/// A write that lost a race and may simply be tried again: a unique violation from a
/// racing insert, or SQLite's busy/snapshot errors (PostgreSQL serializes with locks).
pub fn is_contention(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::Database(db) => {
            db.is_unique_violation() || matches!(db.code().as_deref(), Some("5" | "6" | "261" | "517"))
        }
        _ => false,
    }
}

/// The PostgreSQL URL to connect with. A server on a loopback address (`localhost`,
/// `127.0.0.0/8`, `::1`) is reached without TLS unless the URL (or `PGSSLMODE`) asks for
/// an `sslmode`: sqlx's default, `prefer`, encrypts whenever the server offers TLS (as
/// Debian's packaged PostgreSQL does), and on loopback that protects nothing while
/// costing both ends a third of their CPU per query (`scripts/bench-items`). Any
/// explicit `sslmode` is kept as given; Unix sockets are never encrypted anyway.
pub fn postgres_url(url: &str, sslmode_from_env: bool) -> Cow<'_, str> {
    let (before_query, query) = url.split_once('?').unwrap_or((url, ""));
    let explicit = query
        .split('&')
        .any(|pair| matches!(pair.split('=').next(), Some("sslmode" | "ssl-mode")));
    let loopback = url_host(before_query).is_some_and(|host| {
        host.eq_ignore_ascii_case("localhost")
            || host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
    });
    // A `host=` parameter overrides the URL's host (a socket folder, or another server).
    let host_param = query.split('&').any(|pair| pair.starts_with("host="));
    if explicit || sslmode_from_env || !loopback || host_param {
        return Cow::Borrowed(url);
    }
    let separator = if url.contains('?') { '&' } else { '?' };
    Cow::Owned(format!("{url}{separator}sslmode=disable"))
}

/// The host of `scheme://[user[:password]@]host[:port][/path]`, if it names one.
fn url_host(before_query: &str) -> Option<&str> {
    let rest = before_query.split_once("://")?.1;
    let authority = rest.split('/').next().unwrap_or(rest);
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = if host_port.starts_with('[') {
        host_port.split_once(']')?.0.trim_start_matches('[')
    } else {
        host_port.split(':').next().unwrap_or(host_port)
    };
    (!host.is_empty()).then_some(host)
}

/// Makes sure the SQLite file's folder exists and that the file is created on first use.
fn prepare_sqlite_url(url: &str) -> Result<String, sqlx::Error> {
    let rest = url.trim_start_matches("sqlite:");
    let path = rest.trim_start_matches("//");
    let (path, query) = path.split_once('?').unwrap_or((path, ""));
    if path.is_empty() || path.starts_with(":memory:") {
        return Ok(url.to_owned());
    }
    if let Some(parent) = std::path::Path::new(path).parent()
        && !parent.as_os_str().is_empty()
    {
        std::fs::create_dir_all(parent).map_err(sqlx::Error::Io)?;
    }
    if query.split('&').any(|p| p.starts_with("mode=")) {
        Ok(url.to_owned())
    } else if query.is_empty() {
        Ok(format!("sqlite://{path}?mode=rwc"))
    } else {
        Ok(format!("sqlite://{path}?{query}&mode=rwc"))
    }
}

/// Reads a JSON object stored as TEXT, tolerating an empty column.
pub(crate) fn json_column(raw: Option<String>) -> serde_json::Value {
    raw.and_then(|s| serde_json::from_str(&s).ok())
        .unwrap_or_else(|| serde_json::Value::Object(Default::default()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_postgres_goes_without_tls_unless_asked() {
        let plain = |url| postgres_url(url, false).into_owned();
        assert_eq!(
            plain("postgres://postgres@127.0.0.1:5432/app"),
            "postgres://postgres@127.0.0.1:5432/app?sslmode=disable"
        );
        assert_eq!(
            plain("postgres://u:p@localhost/app?application_name=x"),
            "postgres://u:p@localhost/app?application_name=x&sslmode=disable"
        );
        assert_eq!(
            plain("postgres://u@[::1]:5432/app"),
            "postgres://u@[::1]:5432/app?sslmode=disable"
        );
        assert_eq!(
            plain("postgres://u@127.8.9.10/app"),
            "postgres://u@127.8.9.10/app?sslmode=disable"
        );
        // Kept as given: an explicit mode, PGSSLMODE, another host, a `host=` override,
        // a host that only starts like a loopback one, a password with an `@` in it.
        for url in [
            "postgres://u@127.0.0.1/app?sslmode=require",
            "postgres://u@localhost/app?ssl-mode=verify-full",
            "postgres://u@db.internal:5432/app",
            "postgres://u@10.0.0.5/app",
            "postgres://u@localhost/app?host=/var/run/postgresql",
            "postgres://u@127.0.0.1.evil.example/app",
            "postgres://u:p%40ss@localhost.evil.example/app",
            "postgres:///app",
        ] {
            assert_eq!(plain(url), url);
        }
        assert_eq!(
            postgres_url("postgres://u@127.0.0.1/app", true),
            "postgres://u@127.0.0.1/app"
        );
    }

    #[test]
    fn sqlite_urls_create_the_file() {
        assert_eq!(
            prepare_sqlite_url("sqlite:///tmp/gh-test-x/a.db").unwrap(),
            "sqlite:///tmp/gh-test-x/a.db?mode=rwc"
        );
        assert_eq!(
            prepare_sqlite_url("sqlite:///tmp/gh-test-x/a.db?mode=ro").unwrap(),
            "sqlite:///tmp/gh-test-x/a.db?mode=ro"
        );
    }
}
