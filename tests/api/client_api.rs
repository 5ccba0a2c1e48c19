//! Sign-up, sign-in, refresh, sign-out and the `__client` / `__session` cookies.

use reqwest::header::SET_COOKIE;
use serde_json::{Value, json};

use crate::db_tests;
use crate::helpers::{PASSWORD, TestDb, assert_error, cookie_client, email, signed_in, spawn_app};

db_tests!(
    sign_up_creates_user_session_and_cookies,
    emails_are_unique_case_insensitively,
    sign_in_adds_a_session_to_this_client,
    wrong_password_and_unknown_email_answer_the_same,
    failed_sign_ins_are_throttled,
    sign_in_renews_the_client_cookie,
    refresh_needs_this_devices_client,
    ended_and_expired_sessions_cannot_refresh,
    sign_out_everywhere_on_this_device,
    cross_origin_requests_are_refused,
);

fn set_cookies(response: &reqwest::Response) -> Vec<String> {
    response
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect()
}

fn cookie<'a>(cookies: &'a [String], name: &str) -> &'a str {
    cookies
        .iter()
        .find(|c| c.starts_with(&format!("{name}=")))
        .unwrap_or_else(|| panic!("no {name} cookie in {cookies:?}"))
}

async fn sign_up_creates_user_session_and_cookies(database: TestDb) {
    let app = spawn_app(database).await;
    let address = email();
    let response = app
        .post_json(
            &app.client,
            "/v1/sign-up",
            &json!({"email": address, "password": PASSWORD, "first_name": "Ada", "last_name": "Lovelace"}),
        )
        .await;
    assert_eq!(response.status(), 201);
    let cookies = set_cookies(&response);
    let client_cookie = cookie(&cookies, "__client");
    assert!(
        client_cookie.contains("HttpOnly") && client_cookie.contains("SameSite=Lax"),
        "{client_cookie}"
    );
    assert!(
        !client_cookie.contains("Secure"),
        "development cookies are not Secure: {client_cookie}"
    );
    // Persistent: closing the browser does not sign the device out.
    assert!(client_cookie.contains("Max-Age=604800"), "{client_cookie}");
    let session_cookie = cookie(&cookies, "__session");
    assert!(
        session_cookie.contains("Max-Age=60") && session_cookie.contains("SameSite=Lax"),
        "{session_cookie}"
    );

    let signed = signed_in(response).await;
    let user = &signed.body["user"];
    assert!(signed.user_id.starts_with("user_"));
    assert_eq!(user["email"], address.as_str());
    assert_eq!(user["first_name"], "Ada");
    assert_eq!(user["public_metadata"], json!({}));
    assert!(user.get("password_hash").is_none() && !signed.body.to_string().contains("argon2"));
    let session = &signed.body["session"];
    assert!(signed.session_id.starts_with("sess_"));
    assert_eq!(session["status"], "active");
    assert_eq!(session["user_id"], signed.user_id.as_str());
    assert!(session["active_organization_id"].is_null());
    let created = session["created_at"].as_i64().unwrap();
    assert!(created > 1_600_000_000_000, "timestamps are milliseconds");
    assert_eq!(session["expire_at"].as_i64().unwrap() - created, 604_800_000);
    assert!(session["ip_address"].as_str().is_some());
    assert!(cookie(&cookies, "__session").contains(&signed.jwt));

    let client: Value = app
        .client
        .get(app.url("/v1/client"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(client["id"].as_str().unwrap().starts_with("client_"));
    assert_eq!(client["sessions"].as_array().unwrap().len(), 1);
    assert_eq!(client["last_active_session_id"], signed.session_id.as_str());
}

async fn emails_are_unique_case_insensitively(database: TestDb) {
    let app = spawn_app(database).await;
    let address = email();
    app.sign_up(&address).await;
    let again = app
        .post_json(
            &cookie_client(),
            "/v1/sign-up",
            &json!({"email": address.to_uppercase(), "password": PASSWORD}),
        )
        .await;
    let body = assert_error(again, 422, "validation_failed").await;
    assert!(body["fields"]["email"].is_string(), "{body}");
    // And sign-in finds the user whatever the case.
    let response = app
        .sign_in_with(&cookie_client(), &address.to_uppercase(), PASSWORD)
        .await;
    assert_eq!(response.status(), 200);
}

async fn sign_in_adds_a_session_to_this_client(database: TestDb) {
    let app = spawn_app(database).await;
    let address = email();
    let first = app.sign_up(&address).await;
    let response = app.sign_in_with(&app.client, &address, PASSWORD).await;
    assert_eq!(response.status(), 200);
    let second = signed_in(response).await;
    assert_eq!(second.user_id, first.user_id);
    assert_ne!(second.session_id, first.session_id);
    let client: Value = app
        .client
        .get(app.url("/v1/client"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ids: Vec<&str> = client["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [first.session_id.as_str(), second.session_id.as_str()]);
    assert_eq!(client["last_active_session_id"], second.session_id.as_str());
    // Switching the active session of the device (Clerk's setActive) is a touch.
    let touched = app.switch_org(&app.client, &first.session_id, None).await;
    assert_eq!(touched.status(), 200);
    let client: Value = app
        .client
        .get(app.url("/v1/client"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(client["last_active_session_id"], first.session_id.as_str());
}

async fn wrong_password_and_unknown_email_answer_the_same(database: TestDb) {
    let app = spawn_app(database).await;
    let address = email();
    app.sign_up(&address).await;
    let wrong = app.sign_in_with(&cookie_client(), &address, "not the password").await;
    assert!(
        wrong.headers().get(SET_COOKIE).is_none(),
        "a failed sign-in sets no cookie"
    );
    let wrong = assert_error(wrong, 401, "unauthorized").await;
    let unknown = assert_error(
        app.sign_in_with(&cookie_client(), &email(), "not the password").await,
        401,
        "unauthorized",
    )
    .await;
    assert_eq!(wrong, unknown);
}

async fn failed_sign_ins_are_throttled(database: TestDb) {
    let app = spawn_app(database).await;
    let address = email();
    app.sign_up(&address).await;
    for _ in 0..5 {
        assert_error(
            app.sign_in_with(&cookie_client(), &address, "not the password").await,
            401,
            "unauthorized",
        )
        .await;
    }
    // Now even the right password waits, and so does an unknown email at the same count.
    let throttled = app.sign_in_with(&cookie_client(), &address, PASSWORD).await;
    let retry_after: u64 = throttled.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!(retry_after > 0 && retry_after <= 900);
    assert_error(throttled, 429, "rate_limited").await;
    // Another account is not locked by this one's failures.
    let other = email();
    app.sign_up_with(&cookie_client(), &other).await;
    assert_eq!(app.sign_in_with(&cookie_client(), &other, PASSWORD).await.status(), 200);
}

async fn sign_in_renews_the_client_cookie(database: TestDb) {
    let app = spawn_app(database).await;
    let address = email();
    let up = app
        .post_json(
            &app.client,
            "/v1/sign-up",
            &json!({"email": address, "password": PASSWORD}),
        )
        .await;
    let before = cookie(&set_cookies(&up), "__client")
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let again = app.sign_in_with(&app.client, &address, PASSWORD).await;
    let again_cookies = set_cookies(&again);
    let renewed = cookie(&again_cookies, "__client");
    assert!(
        renewed.contains("Max-Age=604800"),
        "sign-in renews the lifetime: {renewed}"
    );
    let after = renewed.split(';').next().unwrap().to_owned();
    assert_ne!(before, after, "sign-in issues a new __client cookie value");
}

async fn refresh_needs_this_devices_client(database: TestDb) {
    let app = spawn_app(database).await;
    let signed = app.sign_up(&email()).await;
    let refreshed = app.refresh(&app.client, &signed.session_id).await;
    assert_eq!(refreshed.status(), 200);
    assert!(cookie(&set_cookies(&refreshed), "__session").contains("Max-Age=60"));
    let jwt = refreshed.json::<Value>().await.unwrap()["jwt"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(jwt, signed.jwt);

    // No cookie: 401. Another device's cookie: the session does not exist there.
    assert_error(
        app.refresh(&reqwest::Client::new(), &signed.session_id).await,
        401,
        "unauthorized",
    )
    .await;
    let stranger = cookie_client();
    app.sign_up_with(&stranger, &email()).await;
    assert_error(app.refresh(&stranger, &signed.session_id).await, 404, "not_found").await;
    assert_error(app.refresh(&app.client, "sess_doesnotexist").await, 404, "not_found").await;
    assert_error(app.refresh(&app.client, "not-an-id").await, 404, "not_found").await;
}

async fn ended_and_expired_sessions_cannot_refresh(database: TestDb) {
    let app = spawn_app(database).await;
    let address = email();
    let first = app.sign_up(&address).await;
    let second = signed_in(app.sign_in_with(&app.client, &address, PASSWORD).await).await;

    let ended = app
        .client
        .post(app.url(&format!("/v1/client/sessions/{}/end", first.session_id)))
        .send()
        .await
        .unwrap();
    assert_eq!(ended.status(), 200);
    assert_eq!(ended.json::<Value>().await.unwrap()["session"]["status"], "ended");
    assert_error(app.refresh(&app.client, &first.session_id).await, 401, "unauthorized").await;

    // Past its absolute lifetime, a session is expired.
    sqlx::query("UPDATE sessions SET expire_at = 1 WHERE id = $1")
        .bind(&second.session_id)
        .execute(&app.state.db.pool)
        .await
        .unwrap();
    assert_error(
        app.refresh(&app.client, &second.session_id).await,
        401,
        "session_expired",
    )
    .await;
    let status: String = sqlx::query_scalar("SELECT status FROM sessions WHERE id = $1")
        .bind(&second.session_id)
        .fetch_one(&app.state.db.pool)
        .await
        .unwrap();
    assert_eq!(status, "expired");
    let client: Value = app
        .client
        .get(app.url("/v1/client"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(client["sessions"], json!([]));
}

async fn sign_out_everywhere_on_this_device(database: TestDb) {
    let app = spawn_app(database).await;
    let a = app.sign_up(&email()).await;
    let b = app.sign_up(&email()).await;
    let response = app.client.delete(app.url("/v1/client/sessions")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(cookie(&set_cookies(&response), "__session").contains("Max-Age=0"));
    let client: Value = response.json().await.unwrap();
    assert_eq!(client["sessions"], json!([]));
    assert!(client["last_active_session_id"].is_null());
    for sid in [&a.session_id, &b.session_id] {
        assert_error(app.refresh(&app.client, sid).await, 401, "unauthorized").await;
    }
}

async fn cross_origin_requests_are_refused(database: TestDb) {
    let app = spawn_app(database).await;
    let address = email();
    let evil = app
        .client
        .post(app.url("/v1/sign-up"))
        .header("origin", "https://evil.example")
        .json(&json!({"email": address, "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_error(evil, 403, "forbidden").await;
    let signed = app.sign_up(&address).await;
    let evil_refresh = app
        .client
        .post(app.url(&format!("/v1/client/sessions/{}/tokens", signed.session_id)))
        .header("origin", "null")
        .send()
        .await
        .unwrap();
    assert_error(evil_refresh, 403, "forbidden").await;
    let evil_end = app
        .client
        .post(app.url(&format!("/v1/client/sessions/{}/end", signed.session_id)))
        .header("sec-fetch-site", "cross-site")
        .send()
        .await
        .unwrap();
    assert_error(evil_end, 403, "forbidden").await;
    // Nothing was ended by the refused requests.
    assert_eq!(app.refresh(&app.client, &signed.session_id).await.status(), 200);
    // An allowed origin is accepted and becomes the token's `azp`.
    let allowed = app
        .client
        .post(app.url(&format!("/v1/client/sessions/{}/tokens", signed.session_id)))
        .header("origin", "http://app.test")
        .send()
        .await
        .unwrap();
    assert_eq!(allowed.status(), 200);
    let jwt = allowed.json::<Value>().await.unwrap()["jwt"]
        .as_str()
        .unwrap()
        .to_owned();
    let claims = crate::session_tokens::claims_of(&jwt);
    assert_eq!(claims["azp"], "http://app.test");
}
