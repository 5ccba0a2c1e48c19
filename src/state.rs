//! The application state: what handlers, services and background jobs share. Built
//! once per process from a [`Config`] by [`AppState::build`]; the middlewares get only
//! the narrow parts they need ([`AppState::register`] puts each in the app data).

use std::path::Path;
use std::sync::{Arc, Mutex};

use actix_web::cookie::Key;
use actix_web::web;
use redis::aio::ConnectionManager;

use crate::auth::authenticator::Authenticator;
use crate::auth::clerk::{ClerkKeyError, ClerkVerifier};
use crate::auth::codes::Codes;
use crate::auth::guard::Guard;
use crate::auth::keys::{KeyError, KeyRing, write_private};
use crate::auth::minting::TokenMinter;
use crate::auth::policy::RoutePolicy;
use crate::auth::rate_limit::{RateLimiterSet, RedisUnavailable, connect_redis};
use crate::auth::revocation::RevocationList;
use crate::auth::secret_key::SecretKey;
use crate::auth::throttle::SignInThrottle;
use crate::auth::tokens::{CLOCK_SKEW_SECS, SessionTokenVerifier};
use crate::config::Config;
use crate::db::Db;
use crate::mail::transport::{Mailer, MailerError};
use crate::telemetry::Metrics;

/// Everything a handler may need, shared by all workers.
pub struct AppState {
    pub config: Arc<Config>,
    pub db: Db,
    pub keys: Arc<KeyRing>,
    /// Mints session and template tokens, and the `__session` cookie.
    pub tokens: Arc<TokenMinter>,
    /// The guard middleware's own state (policy, authenticator, rate limits).
    pub guard: Arc<Guard>,
    /// Sessions stopped within a token's lifetime (shared with the guard).
    pub revocations: Arc<RevocationList>,
    pub throttle: SignInThrottle,
    pub metrics: Arc<Metrics>,
    pub secret_key: Arc<SecretKey>,
    /// One-time codes and tokens (keyed hashes).
    pub codes: Codes,
    /// Seals secrets the server reads back (TOTP seeds) at rest.
    pub sealer: crate::auth::sealing::Sealer,
    /// Social and enterprise sign-in providers (`OIDC_PROVIDERS`, `OAUTH_GITHUB_*`).
    pub oauth: crate::auth::oauth::OAuthProviders,
    /// Sends the email outbox (SMTP, or the log in development).
    pub mailer: Arc<Mailer>,
    pub background: Background,
}

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("database {0}")]
    Database(#[from] sqlx::Error),
    #[error("migrations failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("signing keys: {0}")]
    Keys(#[from] KeyError),
    #[error(transparent)]
    Clerk(#[from] ClerkKeyError),
    #[error(transparent)]
    Redis(#[from] RedisUnavailable),
    #[error(transparent)]
    Mail(#[from] MailerError),
}

impl AppState {
    /// Connects and migrates the database, connects Redis when configured, loads (or in
    /// development creates) the secret key and the signing keys.
    pub async fn build(config: Config) -> Result<Self, StateError> {
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

    fn assemble(config: Config, db: Db, redis: Option<ConnectionManager>) -> Result<Self, StateError> {
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
        let config = Arc::new(config);
        let metrics = Arc::new(Metrics::default());
        let tokens = Arc::new(TokenMinter::new(
            keys.clone(),
            config.issuer.clone(),
            config.session_token_lifetime.as_secs() as i64,
            config.is_production(),
            db.clone(),
            metrics.clone(),
        ));
        // A stopped session's last token may verify for its lifetime plus the skew.
        let revocations = Arc::new(RevocationList::new(
            config.session_token_lifetime + std::time::Duration::from_secs(CLOCK_SKEW_SECS as u64 + 1),
        ));
        let guard = Arc::new(Guard {
            policy: RoutePolicy::default(),
            authenticator: Arc::new(Authenticator::new(
                SessionTokenVerifier::new(keys.clone(), config.issuer.clone(), config.allowed_origins.clone()),
                ClerkVerifier::from_config(&config.clerk, &config.allowed_origins)?,
                config.max_token_age.map(|age| age.as_secs() as i64),
            )),
            revocations: revocations.clone(),
            rate_limits: rate_limits.map(Arc::new),
            config: config.clone(),
            metrics: metrics.clone(),
            tokens: tokens.clone(),
            db: db.clone(),
            api_keys: Default::default(),
            worker_tokens: Default::default(),
        });
        let mailer = Arc::new(Mailer::from_config(&config.email)?);
        Ok(Self {
            codes: Codes::new(&secret_key),
            sealer: crate::auth::sealing::Sealer::new(&secret_key),
            mailer,
            oauth: crate::auth::oauth::OAuthProviders::from_config(&config),
            config,
            db,
            keys,
            tokens,
            guard,
            revocations,
            throttle,
            metrics,
            secret_key: Arc::new(SecretKey::new(secret_key)),
            background: Background::default(),
        })
    }

    /// Registers the state and the narrow parts the middlewares and extractors read.
    pub fn register(state: &web::Data<AppState>, cfg: &mut web::ServiceConfig) {
        cfg.app_data(state.clone())
            // A copy per worker (see `Guard`): its `Data` count is this worker's alone.
            .app_data(web::Data::new(Guard::clone(&state.guard)))
            .app_data(web::Data::from(state.config.clone()))
            .app_data(web::Data::from(state.secret_key.clone()))
            .app_data(web::Data::new(state.db.clone()));
    }

    /// The key that signs and encrypts the `__client` cookie, derived from the secret key.
    pub fn cookie_key(&self) -> Key {
        let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA512, self.secret_key.expose().as_bytes());
        let tag = aws_lc_rs::hmac::sign(&key, b"gatehouse __client cookie key");
        Key::from(tag.as_ref())
    }

    /// Lets the webhook worker finish the deliveries in flight (up to 30 s), then stops
    /// the other background tasks.
    pub async fn shut_down(&self) {
        self.background.shut_down().await;
    }

    /// Stops the background tasks at once (a test ending; deliveries in flight are
    /// abandoned as in a crash, and retried when their lease ends).
    pub fn stop_background(&self) {
        self.background.stop();
    }
}

/// The background tasks of this instance (housekeeping, the `LISTEN` connection, the
/// outbox and mail workers), stopped with the server.
#[derive(Default)]
pub struct Background {
    tasks: Mutex<Vec<tokio::task::AbortHandle>>,
    /// Tells the workers that finish what they hold (outbox, mail) to stop.
    shutdown: tokio::sync::watch::Sender<bool>,
    graceful: Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

impl Background {
    pub fn spawn(&self, task: impl std::future::Future<Output = ()> + Send + 'static) {
        let handle = tokio::spawn(task).abort_handle();
        self.tasks.lock().expect("background lock").push(handle);
    }

    /// Starts a worker that is told (not aborted) to stop, and finishes its work in
    /// flight first.
    pub fn spawn_graceful<F, Fut>(&self, worker: F)
    where
        F: FnOnce(tokio::sync::watch::Receiver<bool>) -> Fut,
        Fut: std::future::Future<Output = ()> + Send + 'static,
    {
        let handle = tokio::spawn(worker(self.shutdown.subscribe()));
        self.tasks.lock().expect("background lock").push(handle.abort_handle());
        self.graceful.lock().expect("background lock").push(handle);
    }

    async fn shut_down(&self) {
        let _ = self.shutdown.send(true);
        let workers: Vec<_> = self.graceful.lock().expect("background lock").drain(..).collect();
        let all = futures_util::future::join_all(workers);
        if tokio::time::timeout(std::time::Duration::from_secs(30), all)
            .await
            .is_err()
        {
            tracing::warn!("deliveries still in flight after 30 s; their leases will expire and they will be retried");
        }
        self.stop();
    }

    fn stop(&self) {
        for task in self.tasks.lock().expect("background lock").drain(..) {
            task.abort();
        }
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
