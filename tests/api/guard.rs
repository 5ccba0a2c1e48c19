//! The guard middleware: route classes, token attacks, cookies and CSRF, MAX_TOKEN_AGE,
//! and the auth object.

use gatehouse::auth::tokens::{SESSION_TOKEN_CATEGORY, TEMPLATE_TOKEN_CATEGORY, sign_compact};
use jsonwebtoken::{Algorithm, EncodingKey};
use reqwest::Method;
use serde_json::{Value, json};

use crate::db_tests;
use crate::helpers::{TestDb, TestOptions, assert_error, email, spawn_app, spawn_app_with, test_signing_key};

db_tests!(
    signed_out_api_is_401_and_pages_redirect,
    me_is_the_auth_object_without_a_database_read,
    token_attacks_are_401,
    session_cookie_authenticates_and_csrf_is_checked,
    old_tokens_are_session_expired_under_max_token_age,
    cors_answers_allowed_origins_only,
);

async fn cors_answers_allowed_origins_only(database: TestDb) {
    let app = spawn_app(database).await;
    let signed = app.sign_up(&email()).await;
    let client = reqwest::Client::new();
    let preflight = |origin: &'static str| {
        client
            .request(Method::OPTIONS, app.url("/api/items"))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "authorization, content-type, idempotency-key",
            )
            .send()
    };
    let allowed = preflight("http://localhost:3000").await.unwrap();
    assert_eq!(
        allowed.status(),
        204,
        "preflights pass the guard: they carry no credentials"
    );
    assert_eq!(
        allowed.headers()["access-control-allow-origin"],
        "http://localhost:3000"
    );
    assert_eq!(allowed.headers()["access-control-allow-credentials"], "true");
    assert!(
        allowed.headers()["access-control-allow-headers"]
            .to_str()
            .unwrap()
            .contains("idempotency-key")
    );
    let foreign = preflight("https://evil.example").await.unwrap();
    assert!(foreign.headers().get("access-control-allow-origin").is_none());

    let response = client
        .get(app.url("/api/me"))
        .bearer_auth(&signed.jwt)
        .header("origin", "http://localhost:3000")
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.headers()["access-control-allow-origin"],
        "http://localhost:3000"
    );
    assert!(
        response.headers()["access-control-expose-headers"]
            .to_str()
            .unwrap()
            .contains("x-user-id")
    );
    let response = client
        .get(app.url("/api/me"))
        .bearer_auth(&signed.jwt)
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert!(response.headers().get("access-control-allow-origin").is_none());
}

async fn signed_out_api_is_401_and_pages_redirect(database: TestDb) {
    let app = spawn_app(database).await;
    let response = reqwest::Client::new().get(app.url("/api/me")).send().await.unwrap();
    assert_eq!(response.headers()["www-authenticate"], "Bearer");
    assert!(response.headers().get("x-user-id").is_none());
    assert_error(response, 401, "unauthorized").await;
    // Deny by default: unknown API paths are 401 too, admin paths as well.
    assert_error(
        reqwest::Client::new()
            .get(app.url("/api/nothing-here"))
            .send()
            .await
            .unwrap(),
        401,
        "unauthorized",
    )
    .await;
    assert_error(
        reqwest::Client::new()
            .get(app.url("/api/admin/members"))
            .send()
            .await
            .unwrap(),
        401,
        "unauthorized",
    )
    .await;

    let page = app.client.get(app.url("/account?tab=sessions")).send().await.unwrap();
    assert_eq!(page.status(), 307);
    let location = page.headers()["location"].to_str().unwrap();
    assert!(
        location.starts_with("/sign-in?redirect_url=http%3A%2F%2F127.0.0.1%3A"),
        "{location}"
    );
    assert!(location.ends_with("%2Faccount%3Ftab%3Dsessions"), "{location}");

    // Public routes stay open, with or without a (bad) token.
    assert_eq!(
        reqwest::Client::new()
            .get(app.url("/healthz"))
            .bearer_auth("garbage")
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(app.client.get(app.url("/")).send().await.unwrap().status(), 200);
    // A percent-encoded path is classified as the router sees it.
    let encoded = reqwest::Client::new()
        .get(app.url("/api/%61dmin/members"))
        .send()
        .await
        .unwrap();
    assert_error(encoded, 401, "unauthorized").await;
}

async fn me_is_the_auth_object_without_a_database_read(database: TestDb) {
    let app = spawn_app(database).await;
    let signed = app.sign_up(&email()).await;
    let response = app.get_bearer("/api/me", &signed.jwt).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["x-user-id"], signed.user_id.as_str());
    let me: Value = response.json().await.unwrap();
    assert_eq!(me["user_id"], signed.user_id.as_str());
    assert_eq!(me["session_id"], signed.session_id.as_str());
    assert!(me["org_id"].is_null() && me["org_role"].is_null() && me["org_slug"].is_null());
    assert_eq!(me["org_permissions"], json!([]));
    assert_eq!(me["session_claims"]["sid"], signed.session_id.as_str());
    assert_eq!(me["session_claims"]["v"], 2);

    let profile: Value = app
        .get_bearer("/api/me/profile", &signed.jwt)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(profile["id"], signed.user_id.as_str());
    assert!(profile["email"].as_str().unwrap().ends_with("@example.com"));

    // With the user's row gone, /api/me still answers from the token alone; the profile does not.
    sqlx::query("DELETE FROM users WHERE id = $1")
        .bind(&signed.user_id)
        .execute(&app.state.db.pool)
        .await
        .unwrap();
    assert_eq!(app.get_bearer("/api/me", &signed.jwt).await.status(), 200);
    assert_error(app.get_bearer("/api/me/profile", &signed.jwt).await, 404, "not_found").await;
}

/// Claims of a valid token for `sub`/`sid`, to be bent by each attack.
fn claims(now: i64, sub: &str, sid: &str) -> Value {
    json!({
        "sub": sub, "sid": sid, "iss": "http://gatehouse.test", "iat": now, "nbf": now - 10, "exp": now + 60,
        "v": 2, "fva": [0, -1], "sts": "active", "jti": "test"
    })
}

fn b64(value: &Value) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(value.to_string())
}

async fn token_attacks_are_401(database: TestDb) {
    let app = spawn_app(database).await;
    let signed = app.sign_up(&email()).await;
    let now = gatehouse::clock::now_secs();
    let key = EncodingKey::from_rsa_pem(test_signing_key().as_bytes()).unwrap();
    let kid = app.state.keys.signing().kid.clone();
    let sign =
        |claims: &Value| sign_compact(&key, Algorithm::RS256, Some(&kid), SESSION_TOKEN_CATEGORY, claims).unwrap();

    // The forgery machinery works: a well-formed token signed with the real key passes.
    let base = claims(now, &signed.user_id, &signed.session_id);
    assert_eq!(app.get_bearer("/api/me", &sign(&base)).await.status(), 200);

    let jwks: Value = app
        .client
        .get(app.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let public_n = jwks["keys"][0]["n"].as_str().unwrap().to_owned();
    let hs_key = EncodingKey::from_secret(public_n.as_bytes());
    let tampered = {
        let good = sign(&base);
        let mut parts: Vec<String> = good.split('.').map(str::to_owned).collect();
        parts[1] = b64(
            &json!({"sub": "user_someone_else", "sid": signed.session_id, "iss": "http://gatehouse.test", "iat": now, "nbf": now, "exp": now + 60, "v": 2}),
        );
        parts.join(".")
    };
    let with = |patch: Value| {
        let mut c = base.clone();
        c.as_object_mut().unwrap().extend(patch.as_object().unwrap().clone());
        c
    };
    let attacks: Vec<(&str, String)> = vec![
        (
            "alg none",
            format!(
                "{}.{}.",
                b64(&json!({"alg": "none", "kid": kid, "typ": "JWT"})),
                b64(&base)
            ),
        ),
        (
            "alg none with signature",
            format!(
                "{}.{}.AAAA",
                b64(&json!({"alg": "none", "kid": kid, "typ": "JWT"})),
                b64(&base)
            ),
        ),
        (
            "HS256 with the public key",
            sign_compact(&hs_key, Algorithm::HS256, Some(&kid), SESSION_TOKEN_CATEGORY, &base).unwrap(),
        ),
        ("tampered payload", tampered),
        (
            "expired",
            sign(&with(json!({"iat": now - 120, "nbf": now - 130, "exp": now - 60}))),
        ),
        (
            "not yet valid",
            sign(&with(json!({"iat": now + 60, "nbf": now + 60, "exp": now + 120}))),
        ),
        ("wrong issuer", sign(&with(json!({"iss": "https://evil.example"})))),
        ("foreign azp", sign(&with(json!({"azp": "https://evil.example"})))),
        (
            "unknown kid",
            sign_compact(&key, Algorithm::RS256, Some("not-a-kid"), SESSION_TOKEN_CATEGORY, &base).unwrap(),
        ),
        (
            "no kid",
            sign_compact(&key, Algorithm::RS256, None, SESSION_TOKEN_CATEGORY, &base).unwrap(),
        ),
        (
            "template token",
            sign_compact(&key, Algorithm::RS256, Some(&kid), TEMPLATE_TOKEN_CATEGORY, &base).unwrap(),
        ),
        ("garbage", "garbage".to_owned()),
        ("three dots", "a.b.c".to_owned()),
    ];
    for (name, token) in attacks {
        let response = app.get_bearer("/api/me", &token).await;
        assert_eq!(response.status(), 401, "{name} must be refused");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"], "unauthorized", "{name}: {body}");
    }
    // Empty bearer and other schemes.
    for header in ["Bearer", "Bearer ", "Basic dXNlcjpwYXNz", &signed.jwt] {
        let response = reqwest::Client::new()
            .get(app.url("/api/me"))
            .header("authorization", header)
            .send()
            .await
            .unwrap();
        assert_error(response, 401, "unauthorized").await;
    }
}

async fn session_cookie_authenticates_and_csrf_is_checked(database: TestDb) {
    let app = spawn_app(database).await;
    // The app's cookie client holds __session after sign-up.
    let signed = app.sign_up(&email()).await;
    let me: Value = app
        .client
        .get(app.url("/api/me"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["user_id"], signed.user_id.as_str());

    // A cookie-authenticated change without a same-origin Origin is refused and writes nothing.
    let body = json!({"name": "Acme"});
    let no_origin = app
        .client
        .post(app.url("/api/organizations"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_error(no_origin, 403, "forbidden").await;
    let evil = app
        .client
        .post(app.url("/api/organizations"))
        .header("origin", "https://evil.example")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_error(evil, 403, "forbidden").await;
    let orgs: Value = app
        .client
        .get(app.url("/api/me/organizations"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(orgs["data"], json!([]));
    let same_origin = app
        .client
        .post(app.url("/api/organizations"))
        .header("origin", "http://app.test")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(same_origin.status(), 201);
    // A bearer token needs no Origin (no ambient credential to ride on).
    assert_eq!(
        app.send_bearer(
            Method::POST,
            "/api/organizations",
            &signed.jwt,
            Some(&json!({"name": "Beta"}))
        )
        .await
        .status(),
        201
    );
}

async fn old_tokens_are_session_expired_under_max_token_age(database: TestDb) {
    let app = spawn_app_with(
        database,
        TestOptions {
            vars: vec![("RATE_LIMIT", "off".into()), ("MAX_TOKEN_AGE", "1".into())],
            ..Default::default()
        },
    )
    .await;
    let signed = app.sign_up(&email()).await;
    assert_eq!(app.get_bearer("/api/me", &signed.jwt).await.status(), 200);
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    assert_error(app.get_bearer("/api/me", &signed.jwt).await, 401, "session_expired").await;
    // A refreshed token is fresh again.
    let refreshed = app
        .refresh(&app.client, &signed.session_id)
        .await
        .json::<Value>()
        .await
        .unwrap();
    assert_eq!(
        app.get_bearer("/api/me", refreshed["jwt"].as_str().unwrap())
            .await
            .status(),
        200
    );
}

#[actix_web::test]
async fn extractors_without_the_middleware_name_the_fix() {
    use actix_web::{App, test, web};
    use gatehouse::auth::extractors::Auth;
    let app =
        test::init_service(App::new().route("/x", web::get().to(|auth: Auth| async move { auth.user_id.clone() })))
            .await;
    let response = test::call_service(&app, test::TestRequest::get().uri("/x").to_request()).await;
    assert_eq!(response.status(), 500);
    let body: Value = test::read_body_json(response).await;
    assert_eq!(body["error"], "internal");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("guard middleware is not installed"),
        "{body}"
    );
}

/// The guard extractors not mounted on a built-in route, on a probe app that uses the
/// real state and middleware: allowed and denied for each.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn permission_and_optional_extractors_allow_and_deny() {
    use actix_web::middleware::from_fn;
    use actix_web::{App, HttpResponse, test, web};
    use gatehouse::auth::extractors::{DataDelete, DataWrite, MaybeAuth, RequirePermission};

    let app = spawn_app(TestDb::Sqlite).await;
    let ada = app.new_member().await;
    let bob = app.new_member().await;
    let org = app.org_with(&ada, &[&bob]).await;
    let (org_id, admin, member) = (org.id, org.admin_jwt, org.member_jwts[0].clone());

    let probe = test::init_service(
        App::new()
            .configure(|cfg| gatehouse::state::AppState::register(&app.state, cfg))
            .route(
                "/api/write",
                web::get()
                    .to(|p: RequirePermission<DataWrite>| async move { HttpResponse::Ok().body(p.org_id.clone()) }),
            )
            .route(
                "/api/delete",
                web::get().to(|_: RequirePermission<DataDelete>| async { HttpResponse::Ok().finish() }),
            )
            .route(
                "/api/public/maybe",
                web::get().to(|m: MaybeAuth| async move {
                    HttpResponse::Ok().body(m.0.map(|a| a.user_id.clone()).unwrap_or_default())
                }),
            )
            .wrap(from_fn(gatehouse::auth::guard::guard)),
    )
    .await;
    let call = |path: &str, jwt: Option<&str>| {
        let mut request = test::TestRequest::get().uri(path);
        if let Some(jwt) = jwt {
            request = request.insert_header(("authorization", format!("Bearer {jwt}")));
        }
        request.to_request()
    };

    // org:data:write: the member and the admin have it; without an organization it is 400.
    let allowed = test::call_service(&probe, call("/api/write", Some(&member))).await;
    assert_eq!(allowed.status(), 200);
    assert_eq!(test::read_body(allowed).await, org_id.as_bytes());
    assert_eq!(
        test::call_service(&probe, call("/api/write", Some(&admin)))
            .await
            .status()
            .as_u16(),
        200
    );
    assert_eq!(
        test::call_service(&probe, call("/api/write", Some(&bob.signed.jwt)))
            .await
            .status()
            .as_u16(),
        400
    );
    // org:data:delete: the admin has it, the member does not.
    assert_eq!(
        test::call_service(&probe, call("/api/delete", Some(&admin)))
            .await
            .status()
            .as_u16(),
        200
    );
    assert_eq!(
        test::call_service(&probe, call("/api/delete", Some(&member)))
            .await
            .status()
            .as_u16(),
        403
    );
    assert_eq!(
        test::call_service(&probe, call("/api/delete", None))
            .await
            .status()
            .as_u16(),
        401
    );
    // MaybeAuth on a public route: the user when signed in, nothing otherwise.
    let signed = test::call_service(&probe, call("/api/public/maybe", Some(&member))).await;
    assert_eq!(test::read_body(signed).await, bob.signed.user_id.as_bytes());
    let anonymous = test::call_service(&probe, call("/api/public/maybe", None)).await;
    assert_eq!(anonymous.status(), 200);
    assert!(test::read_body(anonymous).await.is_empty());
}
