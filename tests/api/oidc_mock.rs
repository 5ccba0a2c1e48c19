//! A mock OpenID Connect provider on loopback (discovery, authorize, token, JWKS,
//! userinfo), and a GitHub stand-in (authorize, token, `/user`, `/user/emails`), for the
//! sign-in tests. The test sets who signs in and how the provider misbehaves; the
//! provider checks what a real one checks (PKCE S256, the redirect URI, client
//! credentials, single-use codes).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

pub const CLIENT_ID: &str = "gatehouse-test-client";
pub const CLIENT_SECRET: &str = "mock-provider-client-secret";

/// Who signs in at the provider.
#[derive(Debug, Clone)]
pub struct MockUser {
    pub sub: String,
    pub email: Option<String>,
    pub email_verified: bool,
    pub given_name: Option<String>,
}

impl MockUser {
    pub fn new(email: &str, verified: bool) -> Self {
        Self {
            sub: format!("sub-{}", gatehouse::ids::new_id(gatehouse::ids::IdKind::Client)),
            email: Some(email.to_owned()),
            email_verified: verified,
            given_name: Some("Grace".to_owned()),
        }
    }
}

/// How the provider misbehaves (an attacker's token, a broken provider).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tamper {
    None,
    /// The ID token carries another nonce (a replayed token).
    WrongNonce,
    /// The ID token is for another client.
    WrongAudience,
    /// The ID token has expired.
    Expired,
    /// The ID token is signed by another key under the provider's key id.
    ForeignKey,
    /// The ID token is signed by a key the provider never published.
    UnknownKey,
    /// The ID token carries no email; userinfo has it.
    EmailOnlyInUserinfo,
    /// The user cancels at the provider (`error=access_denied`).
    Deny,
}

struct Grant {
    user: MockUser,
    nonce: String,
    challenge: String,
    redirect_uri: String,
}

struct Inner {
    user: MockUser,
    tamper: Tamper,
    codes: HashMap<String, Grant>,
    tokens: HashMap<String, MockUser>,
    token_requests: usize,
    discovery_requests: usize,
    /// The provider signs with its second key (and publishes both).
    rotated: bool,
    /// The token endpoint takes client credentials only in the form body.
    post_only: bool,
}

#[derive(Clone)]
pub struct MockProvider {
    pub issuer: String,
    inner: Arc<Mutex<Inner>>,
}

fn provider_key() -> &'static (String, String) {
    static KEY: OnceLock<(String, String)> = OnceLock::new();
    KEY.get_or_init(|| {
        let pem = gatehouse::auth::keys::generate_pem().expect("a provider key");
        let kid = gatehouse::auth::keys::public_jwk(&pem)
            .unwrap()
            .common
            .key_id
            .expect("a kid");
        (pem, kid)
    })
}

/// A second key (with its own `kid`): the rotated key, or an attacker's.
fn second_key() -> &'static (String, String) {
    static KEY: OnceLock<(String, String)> = OnceLock::new();
    KEY.get_or_init(|| {
        let pem = gatehouse::auth::keys::generate_pem().expect("another key");
        let kid = gatehouse::auth::keys::public_jwk(&pem)
            .unwrap()
            .common
            .key_id
            .expect("a kid");
        (pem, kid)
    })
}

impl MockProvider {
    pub async fn start(user: MockUser) -> Self {
        let inner = Arc::new(Mutex::new(Inner {
            user,
            tamper: Tamper::None,
            codes: HashMap::new(),
            tokens: HashMap::new(),
            token_requests: 0,
            discovery_requests: 0,
            rotated: false,
            post_only: false,
        }));
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let issuer = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
        let provider = Self { issuer, inner };
        let shared = provider.clone();
        let server = HttpServer::new(move || {
            App::new()
                .app_data(web::Data::new(shared.clone()))
                .route("/.well-known/openid-configuration", web::get().to(discovery))
                .route("/authorize", web::get().to(authorize))
                .route("/token", web::post().to(token))
                .route("/jwks", web::get().to(jwks))
                .route("/userinfo", web::get().to(userinfo))
                .route("/user", web::get().to(github_user))
                .route("/user/emails", web::get().to(github_emails))
        })
        .workers(1)
        .listen(listener)
        .unwrap();
        tokio::spawn(server.run());
        provider
    }

    pub fn set_user(&self, user: MockUser) {
        self.inner.lock().unwrap().user = user;
    }

    pub fn set_tamper(&self, tamper: Tamper) {
        self.inner.lock().unwrap().tamper = tamper;
    }

    pub fn token_requests(&self) -> usize {
        self.inner.lock().unwrap().token_requests
    }

    pub fn discovery_requests(&self) -> usize {
        self.inner.lock().unwrap().discovery_requests
    }

    /// Makes the provider take client credentials only in the form body (and say so).
    pub fn take_client_secret_post_only(&self) {
        self.inner.lock().unwrap().post_only = true;
    }

    /// Rotates the signing key: the JWKS publishes a second key, which signs from now on.
    pub fn rotate_key(&self) {
        self.inner.lock().unwrap().rotated = true;
    }

    /// The app's configuration for this provider under `name`.
    pub fn vars(&self, name: &'static str) -> Vec<(&'static str, String)> {
        let upper = name.to_uppercase();
        let leak = |s: String| -> &'static str { Box::leak(s.into_boxed_str()) };
        vec![
            ("OIDC_PROVIDERS", name.to_owned()),
            (leak(format!("OIDC_{upper}_ISSUER")), self.issuer.clone()),
            (leak(format!("OIDC_{upper}_CLIENT_ID")), CLIENT_ID.to_owned()),
            (leak(format!("OIDC_{upper}_CLIENT_SECRET")), CLIENT_SECRET.to_owned()),
        ]
    }

    /// The app's configuration for this server as GitHub.
    pub fn github_vars(&self) -> Vec<(&'static str, String)> {
        vec![
            ("OAUTH_GITHUB_CLIENT_ID", CLIENT_ID.to_owned()),
            ("OAUTH_GITHUB_CLIENT_SECRET", CLIENT_SECRET.to_owned()),
            ("OAUTH_GITHUB_AUTHORIZE_URL", format!("{}/authorize", self.issuer)),
            ("OAUTH_GITHUB_TOKEN_URL", format!("{}/token", self.issuer)),
            ("OAUTH_GITHUB_API_URL", self.issuer.clone()),
        ]
    }
}

async fn discovery(provider: web::Data<MockProvider>) -> HttpResponse {
    let post_only = {
        let mut inner = provider.inner.lock().unwrap();
        inner.discovery_requests += 1;
        inner.post_only
    };
    let issuer = &provider.issuer;
    let auth_methods = if post_only {
        json!(["client_secret_post"])
    } else {
        json!(["client_secret_basic", "client_secret_post"])
    };
    HttpResponse::Ok().json(json!({
        "token_endpoint_auth_methods_supported": auth_methods,
        "issuer": issuer,
        "authorization_endpoint": format!("{issuer}/authorize"),
        "token_endpoint": format!("{issuer}/token"),
        "userinfo_endpoint": format!("{issuer}/userinfo"),
        "jwks_uri": format!("{issuer}/jwks"),
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "scopes_supported": ["openid", "email", "profile"],
        "code_challenge_methods_supported": ["S256"],
    }))
}

async fn jwks(provider: web::Data<MockProvider>) -> HttpResponse {
    let mut keys = vec![gatehouse::auth::keys::public_jwk(&provider_key().0).unwrap()];
    if provider.inner.lock().unwrap().rotated {
        keys.push(gatehouse::auth::keys::public_jwk(&second_key().0).unwrap());
    }
    HttpResponse::Ok().json(json!({"keys": keys}))
}

async fn authorize(provider: web::Data<MockProvider>, query: web::Query<HashMap<String, String>>) -> HttpResponse {
    let param = |name: &str| query.get(name).cloned().unwrap_or_default();
    if param("client_id") != CLIENT_ID || param("response_type") != "code" {
        return HttpResponse::BadRequest().body("unknown client or response type");
    }
    if param("code_challenge_method") != "S256" || param("code_challenge").len() < 43 {
        return HttpResponse::BadRequest().body("PKCE S256 required");
    }
    let redirect_uri = param("redirect_uri");
    let state = param("state");
    if state.len() < 16 {
        return HttpResponse::BadRequest().body("a state is required");
    }
    let mut inner = provider.inner.lock().unwrap();
    let location = if inner.tamper == Tamper::Deny {
        format!("{redirect_uri}?error=access_denied&error_description=cancelled&state={state}")
    } else {
        let code = gatehouse::ids::new_id(gatehouse::ids::IdKind::Client).replace("client_", "code_");
        let grant = Grant {
            user: inner.user.clone(),
            nonce: param("nonce"),
            challenge: param("code_challenge"),
            redirect_uri: redirect_uri.clone(),
        };
        inner.codes.insert(code.clone(), grant);
        format!("{redirect_uri}?code={code}&state={state}")
    };
    HttpResponse::Found().insert_header(("location", location)).finish()
}

async fn token(
    provider: web::Data<MockProvider>,
    req: HttpRequest,
    form: web::Form<HashMap<String, String>>,
) -> HttpResponse {
    let error = |code: &str| HttpResponse::BadRequest().json(json!({"error": code}));
    let expected = format!("Basic {}", STANDARD.encode(format!("{CLIENT_ID}:{CLIENT_SECRET}")));
    let form_auth = form.get("client_id").map(String::as_str) == Some(CLIENT_ID)
        && form.get("client_secret").map(String::as_str) == Some(CLIENT_SECRET);
    let header_auth = req.headers().get("authorization").and_then(|v| v.to_str().ok()) == Some(expected.as_str());
    let mut inner = provider.inner.lock().unwrap();
    if !(form_auth || (header_auth && !inner.post_only)) {
        return HttpResponse::Unauthorized().json(json!({"error": "invalid_client"}));
    }
    inner.token_requests += 1;
    let Some(grant) = form.get("code").and_then(|code| inner.codes.remove(code)) else {
        return error("invalid_grant");
    };
    if form.get("redirect_uri") != Some(&grant.redirect_uri) {
        return error("invalid_grant");
    }
    let verifier = form.get("code_verifier").cloned().unwrap_or_default();
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, verifier.as_bytes());
    if URL_SAFE_NO_PAD.encode(digest.as_ref()) != grant.challenge {
        return error("invalid_grant");
    }
    let tamper = inner.tamper;
    let rotated = inner.rotated;
    let access_token = gatehouse::ids::new_id(gatehouse::ids::IdKind::Client).replace("client_", "at_");
    inner.tokens.insert(access_token.clone(), grant.user.clone());
    drop(inner);
    let now = gatehouse::clock::now_ms() / 1000;
    let user = &grant.user;
    let mut claims = json!({
        "iss": provider.issuer,
        "sub": user.sub,
        "aud": if tamper == Tamper::WrongAudience { "another-client" } else { CLIENT_ID },
        "iat": now,
        "exp": if tamper == Tamper::Expired { now - 600 } else { now + 300 },
        "nonce": if tamper == Tamper::WrongNonce { "a-nonce-from-another-flow".to_owned() } else { grant.nonce.clone() },
        "given_name": user.given_name,
    });
    if tamper != Tamper::EmailOnlyInUserinfo {
        claims["email"] = json!(user.email);
        claims["email_verified"] = json!(user.email_verified);
    }
    let (pem, kid) = match tamper {
        Tamper::UnknownKey => second_key(),
        _ if rotated => second_key(),
        _ => provider_key(),
    };
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(kid.clone());
    let signing = if tamper == Tamper::ForeignKey {
        &second_key().0
    } else {
        pem
    };
    let id_token = jsonwebtoken::encode(
        &header,
        &claims,
        &EncodingKey::from_rsa_pem(signing.as_bytes()).unwrap(),
    )
    .unwrap();
    HttpResponse::Ok().json(json!({
        "access_token": access_token,
        "token_type": "Bearer",
        "expires_in": 300,
        "id_token": id_token,
        "scope": "openid email profile",
    }))
}

fn bearer_user(provider: &MockProvider, req: &HttpRequest) -> Option<MockUser> {
    let token = req
        .headers()
        .get("authorization")?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")?;
    provider.inner.lock().unwrap().tokens.get(token).cloned()
}

async fn userinfo(provider: web::Data<MockProvider>, req: HttpRequest) -> HttpResponse {
    let Some(user) = bearer_user(&provider, &req) else {
        return HttpResponse::Unauthorized().finish();
    };
    HttpResponse::Ok().json(json!({
        "sub": user.sub,
        "email": user.email,
        "email_verified": user.email_verified,
    }))
}

async fn github_user(provider: web::Data<MockProvider>, req: HttpRequest) -> HttpResponse {
    let Some(user) = bearer_user(&provider, &req) else {
        return HttpResponse::Unauthorized().finish();
    };
    let id: i64 = user
        .sub
        .bytes()
        .fold(7i64, |h, b| h.wrapping_mul(31).wrapping_add(i64::from(b)))
        .abs();
    HttpResponse::Ok().json(json!({"id": id, "login": "grace", "name": "Grace Hopper"}))
}

async fn github_emails(provider: web::Data<MockProvider>, req: HttpRequest) -> HttpResponse {
    let Some(user) = bearer_user(&provider, &req) else {
        return HttpResponse::Unauthorized().finish();
    };
    let emails: Vec<Value> = vec![
        json!({"email": "secondary@example.org", "primary": false, "verified": true}),
        json!({"email": user.email, "primary": true, "verified": user.email_verified}),
    ];
    HttpResponse::Ok().json(emails)
}
