//! Session management: every device, revocation on the next request (here and on
//! another instance), sign-out everywhere.

use reqwest::Method;
use serde_json::{Value, json};

use crate::db_tests;
use crate::helpers::{TestDb, TestOptions, assert_error, spawn_app, spawn_app_with};

db_tests!(
    sessions_on_every_device_with_the_current_marked,
    revoking_a_session_bites_on_its_next_request,
    revoke_all_with_and_without_the_current_session,
    signing_out_on_the_device_bites_at_once,
);

async fn sessions_on_every_device_with_the_current_marked(database: TestDb) {
    let app = spawn_app(database).await;
    let ada = app.new_member().await;
    let laptop = crate::helpers::cookie_client();
    let second = crate::helpers::signed_in(app.sign_in_with(&laptop, &ada.email, crate::helpers::PASSWORD).await).await;
    let list: Value = app
        .get_bearer("/api/me/sessions", &ada.signed.jwt)
        .await
        .json()
        .await
        .unwrap();
    let sessions = list["data"].as_array().unwrap();
    assert_eq!(sessions.len(), 2);
    assert_eq!(sessions[0]["id"], second.session_id.as_str(), "newest first");
    assert_eq!(sessions[0]["current"], false);
    assert_eq!(sessions[1]["id"], ada.signed.session_id.as_str());
    assert_eq!(sessions[1]["current"], true);
    assert_eq!(sessions[1]["status"], "active");
    assert!(sessions[1]["last_active_at"].as_i64().is_some() && sessions[1]["expire_at"].as_i64().is_some());
    assert!(list["next_cursor"].is_null());
    // Another user's sessions are not listed.
    let bob = app.new_member().await;
    let bobs: Value = app
        .get_bearer("/api/me/sessions", &bob.signed.jwt)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(bobs["data"].as_array().unwrap().len(), 1);
}

async fn revoking_a_session_bites_on_its_next_request(database: TestDb) {
    let app = spawn_app(database).await;
    let ada = app.new_member().await;
    let laptop = crate::helpers::cookie_client();
    let other = crate::helpers::signed_in(app.sign_in_with(&laptop, &ada.email, crate::helpers::PASSWORD).await).await;
    assert_eq!(app.get_bearer("/api/me", &other.jwt).await.status(), 200);

    let path = format!("/api/me/sessions/{}/revoke", other.session_id);
    let revoked = app.send_bearer(Method::POST, &path, &ada.signed.jwt, None).await;
    assert_eq!(revoked.status(), 200);
    assert_eq!(revoked.json::<Value>().await.unwrap()["status"], "revoked");
    // The revoked session's unexpired token is refused at once, and it cannot refresh.
    assert_error(app.get_bearer("/api/me", &other.jwt).await, 401, "unauthorized").await;
    assert_error(app.refresh(&laptop, &other.session_id).await, 401, "unauthorized").await;
    // The revoking session is untouched.
    assert_eq!(app.get_bearer("/api/me", &ada.signed.jwt).await.status(), 200);

    // Someone else's session is not found, and stays alive.
    let bob = app.new_member().await;
    let foreign = app
        .send_bearer(
            Method::POST,
            &format!("/api/me/sessions/{}/revoke", bob.signed.session_id),
            &ada.signed.jwt,
            None,
        )
        .await;
    assert_error(foreign, 404, "not_found").await;
    assert_eq!(app.get_bearer("/api/me", &bob.signed.jwt).await.status(), 200);
}

async fn revoke_all_with_and_without_the_current_session(database: TestDb) {
    let app = spawn_app(database).await;
    let ada = app.new_member().await;
    let mut others = Vec::new();
    for _ in 0..2 {
        let device = crate::helpers::cookie_client();
        others.push(
            crate::helpers::signed_in(app.sign_in_with(&device, &ada.email, crate::helpers::PASSWORD).await).await,
        );
    }
    let kept = app
        .send_bearer(
            Method::POST,
            "/api/me/sessions/revoke-all",
            &ada.signed.jwt,
            Some(&json!({"keep_current": true})),
        )
        .await;
    assert_eq!(kept.json::<Value>().await.unwrap(), json!({"revoked": 2}));
    for other in &others {
        assert_error(app.get_bearer("/api/me", &other.jwt).await, 401, "unauthorized").await;
    }
    assert_eq!(app.get_bearer("/api/me", &ada.signed.jwt).await.status(), 200);
    let bad = app
        .send_bearer(
            Method::POST,
            "/api/me/sessions/revoke-all",
            &ada.signed.jwt,
            Some(&json!({"keep_current": "yes"})),
        )
        .await;
    assert_error(bad, 422, "validation_failed").await;

    // No body: everything, this session included.
    let all = reqwest::Client::new()
        .post(app.url("/api/me/sessions/revoke-all"))
        .bearer_auth(&ada.signed.jwt)
        .send()
        .await
        .unwrap();
    assert_eq!(all.json::<Value>().await.unwrap(), json!({"revoked": 1}));
    assert_error(app.get_bearer("/api/me", &ada.signed.jwt).await, 401, "unauthorized").await;
}

async fn signing_out_on_the_device_bites_at_once(database: TestDb) {
    let app = spawn_app(database).await;
    let ada = app.new_member().await;
    let ended = ada
        .client
        .post(app.url(&format!("/v1/client/sessions/{}/end", ada.signed.session_id)))
        .send()
        .await
        .unwrap();
    assert_eq!(ended.status(), 200);
    assert_error(app.get_bearer("/api/me", &ada.signed.jwt).await, 401, "unauthorized").await;

    let bob = app.new_member().await;
    assert_eq!(
        bob.client
            .delete(app.url("/v1/client/sessions"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_error(app.get_bearer("/api/me", &bob.signed.jwt).await, 401, "unauthorized").await;
}

/// Two instances on one PostgreSQL database: a revocation through A reaches B through
/// LISTEN/NOTIFY, and B refuses the session's unexpired token within a second.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revocation_reaches_another_instance_within_a_second() {
    let Some(database) = TestDb::postgres() else { return };
    let a = spawn_app(database).await;
    let shared_url = a.state.config.database_url.clone();
    let b = spawn_app_with(
        TestDb::Sqlite,
        TestOptions {
            vars: vec![("RATE_LIMIT", "off".into()), ("DATABASE_URL", shared_url)],
            ..Default::default()
        },
    )
    .await;
    assert_eq!(b.state.db.dialect, gatehouse::db::Dialect::Postgres);
    // B's listener is up once it answers a NOTIFY of its own making.
    let ada = a.new_member().await;
    let laptop = crate::helpers::cookie_client();
    let other = crate::helpers::signed_in(a.sign_in_with(&laptop, &ada.email, crate::helpers::PASSWORD).await).await;
    assert_eq!(
        b.get_bearer("/api/me", &other.jwt).await.status(),
        200,
        "B accepts A's token"
    );
    wait_for_listener(&b).await;

    let revoked = a
        .send_bearer(
            Method::POST,
            &format!("/api/me/sessions/{}/revoke", other.session_id),
            &ada.signed.jwt,
            None,
        )
        .await;
    assert_eq!(revoked.status(), 200);
    crate::helpers::eventually(
        std::time::Duration::from_secs(1),
        "B to refuse the revoked session",
        || async { (b.get_bearer("/api/me", &other.jwt).await.status() == 401).then_some(()) },
    )
    .await;
    assert_eq!(b.get_bearer("/api/me", &ada.signed.jwt).await.status(), 200);
}

/// Sends a NOTIFY for a dummy session until the instance has heard it.
pub async fn wait_for_listener(app: &crate::helpers::TestApp) {
    let probe = format!(
        "sess_probe{}",
        &gatehouse::ids::new_id(gatehouse::ids::IdKind::Session)[5..]
    );
    crate::helpers::eventually(std::time::Duration::from_secs(5), "the revocation listener", || async {
        gatehouse::auth::revocation::announce(&app.state.db, std::slice::from_ref(&probe))
            .await
            .unwrap();
        app.state.revocations.contains(&probe).then_some(())
    })
    .await;
}
