//! The test harness: a real app on a random port over a fresh database, and a
//! cookie-aware HTTP client with typed helpers per endpoint.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::OnceLock;

use gatehouse::config::Config;
use gatehouse::startup::Application;
use gatehouse::state::AppState;
use reqwest::{Response, StatusCode};
use serde_json::{Value, json};
use sqlx::migrate::MigrateDatabase;

pub const PASSWORD: &str = "correct horse battery";

/// Which database a test runs on.
#[derive(Debug, Clone)]
pub enum TestDb {
    Sqlite,
    Postgres { admin_url: String },
}

impl TestDb {
    /// PostgreSQL when `TEST_DATABASE_URL` is set. In CI (`CI` set) its absence fails
    /// the test instead of skipping it, so the PostgreSQL half can never go missing.
    pub fn postgres() -> Option<Self> {
        match std::env::var("TEST_DATABASE_URL") {
            Ok(url) if !url.is_empty() => Some(Self::Postgres { admin_url: url }),
            _ if std::env::var_os("CI").is_some() => {
                panic!("TEST_DATABASE_URL must be set in CI: the PostgreSQL half of the suite may not be skipped")
            }
            _ => {
                eprintln!("TEST_DATABASE_URL is not set: skipping the PostgreSQL run of this test");
                None
            }
        }
    }
}

/// Runs an async test body on each backend: `db_tests!(a, b)` expects
/// `async fn a(database: TestDb)` and makes `sqlite::a` and `postgres::a`.
#[macro_export]
macro_rules! db_tests {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::helpers::TestDb::Sqlite).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    if let Some(database) = $crate::helpers::TestDb::postgres() {
                        super::$name(database).await
                    }
                }
            )*
        }
    };
}

/// One signing key for the whole test binary: RSA generation is slow in debug builds.
fn signing_key() -> &'static str {
    static KEY: OnceLock<String> = OnceLock::new();
    KEY.get_or_init(|| gatehouse::auth::keys::generate_pem().expect("a test key"))
}

pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    pub state: actix_web::web::Data<AppState>,
    server: actix_web::dev::ServerHandle,
    dir: PathBuf,
    drop_database: Option<(String, String)>,
}

pub struct TestOptions {
    pub vars: Vec<(&'static str, String)>,
    /// PostgreSQL only: reach the test database through this `host:port` (a fault proxy).
    pub database_address: Option<String>,
}

impl Default for TestOptions {
    fn default() -> Self {
        Self {
            vars: vec![("RATE_LIMIT", "off".into())],
            database_address: None,
        }
    }
}

pub async fn spawn_app(database: TestDb) -> TestApp {
    spawn_app_with(database, TestOptions::default()).await
}

pub async fn spawn_app_with(database: TestDb, options: TestOptions) -> TestApp {
    let unique = gatehouse::ids::new_id(gatehouse::ids::IdKind::Client).replace("client_", "");
    let dir = std::env::temp_dir().join(format!("gatehouse-test-{unique}"));
    std::fs::create_dir_all(&dir).unwrap();
    let (database_url, drop_database) = match &database {
        TestDb::Sqlite => (format!("sqlite://{}/gatehouse.db", dir.display()), None),
        TestDb::Postgres { admin_url } => {
            let name = format!("gatehouse_test_{unique}");
            let url = with_database(admin_url, &name);
            sqlx::any::install_default_drivers();
            sqlx::Any::create_database(&url)
                .await
                .expect("create the test database");
            let app_url = match &options.database_address {
                Some(address) => with_address(&url, address),
                None => url,
            };
            (app_url, Some((admin_url.clone(), name)))
        }
    };
    let mut vars: HashMap<&str, String> = HashMap::from([
        ("DATABASE_URL", database_url),
        ("HOST", "127.0.0.1".into()),
        ("PORT", "0".into()),
        ("DATA_DIR", dir.display().to_string()),
        ("SIGNING_KEY", signing_key().to_owned()),
        ("SECRET_KEY", SECRET_KEY.into()),
        ("ISSUER", "http://gatehouse.test".into()),
        ("ALLOWED_ORIGINS", "http://localhost:3000,http://app.test".into()),
    ]);
    vars.extend(options.vars);
    let config = Config::from_lookup(|name| vars.get(name).cloned()).expect("test configuration");
    let app = Application::build(config).await.expect("the app builds");
    let port = app.port();
    let state = app.state();
    let server = app.handle();
    tokio::spawn(app.run_until_stopped());
    TestApp {
        address: format!("http://127.0.0.1:{port}"),
        client: cookie_client(),
        state,
        server,
        dir,
        drop_database,
    }
}

/// `postgres://u@h:p/db?x` with the database name replaced.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = url.split_once('?').map_or((url, None), |(b, q)| (b, Some(q)));
    let prefix = base.rsplit_once('/').map_or(base, |(p, _)| p);
    match query {
        Some(q) => format!("{prefix}/{name}?{q}"),
        None => format!("{prefix}/{name}"),
    }
}

/// `postgres://u@h:p/db` with `h:p` replaced.
fn with_address(url: &str, address: &str) -> String {
    let (scheme, rest) = url.split_once("://").expect("a URL");
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    let user = authority
        .rsplit_once('@')
        .map(|(user, _)| format!("{user}@"))
        .unwrap_or_default();
    format!("{scheme}://{user}{address}/{path}")
}

/// The `host:port` of a PostgreSQL URL.
pub fn address_of(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split('/').next().unwrap_or(rest);
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    if host_port.contains(':') {
        host_port.to_owned()
    } else {
        format!("{host_port}:5432")
    }
}

/// Polls `check` every 50 ms until it returns `Some`, or panics after `timeout`
/// naming `what`.
pub async fn eventually<T, F, Fut>(timeout: std::time::Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = std::time::Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// The `Set-Cookie` headers of a response.
pub fn set_cookies(response: &Response) -> Vec<String> {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect()
}

pub fn cookie_client() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

impl Drop for TestApp {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
        // Stop everything that could reconnect to the database before dropping it.
        self.state.stop_background();
        let server = self.server.clone();
        let drop_database = self.drop_database.take();
        // On a thread of its own: Drop cannot await, and the test's runtime is ending.
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                server.stop(false).await;
                if let Some((admin_url, name)) = drop_database {
                    let url = with_database(&admin_url, &name);
                    for _ in 0..20 {
                        match sqlx::Any::force_drop_database(&url).await {
                            Ok(()) => break,
                            Err(e) => eprintln!("dropping {name}: {e}"),
                        }
                        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    }
                }
            });
        })
        .join();
    }
}

/// What sign-up and sign-in answer.
pub struct SignedIn {
    pub user_id: String,
    pub session_id: String,
    pub jwt: String,
    pub body: Value,
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    pub async fn post_json(&self, client: &reqwest::Client, path: &str, body: &Value) -> Response {
        client.post(self.url(path)).json(body).send().await.unwrap()
    }

    pub async fn sign_up_with(&self, client: &reqwest::Client, email: &str) -> SignedIn {
        let response = self
            .post_json(client, "/v1/sign-up", &json!({"email": email, "password": PASSWORD}))
            .await;
        assert_eq!(response.status(), StatusCode::CREATED);
        signed_in(response).await
    }

    /// Signs up a new user on this app's own cookie client.
    pub async fn sign_up(&self, email: &str) -> SignedIn {
        self.sign_up_with(&self.client, email).await
    }

    pub async fn sign_in_with(&self, client: &reqwest::Client, email: &str, password: &str) -> Response {
        self.post_json(client, "/v1/sign-in", &json!({"email": email, "password": password}))
            .await
    }

    pub async fn refresh(&self, client: &reqwest::Client, sid: &str) -> Response {
        client
            .post(self.url(&format!("/v1/client/sessions/{sid}/tokens")))
            .send()
            .await
            .unwrap()
    }
}

pub async fn signed_in(response: Response) -> SignedIn {
    let body: Value = response.json().await.unwrap();
    SignedIn {
        user_id: body["user"]["id"].as_str().unwrap().to_owned(),
        session_id: body["session"]["id"].as_str().unwrap().to_owned(),
        jwt: body["jwt"].as_str().unwrap().to_owned(),
        body,
    }
}

/// Asserts the error shape and code, returning the body.
pub async fn assert_error(response: Response, status: u16, code: &str) -> Value {
    assert_eq!(response.status().as_u16(), status, "expected {status} {code}");
    let body: Value = response.json().await.expect("error bodies are JSON");
    assert_eq!(body["error"], code, "{body}");
    assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()), "{body}");
    body
}

/// The `jwt` field of a JSON answer.
pub async fn jwt_of(response: Response) -> String {
    let body: Value = response.json().await.unwrap();
    body["jwt"]
        .as_str()
        .unwrap_or_else(|| panic!("no jwt in {body}"))
        .to_owned()
}

impl TestApp {
    /// `SELECT COUNT(*) …` with one bound value, on this app's database.
    pub async fn count(&self, sql: &'static str, bind: &str) -> i64 {
        sqlx::query_scalar(sql)
            .bind(bind)
            .fetch_one(&self.state.db.pool)
            .await
            .unwrap()
    }
}

/// A unique email per call.
pub fn email() -> String {
    format!("{}@example.com", gatehouse::ids::new_id(gatehouse::ids::IdKind::User))
}

impl TestApp {
    pub async fn get_bearer(&self, path: &str, jwt: &str) -> Response {
        reqwest::Client::new()
            .get(self.url(path))
            .bearer_auth(jwt)
            .send()
            .await
            .unwrap()
    }

    pub async fn send_bearer(&self, method: reqwest::Method, path: &str, jwt: &str, body: Option<&Value>) -> Response {
        let mut request = reqwest::Client::new().request(method, self.url(path)).bearer_auth(jwt);
        if let Some(body) = body {
            request = request.json(body);
        }
        request.send().await.unwrap()
    }

    /// Creates an organization as the holder of `jwt`; returns its id.
    pub async fn create_org(&self, jwt: &str, name: &str) -> String {
        let response = self
            .send_bearer(
                reqwest::Method::POST,
                "/api/organizations",
                jwt,
                Some(&json!({"name": name})),
            )
            .await;
        assert_eq!(response.status(), StatusCode::CREATED);
        response.json::<Value>().await.unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// Switches `client`'s session to `org_id` (or the personal account); returns the new token.
    pub async fn switch_org(&self, client: &reqwest::Client, sid: &str, org_id: Option<&str>) -> Response {
        client
            .post(self.url(&format!("/v1/client/sessions/{sid}/touch")))
            .json(&json!({"active_organization_id": org_id}))
            .send()
            .await
            .unwrap()
    }

    pub async fn switch_org_jwt(&self, client: &reqwest::Client, sid: &str, org_id: Option<&str>) -> String {
        let response = self.switch_org(client, sid, org_id).await;
        assert_eq!(response.status(), StatusCode::OK);
        response.json::<Value>().await.unwrap()["jwt"]
            .as_str()
            .unwrap()
            .to_owned()
    }
}

/// A signed-in user with a cookie client of their own.
pub struct Member {
    pub client: reqwest::Client,
    pub email: String,
    pub signed: SignedIn,
}

/// An organization set up by [`TestApp::org_with`]: its id and each person's token with
/// it active.
pub struct TestOrg {
    pub id: String,
    pub admin_jwt: String,
    pub member_jwts: Vec<String>,
}

impl TestApp {
    /// Adds `member` to the organization of `admin_jwt` with `role` (asserting 201).
    pub async fn add_member(&self, admin_jwt: &str, member: &Member, role: &str) {
        let added = self
            .send_bearer(
                reqwest::Method::POST,
                "/api/admin/members",
                admin_jwt,
                Some(&json!({"user_id": member.signed.user_id, "role": role})),
            )
            .await;
        assert_eq!(added.status(), StatusCode::CREATED, "adding {} as {role}", member.email);
    }

    /// An organization created by `admin`, with `members` added as `org:member`; every
    /// one of them switches to it.
    pub async fn org_with(&self, admin: &Member, members: &[&Member]) -> TestOrg {
        let id = &admin.signed.user_id;
        let org_id = self
            .create_org(&admin.signed.jwt, &format!("Org {}", &id[id.len() - 10..]))
            .await;
        let admin_jwt = self
            .switch_org_jwt(&admin.client, &admin.signed.session_id, Some(&org_id))
            .await;
        let mut member_jwts = Vec::new();
        for member in members {
            self.add_member(&admin_jwt, member, "org:member").await;
            member_jwts.push(
                self.switch_org_jwt(&member.client, &member.signed.session_id, Some(&org_id))
                    .await,
            );
        }
        TestOrg {
            id: org_id,
            admin_jwt,
            member_jwts,
        }
    }

    pub async fn new_member(&self) -> Member {
        let client = cookie_client();
        let email = email();
        let signed = self.sign_up_with(&client, &email).await;
        Member { client, email, signed }
    }
}

/// The PEM that signs this test binary's tokens (for forging attack tokens).
pub fn test_signing_key() -> &'static str {
    signing_key()
}

/// The Backend API secret the test apps run with.
pub const SECRET_KEY: &str = "sk_test_integration_tests_secret_key_0123456789";

impl TestApp {
    pub async fn backend(&self, method: reqwest::Method, path: &str, body: Option<&Value>) -> Response {
        self.send_bearer(method, path, SECRET_KEY, body).await
    }
}

impl TestApp {
    /// Stops this instance (server and background work) but keeps its database, as a
    /// crash or a deploy would.
    pub async fn stop(&self) {
        self.state.stop_background();
        self.server.stop(false).await;
    }
}

impl TestApp {
    /// Makes the member's password proof an hour old; returns a token that says so.
    pub async fn stale_token(&self, member: &Member) -> String {
        sqlx::query("UPDATE sessions SET last_verified_at = $1 WHERE id = $2")
            .bind(gatehouse::clock::now_ms() - 3_600_000)
            .bind(&member.signed.session_id)
            .execute(&self.state.db.pool)
            .await
            .unwrap();
        jwt_of(self.refresh(&member.client, &member.signed.session_id).await).await
    }
}
