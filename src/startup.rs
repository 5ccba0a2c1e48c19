//! Builds the application from a [`Config`]: storage, keys, state and the HTTP server.
//! `main` and the tests both go through [`Application::build`].

use std::net::TcpListener;
use std::path::Path;
use std::sync::Arc;

use actix_session::SessionMiddleware;
use actix_session::config::PersistentSession;
use actix_session::storage::CookieSessionStore;
use actix_web::cookie::{Key, SameSite};
use actix_web::dev::Server;
use actix_web::middleware::from_fn;
use actix_web::{App, HttpServer, web};
use redis::aio::ConnectionManager;
use utoipa_actix_web::AppExt;

use crate::auth::clerk::ClerkVerifier;
use crate::auth::client_cookie::CLIENT_COOKIE;
use crate::auth::guard::{Authenticator, guard};
use crate::auth::keys::{KeyError, KeyRing, write_private};
use crate::auth::policy::RoutePolicy;
use crate::auth::rate_limit::{RateLimiterSet, connect_redis};
use crate::auth::revocation::{self, RevocationList};
use crate::auth::throttle::SignInThrottle;
use crate::auth::tokens::CLOCK_SKEW_SECS;
use crate::auth::tokens::{SessionTokenIssuer, SessionTokenVerifier};
use crate::config::Config;
use crate::db::Db;
use crate::telemetry::{Metrics, request_context};
use crate::{error, openapi, routes};

/// Everything a handler may need, shared by all workers.
pub struct AppState {
    pub config: Arc<Config>,
    pub db: Db,
    pub keys: Arc<KeyRing>,
    pub issuer: SessionTokenIssuer,
    pub authenticator: Authenticator,
    pub policy: RoutePolicy,
    pub rate_limits: Option<RateLimiterSet>,
    pub revocations: Arc<RevocationList>,
    pub throttle: SignInThrottle,
    pub metrics: Metrics,
    pub secret_key: String,
    /// Background tasks (housekeeping, the revocation listener), stopped with the server.
    background: std::sync::Mutex<Vec<tokio::task::AbortHandle>>,
    /// Tells the webhook worker to finish its batch and stop.
    outbox_shutdown: tokio::sync::watch::Sender<bool>,
    outbox_task: std::sync::Mutex<Option<tokio::task::JoinHandle<()>>>,
}

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("database {0}")]
    Database(#[from] sqlx::Error),
    #[error("migrations failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("signing keys: {0}")]
    Keys(#[from] KeyError),
    #[error(transparent)]
    Clerk(#[from] crate::auth::clerk::ClerkKeyError),
    #[error(transparent)]
    Redis(#[from] crate::auth::rate_limit::RedisUnavailable),
    #[error("could not listen on {0}: {1}")]
    Bind(String, #[source] std::io::Error),
}

impl AppState {
    /// Connects and migrates the database, loads (or in development creates) the
    /// secret key and the signing keys.
    pub async fn build(config: Config) -> Result<Self, StartupError> {
        let db = Db::connect(&config.database_url).await?;
        db.migrate().await?;
        let redis = match &config.redis_url {
            Some(url) => Some(connect_redis(url).await?),
            None => None,
        };
        let state = Self::assemble(config, db, redis)?;
        state.revocations.catch_up(&state.db).await?;
        Ok(state)
    }

    fn assemble(config: Config, db: Db, redis: Option<ConnectionManager>) -> Result<Self, StartupError> {
        let (rate_limits, throttle) = match redis {
            Some(conn) => (
                RateLimiterSet::redis(config.rate_limit, conn.clone(), &config.redis_key_prefix),
                SignInThrottle::default().with_redis(conn, &config.redis_key_prefix),
            ),
            None => (RateLimiterSet::in_memory(config.rate_limit), SignInThrottle::default()),
        };
        let secret_key = match &config.secret_key {
            Some(key) => key.clone(),
            None => dev_secret_key(&config.data_dir)?,
        };
        let keys = Arc::new(KeyRing::load(&config)?);
        let lifetime = config.session_token_lifetime.as_secs() as i64;
        Ok(Self {
            issuer: SessionTokenIssuer::new(keys.clone(), config.issuer.clone(), lifetime),
            authenticator: Authenticator::new(
                SessionTokenVerifier::new(keys.clone(), config.issuer.clone(), config.allowed_origins.clone()),
                ClerkVerifier::from_config(&config.clerk, &config.allowed_origins)?,
                config.max_token_age.map(|age| age.as_secs() as i64),
            ),
            policy: RoutePolicy::default(),
            rate_limits,
            // A stopped session's last token may verify for its lifetime plus the skew.
            revocations: Arc::new(RevocationList::new(
                config.session_token_lifetime + std::time::Duration::from_secs(CLOCK_SKEW_SECS as u64 + 1),
            )),
            keys,
            db,
            throttle,
            metrics: Metrics::default(),
            secret_key,
            config: Arc::new(config),
            background: Default::default(),
            outbox_shutdown: tokio::sync::watch::channel(false).0,
            outbox_task: Default::default(),
        })
    }

    /// Records that sessions stopped (ended, revoked, expired): their tokens are refused
    /// from the next request on, here and, on PostgreSQL, on every instance.
    pub async fn sessions_stopped(&self, ids: &[String]) {
        self.revocations.insert(ids.iter().map(String::as_str));
        if let Err(e) = revocation::announce(&self.db, ids).await {
            // The other instances' 30 s catch-up still learns it from the table.
            tracing::warn!(error = %e, "could not announce stopped sessions");
        }
    }

    fn spawn_background(&self, task: impl std::future::Future<Output = ()> + Send + 'static) {
        let handle = tokio::spawn(task).abort_handle();
        self.background.lock().expect("background lock").push(handle);
    }

    /// Lets the webhook worker finish the deliveries in flight (up to 30 s), then stops
    /// the other background tasks.
    pub async fn shut_down(&self) {
        let _ = self.outbox_shutdown.send(true);
        let task = self.outbox_task.lock().expect("outbox lock").take();
        if let Some(task) = task
            && tokio::time::timeout(std::time::Duration::from_secs(30), task)
                .await
                .is_err()
        {
            tracing::warn!(
                "webhook deliveries still in flight after 30 s; their leases will expire and they will be retried"
            );
        }
        self.stop_background();
    }

    /// Stops the background tasks at once (a test ending; deliveries in flight are
    /// abandoned as in a crash, and retried when their lease ends).
    pub fn stop_background(&self) {
        for task in self.background.lock().expect("background lock").drain(..) {
            task.abort();
        }
    }

    /// The key that signs and encrypts the `__client` cookie, derived from the secret key.
    fn cookie_key(&self) -> Key {
        let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA512, self.secret_key.as_bytes());
        let tag = aws_lc_rs::hmac::sign(&key, b"gatehouse __client cookie key");
        Key::from(tag.as_ref())
    }
}

/// The development secret key: generated once, stored beside the database.
fn dev_secret_key(data_dir: &Path) -> Result<String, KeyError> {
    let path = data_dir.join("secret_key");
    match std::fs::read_to_string(&path) {
        Ok(key) => Ok(key.trim().to_owned()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::create_dir_all(data_dir).map_err(|e| KeyError::Io(data_dir.display().to_string(), e))?;
            let key = format!("sk_test_{}", crate::ids::random_token(32));
            write_private(&path, &key)?;
            Ok(key)
        }
        Err(e) => Err(KeyError::Io(path.display().to_string(), e)),
    }
}

/// A bound, ready-to-run server.
pub struct Application {
    port: u16,
    server: Server,
    state: web::Data<AppState>,
}

impl Application {
    /// Builds the state and binds `HOST:PORT` (port 0 picks a free one, as tests do).
    pub async fn build(config: Config) -> Result<Self, StartupError> {
        let state = AppState::build(config).await?;
        Self::from_state(state)
    }

    pub fn from_state(state: AppState) -> Result<Self, StartupError> {
        let address = format!("{}:{}", state.config.host, state.config.port);
        let listener = TcpListener::bind(&address).map_err(|e| StartupError::Bind(address.clone(), e))?;
        let port = listener
            .local_addr()
            .map_err(|e| StartupError::Bind(address, e))?
            .port();
        let state = web::Data::new(state);
        let server = run(listener, state.clone())?;
        state.spawn_background(crate::jobs::housekeeping::run(state.clone()));
        let outbox = tokio::spawn(crate::webhooks::outbox::run(
            state.clone(),
            state.outbox_shutdown.subscribe(),
        ));
        state
            .background
            .lock()
            .expect("background lock")
            .push(outbox.abort_handle());
        *state.outbox_task.lock().expect("outbox lock") = Some(outbox);
        if state.db.backend == crate::db::Backend::Postgres {
            state.spawn_background(revocation::listen(
                state.revocations.clone(),
                state.db.clone(),
                state.config.database_url.clone(),
            ));
        }
        Ok(Self { port, server, state })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn state(&self) -> web::Data<AppState> {
        self.state.clone()
    }

    /// A handle that stops the server (tests use it to shut an instance down).
    pub fn handle(&self) -> actix_web::dev::ServerHandle {
        self.server.handle()
    }

    /// Serves until SIGINT/SIGTERM, then finishes in-flight requests and stops the
    /// background tasks.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let result = self.server.await;
        self.state.shut_down().await;
        result
    }
}

fn run(listener: TcpListener, state: web::Data<AppState>) -> Result<Server, StartupError> {
    let api = openapi::api_doc();
    let cookie_key = state.cookie_key();
    let secure = state.config.is_production();
    // The device cookie outlives the browser: it lives as long as a session can
    // (`SESSION_LIFETIME`), and sign-in (which changes it) renews that.
    let client_cookie_ttl = actix_web::cookie::time::Duration::seconds(state.config.session_lifetime.as_secs() as i64);
    let address = listener.local_addr().map(|a| a.to_string()).unwrap_or_default();
    let server = HttpServer::new(move || {
        let session = SessionMiddleware::builder(CookieSessionStore::default(), cookie_key.clone())
            .cookie_name(CLIENT_COOKIE.to_owned())
            .cookie_http_only(true)
            .cookie_same_site(SameSite::Lax)
            .cookie_secure(secure)
            .session_lifecycle(PersistentSession::default().session_ttl(client_cookie_ttl))
            .build();
        App::new()
            .into_utoipa_app()
            .configure(routes::configure)
            .into_app()
            .configure(|cfg| routes::configure_unlisted(cfg, api.clone()))
            .app_data(state.clone())
            .app_data(error::json_config())
            .app_data(error::path_config())
            .app_data(error::query_config())
            .default_service(web::to(error::not_found))
            .wrap(from_fn(guard))
            .wrap(from_fn(crate::cors::cors))
            .wrap(session)
            .wrap(from_fn(request_context))
    })
    .listen(listener)
    .map_err(|e| StartupError::Bind(address, e))?
    .shutdown_timeout(30)
    .run();
    Ok(server)
}
