//! Email: verification (optional and required), password reset and change, sign-in by
//! an emailed code or link, delivery through an SMTP server the test starts (and one
//! that comes up late), and the per-address sending limit.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};

use crate::db_tests;
use crate::helpers::{
    PASSWORD, TestApp, TestDb, TestOptions, assert_error, cookie_client, email, jwt_of, spawn_app_with,
};
use crate::smtp::SmtpSink;

db_tests!(
    optional_sign_up_emails_a_code_that_verifies_the_address,
    required_verification_issues_no_session_before_the_code,
    dead_codes_and_the_sending_limit,
    password_reset_signs_every_other_device_out,
    sign_in_by_emailed_code,
    sign_in_by_emailed_link,
    changing_the_password_needs_the_current_one,
);

fn options(smtp: &SmtpSink, extra: &[(&'static str, &str)]) -> TestOptions {
    let mut vars = vec![
        ("RATE_LIMIT", "off".into()),
        ("SMTP_URL", smtp.url()),
        ("EMAIL_RETRY_BASE_MS", "100".into()),
        ("PUBLIC_URL", "http://gatehouse.test".into()),
    ];
    vars.extend(extra.iter().map(|(k, v)| (*k, (*v).to_owned())));
    TestOptions {
        vars,
        ..Default::default()
    }
}

async fn post(app: &TestApp, client: &reqwest::Client, path: &str, body: Value) -> reqwest::Response {
    app.post_json(client, path, &body).await
}

async fn optional_sign_up_emails_a_code_that_verifies_the_address(database: TestDb) {
    let smtp = SmtpSink::start().await;
    let app = spawn_app_with(database, options(&smtp, &[])).await;
    let address = email();
    let signed = app.sign_up(&address).await;
    assert_eq!(signed.body["status"], "complete");
    assert_eq!(signed.body["user"]["email_verified"], false);
    assert_eq!(signed.body["user"]["has_password"], true);
    assert_eq!(signed.body["user"]["two_factor_enabled"], false);
    assert_eq!(signed.body["user"]["banned"], false);
    assert!(signed.body["user"].get("private_metadata").is_none());

    let mail = smtp.wait_for(&address, 1).await;
    assert_eq!(mail.header("Subject").as_deref(), Some("Your verification code"));
    assert!(mail.data.contains("text/html"), "an HTML part beside the text");
    let code = mail.code();
    let attempt = |code: String| {
        let jwt = signed.jwt.clone();
        let app = &app;
        async move {
            app.send_bearer(
                Method::POST,
                "/api/me/email/verification/attempt",
                &jwt,
                Some(&json!({"code": code})),
            )
            .await
        }
    };
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let error = assert_error(attempt(wrong.to_owned()).await, 422, "validation_failed").await;
    assert!(error["fields"]["code"].is_string());
    let verified = attempt(code.clone()).await;
    assert_eq!(verified.status(), 200);
    assert_eq!(verified.json::<Value>().await.unwrap()["email_verified"], true);
    assert_error(attempt(code).await, 422, "validation_failed").await;
    let again = app
        .send_bearer(Method::POST, "/api/me/email/verification", &signed.jwt, None)
        .await;
    assert_error(again, 409, "conflict").await;
    let profile: Value = app
        .get_bearer("/api/me/profile", &signed.jwt)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(profile["email_verified"], true);
    let events = app
        .count(
            "SELECT COUNT(*) FROM events WHERE type = 'user.updated' AND user_id = $1",
            &signed.user_id,
        )
        .await;
    assert_eq!(events, 1);
}

async fn required_verification_issues_no_session_before_the_code(database: TestDb) {
    let smtp = SmtpSink::start().await;
    let app = spawn_app_with(database, options(&smtp, &[("EMAIL_VERIFICATION", "required")])).await;
    let address = email();
    let client = cookie_client();
    let response = post(
        &app,
        &client,
        "/v1/sign-up",
        json!({"email": address, "password": PASSWORD}),
    )
    .await;
    assert_eq!(response.status(), 202);
    assert!(
        response.headers().get_all("set-cookie").iter().next().is_none(),
        "no cookie before the code"
    );
    let pending: Value = response.json().await.unwrap();
    let id = pending["sign_up"]["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("signup_"));
    assert_eq!(pending["sign_up"]["status"], "missing_requirements");
    assert_eq!(pending["sign_up"]["unverified_fields"], json!(["email_address"]));
    assert_eq!(pending["sign_up"]["email"], address.as_str());
    assert!(pending["sign_up"]["expire_at"].as_i64().unwrap() > gatehouse::clock::now_ms());
    // No user yet: signing in fails, and nothing is listed.
    assert_error(app.sign_in_with(&client, &address, PASSWORD).await, 401, "unauthorized").await;
    assert_eq!(
        app.count("SELECT COUNT(*) FROM users WHERE email = $1", &address).await,
        0
    );
    assert_eq!(
        app.count("SELECT COUNT(*) FROM sessions WHERE status = $1", "active")
            .await,
        0
    );

    // Signing up again within the minute answers the same pending sign-up, no new email.
    let again: Value = post(
        &app,
        &client,
        "/v1/sign-up",
        json!({"email": address, "password": PASSWORD}),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(again["sign_up"]["id"], id.as_str());
    let code = smtp.wait_for(&address, 1).await.code();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(smtp.mails_to(&address).len(), 1);

    let verify_path = format!("/v1/sign-up/{id}/verify");
    let verify = |code: &str| post(&app, &client, &verify_path, json!({"code": code}));
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let error = assert_error(verify(wrong).await, 422, "validation_failed").await;
    assert!(error["fields"]["code"].is_string());
    let done = verify(&code).await;
    assert_eq!(done.status(), 201);
    let body: Value = done.json().await.unwrap();
    assert_eq!(body["status"], "complete");
    assert_eq!(body["user"]["email_verified"], true);
    let jwt = body["jwt"].as_str().unwrap();
    assert_eq!(app.get_bearer("/api/me", jwt).await.status(), 200);
    // The sign-up is used up; an unknown one is 404.
    assert_error(verify(&code).await, 404, "not_found").await;
    let unknown = post(
        &app,
        &client,
        "/v1/sign-up/signup_nothing/verify",
        json!({"code": "123456"}),
    )
    .await;
    assert_error(unknown, 404, "not_found").await;
    // The address is taken now.
    let taken = post(
        &app,
        &cookie_client(),
        "/v1/sign-up",
        json!({"email": address, "password": PASSWORD}),
    )
    .await;
    let error = assert_error(taken, 422, "validation_failed").await;
    assert!(error["fields"]["email"].is_string());
}

async fn dead_codes_and_the_sending_limit(database: TestDb) {
    let smtp = SmtpSink::start().await;
    let app = spawn_app_with(database.clone(), options(&smtp, &[("EMAIL_VERIFICATION", "required")])).await;
    let address = email();
    let client = cookie_client();
    let pending: Value = post(
        &app,
        &client,
        "/v1/sign-up",
        json!({"email": address, "password": PASSWORD}),
    )
    .await
    .json()
    .await
    .unwrap();
    let id = pending["sign_up"]["id"].as_str().unwrap();
    let code = smtp.wait_for(&address, 1).await.code();
    let wrong = if code == "000000" { "111111" } else { "000000" };
    for _ in 0..5 {
        let response = post(
            &app,
            &client,
            &format!("/v1/sign-up/{id}/verify"),
            json!({"code": wrong}),
        )
        .await;
        assert_error(response, 422, "validation_failed").await;
    }
    // Five wrong tries killed the code: the right one no longer works.
    let late = post(
        &app,
        &client,
        &format!("/v1/sign-up/{id}/verify"),
        json!({"code": code}),
    )
    .await;
    assert_error(late, 422, "validation_failed").await;

    // One reset email per address per minute; the first code stays valid.
    let app = spawn_app_with(database, options(&smtp, &[])).await;
    let user = app.new_member().await;
    for _ in 0..3 {
        let response = post(
            &app,
            &cookie_client(),
            "/v1/password-reset",
            json!({"email": user.email}),
        )
        .await;
        assert_eq!(response.status(), 202);
    }
    let reset = smtp.wait_for_subject(&user.email, "Reset your password").await;
    smtp.wait_for(&user.email, 2).await; // the verification code at sign-up, and one reset email
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(smtp.mails_to(&user.email).len(), 2);
    let body = json!({"email": user.email, "code": reset.code(), "password": "a brand new password"});
    assert_eq!(
        post(&app, &cookie_client(), "/v1/password-reset/attempt", body)
            .await
            .status(),
        200
    );
}

async fn password_reset_signs_every_other_device_out(database: TestDb) {
    let smtp = SmtpSink::start().await;
    let app = spawn_app_with(database, options(&smtp, &[("EMAIL_VERIFICATION", "off")])).await;
    let ada = app.new_member().await;
    let laptop = cookie_client();
    let other = jwt_of(app.sign_in_with(&laptop, &ada.email, PASSWORD).await).await;
    assert_eq!(app.get_bearer("/api/me", &other).await.status(), 200);

    let unknown = email();
    let response = post(&app, &cookie_client(), "/v1/password-reset", json!({"email": unknown})).await;
    assert_eq!(response.status(), 202);
    let response = post(
        &app,
        &cookie_client(),
        "/v1/password-reset",
        json!({"email": ada.email}),
    )
    .await;
    assert_eq!(response.status(), 202);
    let mail = smtp.wait_for(&ada.email, 1).await;
    assert_eq!(smtp.mails_to(&unknown).len(), 0, "an unknown address gets nothing");
    let code = mail.code();
    let link = mail.link("http://gatehouse.test/reset-password?");
    assert!(link.contains(&format!("code={code}")), "{link}");

    let phone = cookie_client();
    let attempt = |body: Value| post(&app, &phone, "/v1/password-reset/attempt", body);
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let error = assert_error(
        attempt(json!({"email": ada.email, "code": wrong, "password": "a brand new password"})).await,
        422,
        "validation_failed",
    )
    .await;
    assert!(error["fields"]["code"].is_string());
    let error = assert_error(
        attempt(json!({"email": ada.email, "code": code, "password": "short"})).await,
        422,
        "validation_failed",
    )
    .await;
    assert!(error["fields"]["password"].is_string());
    let done = attempt(json!({"email": ada.email, "code": code, "password": "a brand new password"})).await;
    assert_eq!(done.status(), 200);
    let body: Value = done.json().await.unwrap();
    assert_eq!(body["status"], "complete");
    assert_eq!(body["user"]["email_verified"], true, "the reset proved the address");
    let fresh = body["jwt"].as_str().unwrap();
    // Every other device is signed out on its next request; this one is in.
    assert_error(app.get_bearer("/api/me", &other).await, 401, "unauthorized").await;
    assert_error(app.get_bearer("/api/me", &ada.signed.jwt).await, 401, "unauthorized").await;
    assert_eq!(app.get_bearer("/api/me", fresh).await.status(), 200);
    assert_error(
        app.sign_in_with(&cookie_client(), &ada.email, PASSWORD).await,
        401,
        "unauthorized",
    )
    .await;
    assert_eq!(
        app.sign_in_with(&cookie_client(), &ada.email, "a brand new password")
            .await
            .status(),
        200
    );
    // The code worked once.
    let reused = attempt(json!({"email": ada.email, "code": code, "password": "another new password"})).await;
    assert_error(reused, 422, "validation_failed").await;
    let revoked = app
        .count(
            "SELECT COUNT(*) FROM events WHERE type = 'session.revoked' AND user_id = $1",
            &ada.signed.user_id,
        )
        .await;
    assert_eq!(revoked, 2);
}

async fn sign_in_by_emailed_code(database: TestDb) {
    let smtp = SmtpSink::start().await;
    let app = spawn_app_with(database, options(&smtp, &[("EMAIL_VERIFICATION", "off")])).await;
    let ada = app.new_member().await;
    let nobody = email();
    let device = cookie_client();
    for address in [&ada.email, &nobody] {
        let response = post(&app, &device, "/v1/sign-in/email-code", json!({"email": address})).await;
        assert_eq!(response.status(), 202);
    }
    let mail = smtp.wait_for(&ada.email, 1).await;
    assert_eq!(
        smtp.mails_to(&nobody).len(),
        0,
        "sign-in never emails an unknown address"
    );
    let code = mail.code();
    let attempt = |address: &str, code: &str| {
        post(
            &app,
            &device,
            "/v1/sign-in/email-code/attempt",
            json!({"email": address, "code": code}),
        )
    };
    let wrong = if code == "000000" { "111111" } else { "000000" };
    assert_error(attempt(&ada.email, wrong).await, 401, "unauthorized").await;
    assert_error(attempt(&nobody, &code).await, 401, "unauthorized").await;
    let done = attempt(&ada.email, &code).await;
    assert_eq!(done.status(), 200);
    let body: Value = done.json().await.unwrap();
    assert_eq!(body["status"], "complete");
    assert_eq!(body["user"]["email_verified"], true);
    assert_eq!(
        app.get_bearer("/api/me", body["jwt"].as_str().unwrap()).await.status(),
        200
    );
    assert_error(attempt(&ada.email, &code).await, 401, "unauthorized").await;
    // The link of the same email was closed by the code's use.
    let link = mail.link("http://gatehouse.test/v1/sign-in/email-link?");
    let path = link.trim_start_matches("http://gatehouse.test");
    let response = cookie_client().get(app.url(path)).send().await.unwrap();
    assert_eq!(response.headers()["location"], "/sign-in?error=link_invalid");
    // Wrong codes count in the sign-in throttle: 5 failures, then 429 even with a right one.
    let bob = app.new_member().await;
    for _ in 0..5 {
        assert_error(attempt(&bob.email, "000000").await, 401, "unauthorized").await;
    }
    assert_error(attempt(&bob.email, "123456").await, 429, "rate_limited").await;
}

async fn sign_in_by_emailed_link(database: TestDb) {
    let smtp = SmtpSink::start().await;
    let app = spawn_app_with(database, options(&smtp, &[("EMAIL_VERIFICATION", "off")])).await;
    let ada = app.new_member().await;
    post(
        &app,
        &cookie_client(),
        "/v1/sign-in/email-code",
        json!({"email": ada.email}),
    )
    .await;
    let mail = smtp.wait_for(&ada.email, 1).await;
    let link = mail.link("http://gatehouse.test/v1/sign-in/email-link?");
    let path = link.trim_start_matches("http://gatehouse.test");

    // A foreign redirect_url is ignored; the browser lands on /account, signed in.
    let browser = cookie_client();
    let response = browser
        .get(app.url(&format!("{path}&redirect_url=https%3A%2F%2Fevil.example%2F")))
        .header("sec-fetch-site", "cross-site")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 303);
    assert_eq!(response.headers()["location"], "/account");
    let cookies = crate::helpers::set_cookies(&response);
    assert!(cookies.iter().any(|c| c.starts_with("__session=")), "{cookies:?}");
    assert!(cookies.iter().any(|c| c.starts_with("__client=")), "{cookies:?}");
    let client: Value = browser
        .get(app.url("/v1/client"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(client["sessions"].as_array().unwrap().len(), 1);
    assert_eq!(client["sessions"][0]["user_id"], ada.signed.user_id.as_str());

    // Used once: a second opening signs nobody in.
    let again = cookie_client().get(app.url(path)).send().await.unwrap();
    assert_eq!(again.status(), 303);
    assert_eq!(again.headers()["location"], "/sign-in?error=link_invalid");
    assert!(again.headers().get("set-cookie").is_none());
    let bogus = cookie_client()
        .get(app.url("/v1/sign-in/email-link?token=forged"))
        .send()
        .await
        .unwrap();
    assert_eq!(bogus.headers()["location"], "/sign-in?error=link_invalid");
}

async fn changing_the_password_needs_the_current_one(database: TestDb) {
    let smtp = SmtpSink::start().await;
    let app = spawn_app_with(database, options(&smtp, &[("EMAIL_VERIFICATION", "off")])).await;
    let ada = app.new_member().await;
    let other = jwt_of(app.sign_in_with(&cookie_client(), &ada.email, PASSWORD).await).await;
    let (app_ref, jwt) = (&app, ada.signed.jwt.clone());
    let change = |body: Value| {
        let jwt = jwt.clone();
        async move {
            app_ref
                .send_bearer(Method::POST, "/api/me/password", &jwt, Some(&body))
                .await
        }
    };
    let error = assert_error(
        change(json!({"current_password": "not it", "new_password": "a brand new password"})).await,
        422,
        "validation_failed",
    )
    .await;
    assert!(error["fields"]["current_password"].is_string());
    let error = assert_error(
        change(json!({"new_password": "a brand new password"})).await,
        422,
        "validation_failed",
    )
    .await;
    assert!(error["fields"]["current_password"].is_string());
    let error = assert_error(
        change(json!({"current_password": PASSWORD, "new_password": "short"})).await,
        422,
        "validation_failed",
    )
    .await;
    assert!(error["fields"]["new_password"].is_string());
    let done = change(json!({"current_password": PASSWORD, "new_password": "a brand new password"})).await;
    assert_eq!(done.status(), 200);
    assert_eq!(done.json::<Value>().await.unwrap()["revoked"], 1);
    assert_error(app.get_bearer("/api/me", &other).await, 401, "unauthorized").await;
    assert_eq!(app.get_bearer("/api/me", &ada.signed.jwt).await.status(), 200);
    // Keeping the other sessions signed in.
    let third = jwt_of(
        app.sign_in_with(&cookie_client(), &ada.email, "a brand new password")
            .await,
    )
    .await;
    let kept = change(json!({"current_password": "a brand new password", "new_password": "yet another password", "sign_out_other_sessions": false})).await;
    assert_eq!(kept.json::<Value>().await.unwrap()["revoked"], 0);
    assert_eq!(app.get_bearer("/api/me", &third).await.status(), 200);
}

/// An SMTP server that is down when the email is asked for gets it when it comes up:
/// the request did not wait for it, and nothing was lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mail_is_delivered_after_the_smtp_server_comes_up_late() {
    let late = SmtpSink::reserve();
    let vars = vec![
        ("RATE_LIMIT", "off".into()),
        ("SMTP_URL", late.url()),
        ("EMAIL_RETRY_BASE_MS", "100".into()),
        ("EMAIL_VERIFICATION", "off".into()),
    ];
    let app = spawn_app_with(
        TestDb::Sqlite,
        TestOptions {
            vars,
            ..Default::default()
        },
    )
    .await;
    let ada = app.new_member().await;
    let started = std::time::Instant::now();
    let response = post(
        &app,
        &cookie_client(),
        "/v1/password-reset",
        json!({"email": ada.email}),
    )
    .await;
    assert_eq!(response.status(), 202);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "the request does not wait for SMTP"
    );
    // The worker fails to connect at least once, then the server comes up.
    crate::helpers::eventually(Duration::from_secs(5), "a failed attempt", || async {
        let failed: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM emails WHERE attempts > 0 AND status = 'pending'")
            .fetch_one(&app.state.db.pool)
            .await
            .unwrap();
        (failed > 0).then_some(())
    })
    .await;
    let smtp = late.start();
    let mail = smtp.wait_for(&ada.email, 1).await;
    assert_eq!(mail.code().len(), 6);
    crate::helpers::eventually(Duration::from_secs(5), "the email marked sent", || async {
        let sent: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM emails WHERE status = 'sent' AND text_body = ''")
            .fetch_one(&app.state.db.pool)
            .await
            .unwrap();
        (sent == 1).then_some(())
    })
    .await;
}

/// On PostgreSQL a queued email wakes the mail workers by `NOTIFY`, sent in the email's
/// transaction: it arrives when that commits, and never for one rolled back. (The
/// marker, sent after the rollback, must be the first notification to arrive.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queued_email_wakes_the_mail_workers_when_it_commits() {
    let Some(database) = TestDb::postgres() else {
        return;
    };
    let app = crate::helpers::spawn_app(database).await;
    let channel = gatehouse::db::emails::MAIL_CHANNEL;
    let mut listener = sqlx::postgres::PgListener::connect(app.state.db.url()).await.unwrap();
    listener.listen(channel).await.unwrap();
    let message = gatehouse::mail::Message {
        kind: "test",
        to: "wake@example.com".into(),
        subject: "Wake".into(),
        text: "text".into(),
        html: "<p>html</p>".into(),
    };
    async fn next(listener: &mut sqlx::postgres::PgListener) -> String {
        let notification = tokio::time::timeout(Duration::from_secs(10), listener.recv())
            .await
            .expect("a notification within 10 s")
            .unwrap();
        assert_eq!(notification.channel(), gatehouse::db::emails::MAIL_CHANNEL);
        notification.payload().to_owned()
    }

    let mut rolled_back = app.state.db.pool.begin().await.unwrap();
    message.queue(&mut rolled_back, 0).await.unwrap();
    rolled_back.rollback().await.unwrap();
    sqlx::query("SELECT pg_notify($1, 'marker')")
        .bind(channel)
        .execute(&app.state.db.pool)
        .await
        .unwrap();
    assert_eq!(next(&mut listener).await, "marker", "a rolled-back email woke nobody");

    let mut committed = app.state.db.pool.begin().await.unwrap();
    message.queue(&mut committed, 0).await.unwrap();
    committed.commit().await.unwrap();
    assert_eq!(next(&mut listener).await, "", "the committed email woke the workers");
}

/// The workers of an instance share one listener connection on PostgreSQL: a `NOTIFY` on
/// one channel wakes that channel's worker and no other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_listener_wakes_only_the_worker_whose_channel_was_notified() {
    use futures_util::FutureExt;
    use gatehouse::db::listener::Listener;
    use gatehouse::jobs::{Channel, Wake};
    let Some(database) = TestDb::postgres() else {
        return;
    };
    let app = crate::helpers::spawn_app(database).await;
    let channel = |name| Channel {
        name,
        poll_postgres: Duration::from_secs(3600),
        poll_sqlite: Duration::from_secs(3600),
    };
    let mut listener = Listener::default();
    let quiet = Wake::new(&app.state.db, channel("test_quiet"), &mut listener);
    let woken = Wake::new(&app.state.db, channel("test_woken"), &mut listener);
    let listening = tokio::spawn(listener.run(app.state.db.url().to_owned()));
    let notify = || async {
        sqlx::query("SELECT pg_notify('test_woken', '')")
            .execute(&app.state.db.pool)
            .await
            .unwrap();
    };
    // Until the listener has subscribed, a `NOTIFY` reaches nobody: send until the woken
    // worker hears something (that `NOTIFY`, or the listener's start, which wakes both).
    let landed = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            notify().await;
            if tokio::time::timeout(Duration::from_millis(100), woken.notify.notified())
                .await
                .is_ok()
            {
                break;
            }
        }
    })
    .await;
    assert!(landed.is_ok(), "the notified channel's worker was woken");
    // The listener listens now, and may have woken both as it started: start from none.
    let _ = quiet.notify.notified().now_or_never();
    let _ = woken.notify.notified().now_or_never();
    notify().await;
    tokio::time::timeout(Duration::from_secs(10), woken.notify.notified())
        .await
        .expect("the notified channel's worker was woken again");
    assert!(
        quiet.notify.notified().now_or_never().is_none(),
        "the other channel's worker was not"
    );
    listening.abort();
}
