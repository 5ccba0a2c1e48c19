//! Trusting a Clerk instance: v2 session tokens signed by "Clerk" (a key made here),
//! verified through a JWKS endpoint this test serves, or through a PEM.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use actix_web::{App, HttpResponse, HttpServer, web};
use gatehouse::auth::keys::{KeyRing, generate_pem};
use gatehouse::auth::tokens::{SESSION_TOKEN_CATEGORY, TEMPLATE_TOKEN_CATEGORY, sign_compact};
use jsonwebtoken::{Algorithm, EncodingKey};
use serde_json::{Value, json};

use crate::helpers::{TestDb, TestOptions, assert_error, spawn_app_with};

const CLERK_ISSUER: &str = "https://clerk.example.test";

/// A signing key of "Clerk's", with its kid and JWK.
struct ClerkKey {
    pem: String,
    kid: String,
    jwk: Value,
}

impl ClerkKey {
    fn new() -> Self {
        let pem = generate_pem().unwrap();
        let ring = KeyRing::from_pems(&("clerk".into(), pem.clone()), &[]).unwrap();
        let jwk = serde_json::to_value(&ring.jwks().keys[0]).unwrap();
        Self {
            kid: ring.signing().kid.clone(),
            pem,
            jwk,
        }
    }

    fn public_pem(&self) -> String {
        use aws_lc_rs::encoding::{AsDer, PublicKeyX509Der};
        use aws_lc_rs::signature::KeyPair as _;
        let der = pem::parse(&self.pem).unwrap();
        let pair = aws_lc_rs::rsa::KeyPair::from_pkcs8(der.contents()).unwrap();
        let public: PublicKeyX509Der = pair.public_key().as_der().unwrap();
        pem::encode(&pem::Pem::new("PUBLIC KEY", public.as_ref().to_vec()))
    }

    fn sign(&self, claims: &Value, category: &str) -> String {
        let key = EncodingKey::from_rsa_pem(self.pem.as_bytes()).unwrap();
        sign_compact(&key, Algorithm::RS256, Some(&self.kid), category, claims).unwrap()
    }
}

/// Clerk's documented v2 example, as a token for `user_clerk1` in org `acme`.
fn clerk_claims(patch: Value) -> Value {
    let now = gatehouse::clock::now_secs();
    let mut claims = json!({
        "azp": "http://app.test", "exp": now + 60, "fea": "o:dashboard,o:impersonation", "fva": [3, -1],
        "iat": now, "iss": CLERK_ISSUER, "nbf": now - 10, "sid": "sess_clerk1", "sts": "active",
        "sub": "user_clerk1", "v": 2, "jti": "clerkjti",
        "o": {"fpm": "3,2", "id": "org_clerk1", "per": "read,manage", "rol": "admin", "slg": "acme"}
    });
    claims
        .as_object_mut()
        .unwrap()
        .extend(patch.as_object().unwrap().clone());
    claims
}

/// A JWKS endpoint whose keys the test changes, counting fetches.
struct FakeJwks {
    url: String,
    keys: Arc<Mutex<Vec<Value>>>,
    fetches: Arc<AtomicUsize>,
}

async fn serve_jwks(initial: Vec<Value>) -> FakeJwks {
    let keys = Arc::new(Mutex::new(initial));
    let fetches = Arc::new(AtomicUsize::new(0));
    let (k, f) = (keys.clone(), fetches.clone());
    let server = HttpServer::new(move || {
        let (k, f) = (k.clone(), f.clone());
        App::new().route(
            "/.well-known/jwks.json",
            web::get().to(move || {
                let (k, f) = (k.clone(), f.clone());
                async move {
                    f.fetch_add(1, Ordering::SeqCst);
                    HttpResponse::Ok().json(json!({"keys": *k.lock().unwrap()}))
                }
            }),
        )
    })
    .workers(1)
    .bind("127.0.0.1:0")
    .unwrap();
    let port = server.addrs()[0].port();
    tokio::spawn(server.run());
    FakeJwks {
        url: format!("http://127.0.0.1:{port}/.well-known/jwks.json"),
        keys,
        fetches,
    }
}

fn clerk_options(jwks_url: &str, min_refetch: &str) -> TestOptions {
    TestOptions {
        vars: vec![
            ("RATE_LIMIT", "off".into()),
            ("CLERK_JWKS_URL", jwks_url.into()),
            ("CLERK_ISSUER", CLERK_ISSUER.into()),
            ("CLERK_AUTHORIZED_PARTIES", "http://app.test".into()),
            ("CLERK_JWKS_MIN_REFETCH", min_refetch.into()),
        ],
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clerk_tokens_give_the_same_auth_as_ours() {
    let key = ClerkKey::new();
    let jwks = serve_jwks(vec![key.jwk.clone()]).await;
    let app = spawn_app_with(TestDb::Sqlite, clerk_options(&jwks.url, "30")).await;

    let token = key.sign(&clerk_claims(json!({})), SESSION_TOKEN_CATEGORY);
    let response = app.get_bearer("/api/me", &token).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["x-user-id"], "user_clerk1");
    let me: Value = response.json().await.unwrap();
    assert_eq!(me["user_id"], "user_clerk1");
    assert_eq!(me["session_id"], "sess_clerk1");
    assert_eq!(me["org_id"], "org_clerk1");
    assert_eq!(me["org_role"], "org:admin");
    assert_eq!(me["org_slug"], "acme");
    assert_eq!(
        me["org_permissions"],
        json!(["org:dashboard:read", "org:dashboard:manage", "org:impersonation:manage"])
    );
    // Clerk admins pass the admin policy like ours.
    assert_ne!(app.get_bearer("/api/admin/members", &token).await.status(), 403);
    // Our own tokens still work beside Clerk's.
    let ours = app.sign_up(&crate::helpers::email()).await;
    assert_eq!(app.get_bearer("/api/me", &ours.jwt).await.status(), 200);
    assert_eq!(jwks.fetches.load(Ordering::SeqCst), 1, "one fetch, then the cache");

    // A member without the admin role is refused by the admin policy.
    let member = key.sign(&clerk_claims(json!({"o": {"fpm": "1", "id": "org_clerk1", "per": "read", "rol": "member", "slg": "acme"}, "fea": "o:dashboard"})), SESSION_TOKEN_CATEGORY);
    assert_error(app.get_bearer("/api/admin/members", &member).await, 403, "forbidden").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clerk_token_attacks_are_401() {
    let key = ClerkKey::new();
    let stranger = ClerkKey::new();
    let jwks = serve_jwks(vec![key.jwk.clone()]).await;
    let app = spawn_app_with(TestDb::Sqlite, clerk_options(&jwks.url, "3600")).await;
    let now = gatehouse::clock::now_secs();
    let public_n = key.jwk["n"].as_str().unwrap().to_owned();
    let hs = sign_compact(
        &EncodingKey::from_secret(public_n.as_bytes()),
        Algorithm::HS256,
        Some(&key.kid),
        SESSION_TOKEN_CATEGORY,
        &clerk_claims(json!({})),
    )
    .unwrap();
    let mut no_azp = clerk_claims(json!({}));
    no_azp.as_object_mut().unwrap().remove("azp");
    let attacks = [
        (
            "foreign azp",
            key.sign(
                &clerk_claims(json!({"azp": "https://evil.example"})),
                SESSION_TOKEN_CATEGORY,
            ),
        ),
        (
            "missing azp while parties are set",
            key.sign(&no_azp, SESSION_TOKEN_CATEGORY),
        ),
        (
            "expired",
            key.sign(
                &clerk_claims(json!({"iat": now - 300, "nbf": now - 300, "exp": now - 100})),
                SESSION_TOKEN_CATEGORY,
            ),
        ),
        (
            "not yet valid",
            key.sign(
                &clerk_claims(json!({"iat": now + 100, "nbf": now + 100, "exp": now + 200})),
                SESSION_TOKEN_CATEGORY,
            ),
        ),
        ("HS256 with the public key", hs),
        (
            "another key with an unknown kid",
            stranger.sign(&clerk_claims(json!({})), SESSION_TOKEN_CATEGORY),
        ),
        (
            "a Clerk template token",
            key.sign(&clerk_claims(json!({})), TEMPLATE_TOKEN_CATEGORY),
        ),
        (
            "another issuer",
            key.sign(
                &clerk_claims(json!({"iss": "https://evil.clerk.test"})),
                SESSION_TOKEN_CATEGORY,
            ),
        ),
    ];
    for (name, token) in attacks {
        let response = app.get_bearer("/api/me", &token).await;
        assert_eq!(response.status(), 401, "{name}");
    }
    // Unknown kids cannot make the server hammer the JWKS: one initial fetch, one refetch at most.
    assert!(
        jwks.fetches.load(Ordering::SeqCst) <= 2,
        "fetched {} times",
        jwks.fetches.load(Ordering::SeqCst)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_clerk_key_is_picked_up() {
    let old = ClerkKey::new();
    let new = ClerkKey::new();
    let jwks = serve_jwks(vec![old.jwk.clone()]).await;
    let app = spawn_app_with(TestDb::Sqlite, clerk_options(&jwks.url, "0")).await;
    assert_eq!(
        app.get_bearer("/api/me", &old.sign(&clerk_claims(json!({})), SESSION_TOKEN_CATEGORY))
            .await
            .status(),
        200
    );
    let rotated = new.sign(&clerk_claims(json!({"sid": "sess_clerk2"})), SESSION_TOKEN_CATEGORY);
    assert_error(app.get_bearer("/api/me", &rotated).await, 401, "unauthorized").await;
    // Clerk publishes the new key: the unknown kid triggers a refetch and verifies.
    jwks.keys.lock().unwrap().push(new.jwk.clone());
    let me: Value = app.get_bearer("/api/me", &rotated).await.json().await.unwrap();
    assert_eq!(me["session_id"], "sess_clerk2");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_jwks_is_503_not_a_hang() {
    let key = ClerkKey::new();
    let app = spawn_app_with(
        TestDb::Sqlite,
        clerk_options("http://127.0.0.1:1/.well-known/jwks.json", "0"),
    )
    .await;
    let token = key.sign(&clerk_claims(json!({})), SESSION_TOKEN_CATEGORY);
    assert_error(app.get_bearer("/api/me", &token).await, 503, "service_unavailable").await;
    // Our own tokens do not depend on Clerk being reachable.
    let ours = app.sign_up(&crate::helpers::email()).await;
    assert_eq!(app.get_bearer("/api/me", &ours.jwt).await.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clerk_pem_verifies_without_network() {
    let key = ClerkKey::new();
    let options = TestOptions {
        vars: vec![
            ("RATE_LIMIT", "off".into()),
            ("CLERK_JWT_KEY", key.public_pem()),
            ("CLERK_ISSUER", CLERK_ISSUER.into()),
        ],
        ..Default::default()
    };
    let app = spawn_app_with(TestDb::Sqlite, options).await;
    let me: Value = app
        .get_bearer("/api/me", &key.sign(&clerk_claims(json!({})), SESSION_TOKEN_CATEGORY))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["user_id"], "user_clerk1");
    let other = ClerkKey::new().sign(&clerk_claims(json!({})), SESSION_TOKEN_CATEGORY);
    assert_error(app.get_bearer("/api/me", &other).await, 401, "unauthorized").await;
}
