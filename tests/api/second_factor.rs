//! The second factor: setting up an authenticator (TOTP) with backup codes, sign-in
//! attempts that need it (on every first factor), its attack cases (replayed, used twice,
//! another device, too many tries, expired, raced), reverification with it, secrets at
//! rest, and support turning it off.

use reqwest::Method;
use serde_json::{Value, json};

use gatehouse::auth::totp::{base32_decode, code_at, step_of};

use crate::db_tests;
use crate::helpers::{
    Member, PASSWORD, TestApp, TestDb, TestOptions, assert_error, cookie_client, jwt_of, spawn_app, spawn_app_with,
};
use crate::session_tokens::claims_of;
use crate::smtp::SmtpSink;

db_tests!(
    setting_up_an_authenticator_needs_a_fresh_password_and_one_code,
    sign_in_waits_for_the_second_factor,
    attempts_end_after_five_tries_or_ten_minutes,
    raced_completions_of_one_attempt_make_one_session,
    reverification_with_a_second_factor_and_turning_it_off,
    emailed_code_sign_in_also_needs_the_second_factor,
);

fn now_secs() -> i64 {
    gatehouse::clock::now_ms() / 1000
}

/// A code of the authenticator `steps` steps from now.
fn code(secret: &[u8], steps: i64) -> String {
    code_at(secret, step_of(now_secs()) + steps)
}

/// Sets up an authenticator for a freshly signed-up member: its seed and backup codes
/// (see [`enroll_with`] for the code that finished the setup).
async fn enroll(app: &TestApp, member: &Member) -> (Vec<u8>, Vec<String>) {
    let (secret, codes, _) = enroll_with(app, member).await;
    (secret, codes)
}

/// [`enroll`], also returning the TOTP code that finished the setup (used, so dead).
async fn enroll_with(app: &TestApp, member: &Member) -> (Vec<u8>, Vec<String>, String) {
    let setup = app
        .send_bearer(Method::POST, "/api/me/mfa/totp", &member.signed.jwt, None)
        .await;
    assert_eq!(setup.status(), 201);
    let setup: Value = setup.json().await.unwrap();
    let secret = base32_decode(setup["secret"].as_str().unwrap()).unwrap();
    let used = code(&secret, 0);
    let done = app
        .send_bearer(
            Method::POST,
            "/api/me/mfa/totp/attempt",
            &member.signed.jwt,
            Some(&json!({"code": used})),
        )
        .await;
    assert_eq!(done.status(), 200);
    let codes: Value = done.json().await.unwrap();
    let codes = codes["backup_codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect();
    (secret, codes, used)
}

async fn password_sign_in(app: &TestApp, device: &reqwest::Client, email: &str) -> reqwest::Response {
    app.sign_in_with(device, email, PASSWORD).await
}

/// Signs in with the password on `device` and returns the attempt id.
async fn attempt_on(app: &TestApp, device: &reqwest::Client, email: &str) -> String {
    let response = password_sign_in(app, device, email).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], "needs_second_factor", "{body}");
    body["sign_in"]["id"].as_str().unwrap().to_owned()
}

async fn second_factor(
    app: &TestApp,
    device: &reqwest::Client,
    attempt: &str,
    strategy: &str,
    code: &str,
) -> reqwest::Response {
    app.post_json(
        device,
        &format!("/v1/sign-in/{attempt}/second-factor"),
        &json!({"strategy": strategy, "code": code}),
    )
    .await
}

async fn setting_up_an_authenticator_needs_a_fresh_password_and_one_code(database: TestDb) {
    let app = spawn_app(database).await;
    let ada = app.new_member().await;
    let bob = app.new_member().await;
    let stale = app.stale_token(&bob).await;
    assert_error(
        app.send_bearer(Method::POST, "/api/me/mfa/totp", &stale, None).await,
        403,
        "reverification_required",
    )
    .await;
    assert_error(
        app.send_bearer(
            Method::POST,
            "/api/me/mfa/totp/attempt",
            &ada.signed.jwt,
            Some(&json!({"code": "123456"})),
        )
        .await,
        409,
        "conflict",
    )
    .await;

    let setup = app
        .send_bearer(Method::POST, "/api/me/mfa/totp", &ada.signed.jwt, None)
        .await;
    assert_eq!(setup.status(), 201);
    assert_eq!(setup.headers()["cache-control"], "no-store");
    let setup: Value = setup.json().await.unwrap();
    let secret_b32 = setup["secret"].as_str().unwrap().to_owned();
    let secret = base32_decode(&secret_b32).unwrap();
    assert_eq!(secret.len(), 20);
    let uri = setup["uri"].as_str().unwrap();
    assert!(uri.starts_with("otpauth://totp/Gatehouse:"), "{uri}");
    assert!(uri.contains(&format!("secret={secret_b32}")) && uri.contains("digits=6") && uri.contains("period=30"));
    assert!(setup["qr_svg"].as_str().unwrap().contains("<svg"));
    // Not on until a code proves the app has it.
    let profile: Value = app
        .get_bearer("/api/me/profile", &ada.signed.jwt)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(profile["two_factor_enabled"], false);

    let attempt = |code: String| {
        let app = &app;
        let jwt = ada.signed.jwt.clone();
        async move {
            app.send_bearer(
                Method::POST,
                "/api/me/mfa/totp/attempt",
                &jwt,
                Some(&json!({"code": code})),
            )
            .await
        }
    };
    let wrong = if code(&secret, 0) == "000000" {
        "111111"
    } else {
        "000000"
    };
    let error = assert_error(attempt(wrong.to_owned()).await, 422, "validation_failed").await;
    assert!(error["fields"]["code"].is_string());
    let stale_code = code(&secret, -3);
    assert_error(attempt(stale_code).await, 422, "validation_failed").await;
    let done = attempt(code(&secret, 0)).await;
    assert_eq!(done.status(), 200);
    let codes: Value = done.json().await.unwrap();
    let codes: Vec<String> = codes["backup_codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(codes.len(), 10);
    let profile: Value = app
        .get_bearer("/api/me/profile", &ada.signed.jwt)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(profile["two_factor_enabled"], true);
    // This session proved the second factor just now.
    let jwt = jwt_of(app.refresh(&ada.client, &ada.signed.session_id).await).await;
    assert_eq!(claims_of(&jwt)["fva"], json!([0, 0]));
    assert_eq!(claims_of(&ada.signed.jwt)["fva"], json!([0, -1]));
    // Once on, setting up again is refused until it is turned off.
    assert_error(
        app.send_bearer(Method::POST, "/api/me/mfa/totp", &jwt, None).await,
        409,
        "conflict",
    )
    .await;
    assert_error(attempt(code(&secret, 1)).await, 409, "conflict").await;

    // At rest: the seed is sealed, the backup codes hashed.
    let sealed: String = sqlx::query_scalar("SELECT secret_sealed FROM totp_factors WHERE user_id = $1")
        .bind(&ada.signed.user_id)
        .fetch_one(&app.state.db.pool)
        .await
        .unwrap();
    assert!(!sealed.contains(&secret_b32) && !sealed.contains(&secret_b32.to_lowercase()));
    assert!(
        gatehouse::auth::sealing::Sealer::new("another key")
            .open(&ada.signed.user_id, &sealed)
            .is_err()
    );
    let hashes: Vec<String> = sqlx::query_scalar("SELECT code_hash FROM backup_codes WHERE user_id = $1")
        .bind(&ada.signed.user_id)
        .fetch_all(&app.state.db.pool)
        .await
        .unwrap();
    assert_eq!(hashes.len(), 10);
    for code in &codes {
        let plain = code.replace('-', "");
        assert!(
            hashes.iter().all(|h| !h.contains(&plain)),
            "a backup code stored in clear"
        );
    }
    assert!(
        app.count("SELECT COUNT(*) FROM events WHERE type = $1", "user.updated")
            .await
            >= 1
    );
}

async fn sign_in_waits_for_the_second_factor(database: TestDb) {
    let app = spawn_app(database).await;
    let ada = app.new_member().await;
    let (secret, codes, used) = enroll_with(&app, &ada).await;
    let sessions_before = app
        .count("SELECT COUNT(*) FROM sessions WHERE user_id = $1", &ada.signed.user_id)
        .await;

    // The password alone opens no session and sets no token.
    let device = cookie_client();
    let response = password_sign_in(&app, &device, &ada.email).await;
    assert_eq!(response.status(), 200);
    let set_cookies = crate::helpers::set_cookies(&response);
    assert!(
        set_cookies.iter().all(|c| !c.starts_with("__session=")),
        "{set_cookies:?}"
    );
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], "needs_second_factor");
    assert!(body.get("jwt").is_none() && body.get("session").is_none(), "{body}");
    let attempt = body["sign_in"]["id"].as_str().unwrap().to_owned();
    assert!(attempt.starts_with("signin_"));
    assert_eq!(
        body["sign_in"]["supported_second_factors"],
        json!(["totp", "backup_code"])
    );
    assert!(body["sign_in"]["expire_at"].as_i64().unwrap() > gatehouse::clock::now_ms());
    assert_eq!(
        app.count("SELECT COUNT(*) FROM sessions WHERE user_id = $1", &ada.signed.user_id)
            .await,
        sessions_before
    );
    let client: Value = device
        .get(app.url("/v1/client"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(client["last_active_session_id"].is_null(), "{client}");

    // Another device's cookie jar cannot finish it; nor a wrong code, nor the code that
    // set the authenticator up (used already), nor an unknown strategy.
    let next = code(&secret, 1);
    assert_error(
        second_factor(&app, &cookie_client(), &attempt, "totp", &next).await,
        401,
        "unauthorized",
    )
    .await;
    assert_error(
        second_factor(&app, &device, &attempt, "totp", "12345x").await,
        401,
        "unauthorized",
    )
    .await;
    assert_error(
        second_factor(&app, &device, &attempt, "totp", &used).await,
        401,
        "unauthorized",
    )
    .await;
    assert_error(
        second_factor(&app, &device, &attempt, "sms", &next).await,
        422,
        "validation_failed",
    )
    .await;
    let done = second_factor(&app, &device, &attempt, "totp", &next).await;
    assert_eq!(done.status(), 200);
    let done: Value = done.json().await.unwrap();
    assert_eq!(done["status"], "complete");
    let jwt = done["jwt"].as_str().unwrap();
    assert_eq!(claims_of(jwt)["fva"], json!([0, 0]));
    assert_eq!(app.get_bearer("/api/me", jwt).await.status(), 200);
    // Used: the attempt is over, and the code works for no other attempt.
    assert_error(
        second_factor(&app, &device, &attempt, "totp", &next).await,
        401,
        "unauthorized",
    )
    .await;
    let device2 = cookie_client();
    let attempt2 = attempt_on(&app, &device2, &ada.email).await;
    assert_error(
        second_factor(&app, &device2, &attempt2, "totp", &next).await,
        401,
        "unauthorized",
    )
    .await;

    // A backup code (any case, with or without the dash) works once.
    let backup = codes[0].to_uppercase().replace('-', "");
    let done = second_factor(&app, &device2, &attempt2, "backup_code", &backup).await;
    assert_eq!(done.status(), 200);
    let device3 = cookie_client();
    let attempt3 = attempt_on(&app, &device3, &ada.email).await;
    assert_error(
        second_factor(&app, &device3, &attempt3, "backup_code", &codes[0]).await,
        401,
        "unauthorized",
    )
    .await;
    assert_eq!(
        second_factor(&app, &device3, &attempt3, "backup_code", &codes[1])
            .await
            .status(),
        200
    );

    // The first factor's throttle still applies: a wrong password is 401 as ever.
    assert_eq!(
        app.sign_in_with(&cookie_client(), &ada.email, "wrong password!")
            .await
            .status(),
        401
    );
}

async fn attempts_end_after_five_tries_or_ten_minutes(database: TestDb) {
    let app = spawn_app(database).await;
    let ada = app.new_member().await;
    let (secret, _) = enroll(&app, &ada).await;
    let device = cookie_client();
    let attempt = attempt_on(&app, &device, &ada.email).await;
    let wrong = if code(&secret, 1) == "000000" {
        "111111"
    } else {
        "000000"
    };
    for _ in 0..5 {
        assert_error(
            second_factor(&app, &device, &attempt, "totp", wrong).await,
            401,
            "unauthorized",
        )
        .await;
    }
    assert_error(
        second_factor(&app, &device, &attempt, "totp", &code(&secret, 1)).await,
        401,
        "unauthorized",
    )
    .await;
    // Each wrong code is a failed sign-in in the audit log (never the code).
    let failures = app
        .count(
            "SELECT COUNT(*) FROM audit_log WHERE action = 'sign_in.failed' AND target_id = $1",
            &ada.signed.user_id,
        )
        .await;
    assert_eq!(failures, 5);

    // Four wrong tries leave one: the right code still works.
    let attempt = attempt_on(&app, &device, &ada.email).await;
    for _ in 0..4 {
        assert_error(
            second_factor(&app, &device, &attempt, "totp", wrong).await,
            401,
            "unauthorized",
        )
        .await;
    }
    assert_eq!(
        second_factor(&app, &device, &attempt, "totp", &code(&secret, 1))
            .await
            .status(),
        200
    );

    // Ten minutes on, the attempt is over.
    let attempt = attempt_on(&app, &cookie_client(), &ada.email).await;
    let device = cookie_client();
    let attempt_here = attempt_on(&app, &device, &ada.email).await;
    sqlx::query("UPDATE sign_in_attempts SET expires_at = $1 WHERE id = $2 OR id = $3")
        .bind(gatehouse::clock::now_ms() - 1)
        .bind(&attempt)
        .bind(&attempt_here)
        .execute(&app.state.db.pool)
        .await
        .unwrap();
    assert_error(
        second_factor(&app, &device, &attempt_here, "totp", &code(&secret, 0)).await,
        401,
        "unauthorized",
    )
    .await;
    let unknown = "/v1/sign-in/signin_01jd3m5x0e8k2q9v7w4h6r1t3y/second-factor";
    let response = app
        .post_json(&device, unknown, &json!({"strategy": "totp", "code": "123456"}))
        .await;
    assert_error(response, 401, "unauthorized").await;
    let not_an_id = app
        .post_json(
            &device,
            "/v1/sign-in/sess_1/second-factor",
            &json!({"strategy": "totp", "code": "123456"}),
        )
        .await;
    assert_eq!(not_an_id.status(), 404);
}

async fn raced_completions_of_one_attempt_make_one_session(database: TestDb) {
    let app = spawn_app(database).await;
    let ada = app.new_member().await;
    let (secret, codes) = enroll(&app, &ada).await;
    for (strategy, code) in [("totp", code(&secret, 1)), ("backup_code", codes[0].clone())] {
        let device = cookie_client();
        let attempt = attempt_on(&app, &device, &ada.email).await;
        let before = app
            .count("SELECT COUNT(*) FROM sessions WHERE user_id = $1", &ada.signed.user_id)
            .await;
        let tries = (0..6).map(|_| second_factor(&app, &device, &attempt, strategy, &code));
        let statuses: Vec<u16> = futures_util::future::join_all(tries)
            .await
            .iter()
            .map(|r| r.status().as_u16())
            .collect();
        assert_eq!(
            statuses.iter().filter(|s| **s == 200).count(),
            1,
            "{strategy}: {statuses:?}"
        );
        assert!(
            statuses.iter().all(|s| *s == 200 || *s == 401),
            "{strategy}: {statuses:?}"
        );
        assert_eq!(
            app.count("SELECT COUNT(*) FROM sessions WHERE user_id = $1", &ada.signed.user_id)
                .await,
            before + 1
        );
    }
}

async fn reverification_with_a_second_factor_and_turning_it_off(database: TestDb) {
    let app = spawn_app(database).await;
    let ada = app.new_member().await;
    let (secret, codes) = enroll(&app, &ada).await;
    let verify = |body: Value| {
        let app = &app;
        let client = ada.client.clone();
        let sid = ada.signed.session_id.clone();
        async move {
            app.post_json(&client, &format!("/v1/client/sessions/{sid}/verify"), &body)
                .await
        }
    };
    let stale = app.stale_token(&ada).await;
    assert_eq!(claims_of(&stale)["fva"][0], 60);

    // Wrong codes are 422 `fields.code`; a bad shape names what is missing.
    let error = assert_error(
        verify(json!({"strategy": "totp", "code": "000000x"})).await,
        422,
        "validation_failed",
    )
    .await;
    assert!(error["fields"]["code"].is_string());
    assert_error(verify(json!({"strategy": "totp"})).await, 422, "validation_failed").await;
    assert_error(verify(json!({})).await, 422, "validation_failed").await;
    let error = assert_error(
        verify(json!({"strategy": "sms", "code": "1"})).await,
        422,
        "validation_failed",
    )
    .await;
    assert!(error["fields"]["strategy"].is_string());
    let verified = verify(json!({"strategy": "totp", "code": code(&secret, 1)})).await;
    assert_eq!(verified.status(), 200);
    let fva = claims_of(&jwt_of(verified).await)["fva"].clone();
    assert_eq!(fva[1], 0, "{fva}");
    assert_eq!(fva[0], 60, "the password proof is as old as it was");
    // A backup code used here is used up.
    assert_eq!(
        verify(json!({"strategy": "backup_code", "code": codes[0]}))
            .await
            .status(),
        200
    );
    let device = cookie_client();
    let attempt = attempt_on(&app, &device, &ada.email).await;
    assert_error(
        second_factor(&app, &device, &attempt, "backup_code", &codes[0]).await,
        401,
        "unauthorized",
    )
    .await;

    // New backup codes and turning it off need a fresh password.
    let stale = app.stale_token(&ada).await;
    for (method, path) in [
        (Method::POST, "/api/me/mfa/backup-codes"),
        (Method::DELETE, "/api/me/mfa/totp"),
    ] {
        assert_error(
            app.send_bearer(method, path, &stale, None).await,
            403,
            "reverification_required",
        )
        .await;
    }
    let fresh = jwt_of(verify(json!({"password": PASSWORD})).await).await;
    let renewed = app
        .send_bearer(Method::POST, "/api/me/mfa/backup-codes", &fresh, None)
        .await;
    assert_eq!(renewed.status(), 200);
    let renewed: Value = renewed.json().await.unwrap();
    let new_code = renewed["backup_codes"][0].as_str().unwrap().to_owned();
    assert_error(
        second_factor(&app, &device, &attempt, "backup_code", &codes[1]).await,
        401,
        "unauthorized",
    )
    .await;
    assert_eq!(
        second_factor(&app, &device, &attempt, "backup_code", &new_code)
            .await
            .status(),
        200
    );

    // The user turns it off; sign-in is one step again.
    assert_eq!(
        app.send_bearer(Method::DELETE, "/api/me/mfa/totp", &fresh, None)
            .await
            .status(),
        204
    );
    assert_error(
        app.send_bearer(Method::DELETE, "/api/me/mfa/totp", &fresh, None).await,
        404,
        "not_found",
    )
    .await;
    let signed: Value = password_sign_in(&app, &cookie_client(), &ada.email)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(signed["status"], "complete");
    assert_eq!(claims_of(signed["jwt"].as_str().unwrap())["fva"], json!([0, -1]));
    assert_error(
        app.send_bearer(Method::POST, "/api/me/mfa/backup-codes", &fresh, None)
            .await,
        409,
        "conflict",
    )
    .await;

    // Support turns it off through the Backend API.
    let bob = app.new_member().await;
    enroll(&app, &bob).await;
    let path = format!("/backend/v1/users/{}/mfa", bob.signed.user_id);
    let no_key = app.client.delete(app.url(&path)).send().await.unwrap();
    assert_eq!(no_key.status(), 401);
    assert_eq!(app.backend(Method::DELETE, &path, None).await.status(), 204);
    assert_error(app.backend(Method::DELETE, &path, None).await, 404, "not_found").await;
    assert_error(
        app.backend(
            Method::DELETE,
            "/backend/v1/users/user_01jd3m5x0e8k2q9v7w4h6r1t3y/mfa",
            None,
        )
        .await,
        404,
        "not_found",
    )
    .await;
    let signed: Value = password_sign_in(&app, &cookie_client(), &bob.email)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(signed["status"], "complete");
    let user: Value = app
        .backend(Method::GET, &format!("/backend/v1/users/{}", bob.signed.user_id), None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(user["two_factor_enabled"], false);
}

async fn emailed_code_sign_in_also_needs_the_second_factor(database: TestDb) {
    let smtp = SmtpSink::start().await;
    let options = TestOptions {
        vars: vec![
            ("RATE_LIMIT", "off".into()),
            ("SMTP_URL", smtp.url()),
            ("EMAIL_VERIFICATION", "off".into()),
            ("EMAIL_RETRY_BASE_MS", "100".into()),
        ],
        ..Default::default()
    };
    let app = spawn_app_with(database, options).await;
    let ada = app.new_member().await;
    let (secret, _) = enroll(&app, &ada).await;
    let device = cookie_client();
    let sent = app
        .post_json(&device, "/v1/sign-in/email-code", &json!({"email": ada.email}))
        .await;
    assert_eq!(sent.status(), 202);
    let mail = smtp.wait_for_subject(&ada.email, "Your sign-in code").await;
    let response = app
        .post_json(
            &device,
            "/v1/sign-in/email-code/attempt",
            &json!({"email": ada.email, "code": mail.code()}),
        )
        .await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], "needs_second_factor", "{body}");
    assert!(body.get("jwt").is_none());
    let attempt = body["sign_in"]["id"].as_str().unwrap();
    let done = second_factor(&app, &device, attempt, "totp", &code(&secret, 1)).await;
    assert_eq!(done.status(), 200);
    assert_eq!(done.json::<Value>().await.unwrap()["status"], "complete");
}
