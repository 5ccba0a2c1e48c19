//! Sign-in with OAuth / OpenID Connect providers, against the mock provider: first
//! visit, return visit, linking by verified email only, GitHub, the second factor, every
//! forged or broken answer, unknown providers, and the unlinking rules.

use reqwest::{Method, Response};
use serde_json::{Value, json};

use crate::db_tests;
use crate::helpers::{
    PASSWORD, TestApp, TestDb, TestOptions, cookie_client, email, jwt_of, set_cookies, spawn_app_with,
};
use crate::oidc_mock::{MockProvider, MockUser, Tamper};

db_tests!(
    first_visit_creates_the_user_and_return_visits_sign_them_in,
    an_existing_user_is_linked_only_when_both_sides_verified_the_email,
    forged_or_broken_answers_sign_nobody_in,
    github_signs_in_with_the_primary_verified_email,
    a_user_with_a_second_factor_still_gives_it,
    a_provider_that_takes_client_secret_post_only,
    unlinking_keeps_a_way_to_sign_in,
);

async fn app_with(database: TestDb, vars: Vec<(&'static str, String)>) -> TestApp {
    let mut options = TestOptions::default();
    options.vars.extend(vars);
    spawn_app_with(database, options).await
}

/// One provider round trip in a browser without JavaScript: `/v1/oauth/{provider}` sets
/// the flow cookie and sends the browser to the provider, which sends it back to the
/// callback. Returns the callback's answer.
pub async fn round_trip(app: &TestApp, browser: &reqwest::Client, provider: &str, redirect_url: &str) -> Response {
    let at_provider = authorize(app, browser, provider, redirect_url).await;
    browser.get(app.url(&callback_path(&at_provider))).send().await.unwrap()
}

/// The way out: the provider's answer (a 302 back to the callback URL).
async fn authorize(app: &TestApp, browser: &reqwest::Client, provider: &str, redirect_url: &str) -> String {
    let start = browser
        .get(app.url(&format!("/v1/oauth/{provider}?redirect_url={redirect_url}")))
        .send()
        .await
        .unwrap();
    assert_eq!(start.status(), 302, "{:?}", start.text().await);
    let to_provider = start.headers()["location"].to_str().unwrap().to_owned();
    assert!(to_provider.contains("code_challenge_method=S256"), "{to_provider}");
    let answer = browser.get(&to_provider).send().await.unwrap();
    assert_eq!(answer.status(), 302, "{:?}", answer.text().await);
    answer.headers()["location"].to_str().unwrap().to_owned()
}

/// The path (and query) of the URL the provider sent the browser back to.
fn callback_path(back: &str) -> String {
    back[back.find("/v1/oauth/").expect("a callback URL")..].to_owned()
}

/// A signed-in callback: 303 to `to` with the session cookies; returns the session's
/// user id and a token for it.
async fn signed_in(app: &TestApp, browser: &reqwest::Client, response: Response, to: &str) -> (String, String) {
    assert_eq!(response.status(), 303);
    assert_eq!(response.headers()["location"], to);
    let set = set_cookies(&response);
    assert!(set.iter().any(|c| c.starts_with("__session=")), "{set:?}");
    let client: Value = browser
        .get(app.url("/v1/client"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let session = &client["sessions"][0];
    let sid = session["id"].as_str().unwrap();
    let jwt = jwt_of(app.refresh(browser, sid).await).await;
    (session["user_id"].as_str().unwrap().to_owned(), jwt)
}

/// A failed callback: 303 to `/sign-in?error=oauth_failed`, no session cookie, and the
/// flow cookie removed.
fn failed(response: &Response) {
    assert_eq!(response.status(), 303);
    assert_eq!(response.headers()["location"], "/sign-in?error=oauth_failed");
    let set = set_cookies(response);
    assert!(
        !set.iter()
            .any(|c| c.starts_with("__session=") || c.starts_with("__client=")),
        "{set:?}"
    );
    assert!(set.iter().any(|c| c.starts_with("__gatehouse_oauth=;")), "{set:?}");
}

/// `oauth_providers` of `GET /v1/environment`.
async fn providers_listed(app: &TestApp) -> Value {
    let environment: Value = app
        .client
        .get(app.url("/v1/environment"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    environment["oauth_providers"].clone()
}

async fn unlink(app: &TestApp, jwt: &str, identity: &Value) -> u16 {
    let path = format!("/api/me/identities/{}", identity["id"].as_str().unwrap());
    app.send_bearer(Method::DELETE, &path, jwt, None)
        .await
        .status()
        .as_u16()
}

async fn identities(app: &TestApp, jwt: &str) -> Vec<Value> {
    let response = app.get_bearer("/api/me/identities", jwt).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    body["data"].as_array().unwrap().clone()
}

async fn user(app: &TestApp, id: &str) -> Value {
    app.backend(Method::GET, &format!("/backend/v1/users/{id}"), None)
        .await
        .json()
        .await
        .unwrap()
}

async fn users(app: &TestApp) -> i64 {
    app.count("SELECT COUNT(*) FROM users WHERE id <> $1", "").await
}

async fn verify_email_here(app: &TestApp, user_id: &str) {
    sqlx::query("UPDATE users SET email_verified = 1 WHERE id = $1")
        .bind(user_id)
        .execute(&app.state.db.pool)
        .await
        .unwrap();
}

async fn first_visit_creates_the_user_and_return_visits_sign_them_in(database: TestDb) {
    let address = email();
    let original = MockUser::new(&address, true);
    let provider = MockProvider::start(original.clone()).await;
    let app = app_with(database, provider.vars("okta")).await;
    assert_eq!(providers_listed(&app).await, json!(["okta"]));

    let browser = cookie_client();
    let response = round_trip(&app, &browser, "okta", "/dashboard").await;
    let (user_id, jwt) = signed_in(&app, &browser, response, "/dashboard").await;
    let stored = user(&app, &user_id).await;
    assert_eq!(stored["email"], address.as_str());
    assert_eq!(stored["email_verified"], true, "the provider vouched for it");
    assert_eq!(stored["first_name"], "Grace");
    assert_eq!(stored["has_password"], false);
    let linked = identities(&app, &jwt).await;
    assert_eq!(linked.len(), 1);
    assert_eq!(linked[0]["provider"], "okta");
    assert_eq!(linked[0]["email"], address.as_str());
    assert!(linked[0]["id"].as_str().unwrap().starts_with("idn_"));
    assert!(
        linked[0].get("subject").is_none(),
        "the provider's subject stays on the server"
    );

    // Another browser, another day: the same user, no second identity or account.
    let other = cookie_client();
    let response = round_trip(&app, &other, "okta", "https%3A%2F%2Fevil.example%2F").await;
    let (again, jwt) = signed_in(&app, &other, response, "/account").await;
    assert_eq!(again, user_id, "the return visit is the same user");
    assert_eq!(identities(&app, &jwt).await.len(), 1);
    assert_eq!(users(&app).await, 1);
    assert_eq!(
        app.count(
            "SELECT COUNT(*) FROM audit_log WHERE action = 'identity.linked' AND target_id = $1",
            &user_id
        )
        .await,
        1
    );
    assert_eq!(
        app.count(
            "SELECT COUNT(*) FROM audit_log WHERE action = 'session.created' AND actor_id = $1",
            &user_id
        )
        .await,
        2,
        "each sign-in is a session.created"
    );
    assert_eq!(
        app.count("SELECT COUNT(*) FROM events WHERE type = $1", "user.created")
            .await,
        1
    );

    // The address at the provider changes: the subject still names the same user.
    let mut renamed = original.clone();
    renamed.email = Some(email());
    provider.set_user(renamed);
    let third = cookie_client();
    let response = round_trip(&app, &third, "okta", "/account").await;
    assert_eq!(signed_in(&app, &third, response, "/account").await.0, user_id);
    assert_eq!(users(&app).await, 1);

    // The userinfo endpoint completes an ID token without an email.
    provider.set_user(MockUser::new(&email(), true));
    provider.set_tamper(Tamper::EmailOnlyInUserinfo);
    let fourth = cookie_client();
    let response = round_trip(&app, &fourth, "okta", "/account").await;
    let (from_userinfo, _) = signed_in(&app, &fourth, response, "/account").await;
    assert_eq!(user(&app, &from_userinfo).await["email_verified"], true);

    // Discovery and the JWKS were fetched once for all these sign-ins. The provider
    // rotates its key: the first token signed by the new key refetches them, once.
    assert_eq!(provider.discovery_requests(), 1);
    provider.set_tamper(Tamper::None);
    provider.rotate_key();
    let fifth = cookie_client();
    let response = round_trip(&app, &fifth, "okta", "/account").await;
    signed_in(&app, &fifth, response, "/account").await;
    assert_eq!(provider.discovery_requests(), 2);
    let sixth = cookie_client();
    let response = round_trip(&app, &sixth, "okta", "/account").await;
    signed_in(&app, &sixth, response, "/account").await;
    assert_eq!(provider.discovery_requests(), 2);
}

async fn an_existing_user_is_linked_only_when_both_sides_verified_the_email(database: TestDb) {
    let provider = MockProvider::start(MockUser::new(&email(), true)).await;
    let app = app_with(database, provider.vars("okta")).await;
    let ada = app.new_member().await; // signed up with a password; address not verified here

    // The provider vouches for the address, but nobody proved it here: no link (whoever
    // registered it here first may not own it).
    provider.set_user(MockUser::new(&ada.email, true));
    failed(&round_trip(&app, &cookie_client(), "okta", "/account").await);
    assert_eq!(
        app.count(
            "SELECT COUNT(*) FROM identities WHERE user_id = $1",
            &ada.signed.user_id
        )
        .await,
        0
    );
    assert_eq!(
        app.count(
            "SELECT COUNT(*) FROM audit_log WHERE action = 'sign_in.failed' AND target_id = $1",
            &ada.signed.user_id
        )
        .await,
        1
    );

    // Verified here, but the provider does not vouch for it: still no link.
    verify_email_here(&app, &ada.signed.user_id).await;
    let mut unverified = MockUser::new(&ada.email.to_uppercase(), false);
    unverified.sub = "attacker-at-a-lax-provider".to_owned();
    provider.set_user(unverified);
    failed(&round_trip(&app, &cookie_client(), "okta", "/account").await);
    assert_eq!(
        app.count(
            "SELECT COUNT(*) FROM identities WHERE user_id = $1",
            &ada.signed.user_id
        )
        .await,
        0
    );
    assert_eq!(users(&app).await, 1, "no second account for the address either");

    // Both verified: linked to Ada, signed in as Ada; her password still works.
    provider.set_user(MockUser::new(&ada.email, true));
    let browser = cookie_client();
    let response = round_trip(&app, &browser, "okta", "/account").await;
    let (user_id, jwt) = signed_in(&app, &browser, response, "/account").await;
    assert_eq!(user_id, ada.signed.user_id);
    assert_eq!(identities(&app, &jwt).await.len(), 1);
    assert_eq!(
        app.sign_in_with(&cookie_client(), &ada.email, PASSWORD).await.status(),
        200
    );
}

async fn forged_or_broken_answers_sign_nobody_in(database: TestDb) {
    let provider = MockProvider::start(MockUser::new(&email(), true)).await;
    let app = app_with(database, provider.vars("okta")).await;

    for tamper in [
        Tamper::WrongNonce,
        Tamper::WrongAudience,
        Tamper::Expired,
        Tamper::ForeignKey,
        Tamper::UnknownKey,
        Tamper::Deny,
    ] {
        provider.set_tamper(tamper);
        let response = round_trip(&app, &cookie_client(), "okta", "/account").await;
        failed(&response);
        assert_eq!(users(&app).await, 0, "{tamper:?} signed someone in");
    }
    provider.set_tamper(Tamper::None);

    // A tampered state, and a state from another browser's flow.
    let browser = cookie_client();
    let back = authorize(&app, &browser, "okta", "/account").await;
    let path = callback_path(&back);
    let tampered = path.replace("state=", "state=x");
    failed(&browser.get(app.url(&tampered)).send().await.unwrap());
    let back = authorize(&app, &browser, "okta", "/account").await;
    let stranger = cookie_client();
    failed(&stranger.get(app.url(&callback_path(&back))).send().await.unwrap());
    // The callback for the right provider name only.
    let back = authorize(&app, &browser, "okta", "/account").await;
    let requests = provider.token_requests();
    let wrong_provider = callback_path(&back).replace("/v1/oauth/okta/", "/v1/oauth/nope/");
    assert_eq!(
        browser.get(app.url(&wrong_provider)).send().await.unwrap().status(),
        404
    );
    // A flow cookie forged by hand does not open.
    let forged = cookie_client();
    let response = forged
        .get(app.url(&callback_path(&back)))
        .header("cookie", "__gatehouse_oauth=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
        .send()
        .await
        .unwrap();
    failed(&response);
    assert_eq!(
        provider.token_requests(),
        requests,
        "no code exchanged for a flow that did not open"
    );
    assert_eq!(users(&app).await, 0);

    // The real answer works once; the callback replayed (the flow spent) does not.
    let response = browser.get(app.url(&callback_path(&back))).send().await.unwrap();
    signed_in(&app, &browser, response, "/account").await;
    failed(&browser.get(app.url(&callback_path(&back))).send().await.unwrap());
    assert_eq!(users(&app).await, 1);

    // Unknown providers: 404 both ways.
    assert_eq!(
        app.client.get(app.url("/v1/oauth/nope")).send().await.unwrap().status(),
        404
    );
    assert_eq!(
        app.client
            .get(app.url("/v1/oauth/nope/callback?code=x&state=y"))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
}

async fn github_signs_in_with_the_primary_verified_email(database: TestDb) {
    let address = email();
    let provider = MockProvider::start(MockUser::new(&address, true)).await;
    let app = app_with(database, provider.github_vars()).await;
    assert_eq!(providers_listed(&app).await, json!(["github"]));

    let browser = cookie_client();
    let response = round_trip(&app, &browser, "github", "/account").await;
    let (user_id, jwt) = signed_in(&app, &browser, response, "/account").await;
    let stored = user(&app, &user_id).await;
    assert_eq!(
        stored["email"],
        address.as_str(),
        "the primary address, not the secondary"
    );
    assert_eq!(stored["email_verified"], true);
    assert_eq!(stored["first_name"], "Grace");
    assert_eq!(stored["last_name"], "Hopper");
    assert_eq!(identities(&app, &jwt).await[0]["provider"], "github");

    // An unverified primary address makes an unverified account, and links nothing.
    let ada = app.new_member().await;
    verify_email_here(&app, &ada.signed.user_id).await;
    provider.set_user(MockUser::new(&ada.email, false));
    failed(&round_trip(&app, &cookie_client(), "github", "/account").await);
    assert_eq!(
        app.count(
            "SELECT COUNT(*) FROM identities WHERE user_id = $1",
            &ada.signed.user_id
        )
        .await,
        0
    );
}

async fn a_user_with_a_second_factor_still_gives_it(database: TestDb) {
    let provider = MockProvider::start(MockUser::new(&email(), true)).await;
    let app = app_with(database, provider.vars("okta")).await;
    let browser = cookie_client();
    let response = round_trip(&app, &browser, "okta", "/account").await;
    let (user_id, jwt) = signed_in(&app, &browser, response, "/account").await;
    let setup: Value = app
        .send_bearer(Method::POST, "/api/me/mfa/totp", &jwt, None)
        .await
        .json()
        .await
        .unwrap();
    let secret = gatehouse::auth::totp::base32_decode(setup["secret"].as_str().unwrap()).unwrap();
    let now = gatehouse::clock::now_ms() / 1000;
    let step = gatehouse::auth::totp::step_of(now);
    let first = gatehouse::auth::totp::code_at(&secret, step);
    let done = app
        .send_bearer(
            Method::POST,
            "/api/me/mfa/totp/attempt",
            &jwt,
            Some(&json!({"code": first})),
        )
        .await;
    assert_eq!(done.status(), 200);

    // The provider's word is the first factor only.
    let device = cookie_client();
    let response = round_trip(&app, &device, "okta", "/account").await;
    assert_eq!(response.status(), 303);
    let to = response.headers()["location"].to_str().unwrap().to_owned();
    assert!(to.starts_with("/sign-in?second_factor=signin_"), "{to}");
    assert!(!set_cookies(&response).iter().any(|c| c.starts_with("__session=")));
    let attempt = to["/sign-in?second_factor=".len()..]
        .split('&')
        .next()
        .unwrap()
        .to_owned();
    let next = gatehouse::auth::totp::code_at(&secret, step + 1);
    let finished = app
        .post_json(
            &device,
            &format!("/v1/sign-in/{attempt}/second-factor"),
            &json!({"strategy": "totp", "code": next}),
        )
        .await;
    assert_eq!(finished.status(), 200);
    let body: Value = finished.json().await.unwrap();
    assert_eq!(body["user"]["id"], user_id.as_str());
}

async fn unlinking_keeps_a_way_to_sign_in(database: TestDb) {
    let address = email();
    let provider = MockProvider::start(MockUser::new(&address, true)).await;
    let mut vars = provider.vars("okta");
    vars[0].1 = "okta,google".to_owned();
    vars.extend(provider.vars("google").into_iter().skip(1));
    let app = app_with(database, vars).await;

    // Grace signs up with Okta (no password), then signs in with Google (same verified
    // address, its own subject there): linked to the same account.
    let browser = cookie_client();
    let response = round_trip(&app, &browser, "okta", "/account").await;
    let (grace, jwt) = signed_in(&app, &browser, response, "/account").await;
    let only = identities(&app, &jwt).await;
    assert_eq!(unlink(&app, &jwt, &only[0]).await, 409, "the last way to sign in");
    let mut at_google = MockUser::new(&address, true);
    at_google.sub = "google-subject".to_owned();
    provider.set_user(at_google);
    let other = cookie_client();
    let response = round_trip(&app, &other, "google", "/account").await;
    let (same, jwt) = signed_in(&app, &other, response, "/account").await;
    assert_eq!(same, grace);
    let both = identities(&app, &jwt).await;
    assert_eq!(both.len(), 2);

    // Someone else's identity is not hers to unlink, nor is an id of another kind.
    let bob = app.new_member().await;
    assert_eq!(unlink(&app, &bob.signed.jwt, &both[0]).await, 404);
    assert_eq!(
        unlink(&app, &jwt, &json!({"id": "user_123"})).await,
        404,
        "not an identity id"
    );

    // One of two: unlinked (audited); the other is now the last.
    let okta = both.iter().find(|i| i["provider"] == "okta").unwrap();
    let google = both.iter().find(|i| i["provider"] == "google").unwrap();
    assert_eq!(unlink(&app, &jwt, okta).await, 204);
    assert_eq!(
        app.count(
            "SELECT COUNT(*) FROM audit_log WHERE action = 'identity.unlinked' AND actor_id = $1",
            &grace
        )
        .await,
        1
    );
    assert_eq!(unlink(&app, &jwt, google).await, 409);
    assert_eq!(identities(&app, &jwt).await.len(), 1);

    // Unlinked Okta no longer knows her subject there: signing in with it again links
    // afresh (the address is verified on both sides), it does not fail.
    provider.set_user({
        let mut back = MockUser::new(&address, true);
        back.sub = "okta-again".to_owned();
        back
    });
    let third = cookie_client();
    let response = round_trip(&app, &third, "okta", "/account").await;
    let (again, _) = signed_in(&app, &third, response, "/account").await;
    assert_eq!(again, grace);

    // A user with a password may unlink their only identity.
    let ada = app.new_member().await;
    verify_email_here(&app, &ada.signed.user_id).await;
    provider.set_user(MockUser::new(&ada.email, true));
    let browser = cookie_client();
    let response = round_trip(&app, &browser, "okta", "/account").await;
    let (ada_id, jwt) = signed_in(&app, &browser, response, "/account").await;
    assert_eq!(ada_id, ada.signed.user_id);
    let linked = identities(&app, &jwt).await;
    assert_eq!(unlink(&app, &jwt, &linked[0]).await, 204);
}

async fn a_provider_that_takes_client_secret_post_only(database: TestDb) {
    let provider = MockProvider::start(MockUser::new(&email(), true)).await;
    provider.take_client_secret_post_only();
    let app = app_with(database, provider.vars("keycloak")).await;
    let browser = cookie_client();
    let response = round_trip(&app, &browser, "keycloak", "/account").await;
    signed_in(&app, &browser, response, "/account").await;
}
