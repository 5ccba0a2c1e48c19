//! The command line: `serve` (default), `migrate`, `openapi`, `keys`, `token`,
//! `healthcheck`.

use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};

use crate::auth::keys::{self, KeyRing};
use crate::config::Config;
use crate::db::sessions::NewSession;
use crate::db::{Db, clients, sessions, users};
use crate::startup::Application;
use crate::state::AppState;

#[derive(Parser)]
#[command(
    name = "gatehouse",
    version,
    about = "Clerk-style sessions, organizations and route protection for actix-web"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Subcommand)]
pub enum Command {
    /// Run the server (the default).
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Print the OpenAPI document.
    Openapi,
    /// Manage session-token signing keys.
    Keys {
        #[command(subcommand)]
        action: KeysAction,
    },
    /// Mint a development session token for a user (refused in production).
    Token {
        /// The user's id (`user_…`) or email.
        user: String,
    },
    /// Exit 0 when the server at HOST:PORT answers `/healthz` (for container health checks).
    Healthcheck,
}

#[derive(Subcommand)]
pub enum KeysAction {
    /// Print a new RSA private key (PEM) for `SIGNING_KEY`.
    Generate,
    /// Add a new active key to the key folder; older keys stay published in JWKS.
    Rotate,
    /// List the key ids published in JWKS, the signing one first.
    List,
    /// Print the public JWK (with its `kid`) of an RSA key in PEM: what a service that
    /// verifies tokens of a template with `custom_signing_key` needs.
    Jwk {
        /// A PEM file (private or public key).
        pem: std::path::PathBuf,
    },
}

pub fn run(cli: Cli) -> ExitCode {
    crate::telemetry::init_tracing();
    let config = match Config::from_env() {
        Ok(config) => config,
        Err(e) => {
            eprintln!("gatehouse: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime starts");
    let result = runtime.block_on(async move {
        match cli.command.unwrap_or(Command::Serve) {
            Command::Serve => serve(config).await,
            Command::Migrate => migrate(config).await,
            Command::Openapi => {
                print!("{}", crate::openapi::api_doc_json());
                Ok(())
            }
            Command::Keys { action } => keys_command(config, action),
            Command::Token { user } => mint_token(config, &user).await,
            Command::Healthcheck => healthcheck(&config),
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("gatehouse: {e}");
            ExitCode::FAILURE
        }
    }
}

type CliResult = Result<(), Box<dyn std::error::Error>>;

async fn serve(config: Config) -> CliResult {
    let app = Application::build(config).await?;
    let state = app.state();
    print_banner(&state, app.port());
    app.run_until_stopped().await?;
    Ok(())
}

fn print_banner(state: &AppState, port: u16) {
    let config = &state.config;
    let base = format!("http://{}:{port}", config.host);
    println!(
        "Gatehouse is listening on {base} ({} on {})",
        config.app_env_name(),
        state.db.dialect.name()
    );
    println!("  Swagger UI:  {base}/swagger-ui/");
    println!("  OpenAPI:     {base}/openapi.json");
    println!("  JWKS:        {base}/.well-known/jwks.json");
    println!("  Sign up:     curl -i -X POST {base}/v1/sign-up -H 'content-type: application/json' \\");
    println!("                 -d '{{\"email\":\"ada@example.com\",\"password\":\"correct horse battery\"}}'");
    if !config.is_production() {
        println!(
            "  Secret key (Backend API, development only): {}",
            state.secret_key.expose()
        );
    }
}

async fn migrate(config: Config) -> CliResult {
    let db = Db::connect(&config.database_url).await?;
    db.migrate().await?;
    println!("migrations applied ({})", db.dialect.name());
    Ok(())
}

fn keys_command(config: Config, action: KeysAction) -> CliResult {
    match action {
        KeysAction::Generate => print!("{}", keys::generate_pem()?),
        KeysAction::Rotate => {
            if config.signing_key.is_some() {
                return Err(
                    "SIGNING_KEY is set: rotate by moving the current key into SIGNING_KEYS_DIR \
                    and setting SIGNING_KEY to a new one from `gatehouse keys generate`"
                        .into(),
                );
            }
            let dir = config
                .signing_keys_dir
                .clone()
                .unwrap_or_else(|| keys::dev_keys_dir(&config.data_dir));
            let (path, _) = keys::write_new_key(&dir)?;
            println!(
                "new signing key: {} (restart the server to sign with it)",
                path.display()
            );
        }
        KeysAction::List => {
            let ring = KeyRing::load(&config)?;
            for key in ring.jwks().keys {
                println!("{}", key.common.key_id.unwrap_or_default());
            }
        }
        KeysAction::Jwk { pem } => {
            let text = std::fs::read_to_string(&pem).map_err(|e| format!("{}: {e}", pem.display()))?;
            let jwk = keys::public_jwk(&text).map_err(|e| format!("{}: {e}", pem.display()))?;
            println!("{}", serde_json::to_string_pretty(&jwk)?);
        }
    }
    Ok(())
}

async fn mint_token(config: Config, user: &str) -> CliResult {
    if config.is_production() {
        return Err("`token` mints development tokens and is refused when APP_ENV=production".into());
    }
    let state = AppState::build(config).await?;
    let pool = &state.db.pool;
    let found = if user.contains('@') {
        users::find_by_email(pool, user).await?
    } else {
        users::find_by_id(pool, user).await?
    };
    let user = found.ok_or_else(|| format!("no user `{user}`"))?;
    let now = crate::clock::now_ms();
    let client = clients::insert(pool, now).await?;
    let new_session = NewSession {
        client_id: &client.id,
        user_id: &user.id,
        user_agent: Some("gatehouse token"),
        ip_address: None,
        lifetime_ms: state.config.session_lifetime.as_millis() as i64,
        second_factor: false,
        actor: None,
    };
    let session = sessions::insert(pool, new_session, now).await?;
    let jwt = state.tokens.session_token(&session, None).await?;
    eprintln!(
        "session {} for {} (token valid {} s)",
        session.id,
        user.email,
        state.tokens.lifetime_secs()
    );
    println!("{jwt}");
    Ok(())
}

/// A plain HTTP/1.0 GET of `/healthz` over loopback; no client library needed.
fn healthcheck(config: &Config) -> CliResult {
    use std::io::{Read, Write};
    let host = if config.host == "0.0.0.0" {
        "127.0.0.1"
    } else {
        config.host.as_str()
    };
    let address = format!("{host}:{}", config.port);
    let addr = std::net::ToSocketAddrs::to_socket_addrs(&address)?
        .next()
        .ok_or("no address for HOST:PORT")?;
    let mut stream = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    stream.write_all(b"GET /healthz HTTP/1.0\r\nHost: localhost\r\n\r\n")?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    if response.starts_with("HTTP/1.0 200") || response.starts_with("HTTP/1.1 200") {
        Ok(())
    } else {
        Err(format!("unhealthy: {}", response.lines().next().unwrap_or("no answer")).into())
    }
}
