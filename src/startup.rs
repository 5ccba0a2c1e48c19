//! Wiring only: binds the listener, builds the server around the [`AppState`] with its
//! middlewares, and starts the background jobs. `main` and the tests both go through
//! [`Application::build`].

use std::net::TcpListener;
use std::sync::Arc;

use actix_session::SessionMiddleware;
use actix_session::config::PersistentSession;
use actix_session::storage::CookieSessionStore;
use actix_web::cookie::SameSite;
use actix_web::dev::Server;
use actix_web::middleware::from_fn;
use actix_web::{App, HttpServer, web};
use utoipa_actix_web::AppExt;

use crate::auth::client_session::OnlyWhere;
use crate::auth::cookies::CLIENT_COOKIE;
use crate::auth::guard::guard;
use crate::auth::policy::uses_client_cookie;
use crate::auth::revocation;
use crate::config::Config;
use crate::db::Dialect;
use crate::db::listener::Listener;
use crate::state::{AppState, StateError};
use crate::telemetry::RequestContext;
use crate::{error, jobs, openapi, routes};

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    State(#[from] StateError),
    #[error("could not listen on {0}: {1}")]
    Bind(String, #[source] std::io::Error),
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
        start_background_jobs(&state);
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

fn start_background_jobs(state: &web::Data<AppState>) {
    state.background.spawn(jobs::housekeeping::run(state.clone()));
    // One listener connection (PostgreSQL) for the workers' channels and the revocations.
    let mut listener = Listener::default();
    let outbox_wake = jobs::Wake::new(&state.db, jobs::outbox::WAKE, &mut listener);
    let mail_wake = jobs::Wake::new(&state.db, jobs::mailer::WAKE, &mut listener);
    let announcements = revocation::Announcements {
        list: state.revocations.clone(),
        db: state.db.clone(),
    };
    listener.subscribe(revocation::CHANNEL, Arc::new(announcements));
    if state.db.dialect == Dialect::Postgres {
        state.background.spawn(listener.run(state.db.url().to_owned()));
    }
    let worker_state = state.clone();
    state
        .background
        .spawn_graceful(move |shutdown| jobs::outbox::run(worker_state, outbox_wake, shutdown));
    let (worker_state, mailer) = (state.clone(), state.mailer.clone());
    state
        .background
        .spawn_graceful(move |shutdown| jobs::mailer::run(worker_state, mailer, mail_wake, shutdown));
}

fn run(listener: TcpListener, state: web::Data<AppState>) -> Result<Server, StartupError> {
    let api = openapi::api_doc();
    state.metrics.register_routes(
        api.paths
            .paths
            .keys()
            .map(String::as_str)
            .chain(routes::UNLISTED_PATTERNS.iter().copied()),
    );
    // `/openapi.json` is serialized once here and shared by every worker: a copy of the
    // `OpenApi` value per worker (as `SwaggerUi::url` keeps one) held megabytes each.
    let api_json = web::Bytes::from(serde_json::to_vec(&api).expect("the OpenAPI document serializes"));
    drop(api);
    let cookie_key = state.cookie_key();
    let secure = state.config.is_production();
    // The device cookie outlives the browser: it lives as long as a session can
    // (`SESSION_LIFETIME`), and sign-in (which changes it) renews that.
    let client_cookie_ttl = actix_web::cookie::time::Duration::seconds(state.config.session_lifetime.as_secs() as i64);
    let address = listener.local_addr().map(|a| a.to_string()).unwrap_or_default();
    let workers = state.config.workers;
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
            .configure(|cfg| routes::configure_unlisted(cfg, api_json.clone()))
            .configure(|cfg| AppState::register(&state, cfg))
            .app_data(error::json_config())
            .app_data(error::path_config())
            .app_data(error::query_config())
            .default_service(web::to(error::not_found))
            .wrap(from_fn(guard))
            .wrap(OnlyWhere::new(session, |req| uses_client_cookie(req.path())))
            .wrap(RequestContext::new(state.metrics.clone()))
    });
    let server = match workers {
        Some(workers) => server.workers(workers),
        None => server,
    };
    let server = server
        .listen(listener)
        .map_err(|e| StartupError::Bind(address, e))?
        .shutdown_timeout(30)
        .run();
    Ok(server)
}
