//! Users administered through the Backend API (create, metadata, ban, delete), users
//! deleting their own account, and support impersonation through actor tokens.

use reqwest::Method;
use serde_json::{Value, json};

use crate::db_tests;
use crate::helpers::{
    PASSWORD, TestApp, TestDb, TestOptions, assert_error, cookie_client, email, jwt_of, spawn_app, spawn_app_with,
};
use crate::session_tokens::claims_of;

db_tests!(
    the_backend_creates_users_with_three_kinds_of_metadata,
    bans_revoke_sessions_and_refuse_every_sign_in,
    deleting_a_user_keeps_organization_rows,
    users_delete_their_own_account,
    actor_tokens_sign_support_in_once,
);

async fn create_user(app: &TestApp, body: Value) -> reqwest::Response {
    app.backend(Method::POST, "/backend/v1/users", Some(&body)).await
}

async fn the_backend_creates_users_with_three_kinds_of_metadata(database: TestDb) {
    let app = spawn_app(database).await;
    let address = email();
    let body = json!({
        "email": address,
        "password": PASSWORD,
        "first_name": "Ada",
        "public_metadata": {"plan": "pro"},
        "private_metadata": {"stripe_customer": "cus_secret_123"},
        "unsafe_metadata": {"theme": "dark"},
    });
    let unauthenticated = app
        .client
        .post(app.url("/backend/v1/users"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(unauthenticated.status(), 401);
    let created = create_user(&app, body.clone()).await;
    assert_eq!(created.status(), 201);
    let created: Value = created.json().await.unwrap();
    let id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(created["email_verified"], true);
    assert_eq!(created["has_password"], true);
    assert_eq!(created["private_metadata"]["stripe_customer"], "cus_secret_123");
    assert_eq!(created["public_metadata"]["plan"], "pro");
    assert_eq!(created["unsafe_metadata"]["theme"], "dark");
    let error = assert_error(create_user(&app, body).await, 422, "validation_failed").await;
    assert!(error["fields"]["email"].is_string());
    for (bad, field) in [
        (json!({"email": "nope"}), "email"),
        (json!({"email": email(), "password": "short"}), "password"),
        (json!({"email": email(), "private_metadata": [1]}), "private_metadata"),
        (
            json!({"email": email(), "unsafe_metadata": {"x": "y".repeat(9000)}}),
            "unsafe_metadata",
        ),
    ] {
        let error = assert_error(create_user(&app, bad.clone()).await, 422, "validation_failed").await;
        assert!(error["fields"][field].is_string(), "{bad} → {error}");
    }
    // Without a password: no password sign-in.
    let passwordless: Value = create_user(&app, json!({"email": email()})).await.json().await.unwrap();
    assert_eq!(passwordless["has_password"], false);

    // The user signs in; private metadata is in no user-facing answer and no token.
    let device = cookie_client();
    let response = app.sign_in_with(&device, &address, PASSWORD).await;
    assert_eq!(response.status(), 200);
    let text = response.text().await.unwrap();
    assert!(
        !text.contains("cus_secret_123") && !text.contains("private_metadata"),
        "{text}"
    );
    let signed: Value = serde_json::from_str(&text).unwrap();
    let jwt = signed["jwt"].as_str().unwrap().to_owned();
    for path in ["/api/me", "/api/me/profile"] {
        let text = app.get_bearer(path, &jwt).await.text().await.unwrap();
        assert!(
            !text.contains("cus_secret_123") && !text.contains("private_metadata"),
            "{path}: {text}"
        );
    }
    assert!(!claims_of(&jwt).to_string().contains("cus_secret_123"));
    // Templates cannot read it.
    let template = app
        .backend(
            Method::POST,
            "/backend/v1/jwt_templates",
            Some(&json!({"name": "leak", "claims": {"x": "{{user.private_metadata}}"}})),
        )
        .await;
    assert_error(template, 422, "validation_failed").await;
    let session_template = app
        .backend(
            Method::PUT,
            "/backend/v1/session_token_template",
            Some(&json!({"claims": {"x": "{{user.private_metadata.stripe_customer}}"}})),
        )
        .await;
    assert_error(session_template, 422, "validation_failed").await;

    // The user writes unsafe_metadata and names, and nothing else.
    let own = app
        .send_bearer(
            Method::PATCH,
            "/api/me/profile",
            &jwt,
            Some(&json!({"unsafe_metadata": {"theme": "light"}, "last_name": "Lovelace"})),
        )
        .await;
    assert_eq!(own.status(), 200);
    let own: Value = own.json().await.unwrap();
    assert_eq!(own["unsafe_metadata"]["theme"], "light");
    assert_eq!(own["last_name"], "Lovelace");
    assert!(own.get("private_metadata").is_none());
    for forbidden in [
        json!({"public_metadata": {"plan": "free"}}),
        json!({"private_metadata": {}}),
        json!({"email": "x@example.com"}),
        json!({"unsafe_metadata": "not an object"}),
    ] {
        let response = app
            .send_bearer(Method::PATCH, "/api/me/profile", &jwt, Some(&forbidden))
            .await;
        assert_eq!(response.status(), 422, "{forbidden}");
    }
    let backend: Value = app
        .backend(Method::GET, &format!("/backend/v1/users/{id}"), None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        backend["public_metadata"]["plan"], "pro",
        "unchanged by the refused PATCH"
    );
    assert_eq!(backend["private_metadata"]["stripe_customer"], "cus_secret_123");

    // The backend changes private and unsafe metadata.
    let patched = app
        .backend(
            Method::PATCH,
            &format!("/backend/v1/users/{id}"),
            Some(&json!({"private_metadata": {"tier": 2}, "unsafe_metadata": {"theme": "blue"}})),
        )
        .await;
    assert_eq!(patched.status(), 200);
    let patched: Value = patched.json().await.unwrap();
    assert_eq!(patched["private_metadata"], json!({"tier": 2}));
    assert_eq!(patched["unsafe_metadata"], json!({"theme": "blue"}));
    let listed: Value = app
        .backend(Method::GET, "/backend/v1/users", None)
        .await
        .json()
        .await
        .unwrap();
    assert!(
        listed["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|u| u.get("private_metadata").is_some())
    );
}

async fn bans_revoke_sessions_and_refuse_every_sign_in(database: TestDb) {
    let app = spawn_app(database).await;
    let ada = app.new_member().await;
    let bob = app.new_member().await;
    let path = format!("/backend/v1/users/{}/ban", ada.signed.user_id);
    let no_key = app.client.post(app.url(&path)).send().await.unwrap();
    assert_eq!(no_key.status(), 401);
    let banned = app.backend(Method::POST, &path, None).await;
    assert_eq!(banned.status(), 200);
    assert_eq!(banned.json::<Value>().await.unwrap()["banned"], true);
    // The session's unexpired token is refused at once; refreshing it fails.
    assert_error(app.get_bearer("/api/me", &ada.signed.jwt).await, 401, "unauthorized").await;
    assert_eq!(app.refresh(&ada.client, &ada.signed.session_id).await.status(), 401);
    assert_error(
        app.sign_in_with(&cookie_client(), &ada.email, PASSWORD).await,
        403,
        "user_banned",
    )
    .await;
    assert_eq!(
        app.get_bearer("/api/me", &bob.signed.jwt).await.status(),
        200,
        "others are untouched"
    );
    // Banning twice changes nothing; an unknown user is 404.
    assert_eq!(app.backend(Method::POST, &path, None).await.status(), 200);
    let unknown = "/backend/v1/users/user_01jd3m5x0e8k2q9v7w4h6r1t3y/ban";
    assert_error(app.backend(Method::POST, unknown, None).await, 404, "not_found").await;
    // Support cannot impersonate a banned user.
    let actor = app
        .backend(
            Method::POST,
            "/backend/v1/actor_tokens",
            Some(&json!({"user_id": ada.signed.user_id, "actor": {"sub": "support_1"}})),
        )
        .await;
    assert_error(actor, 409, "conflict").await;

    let unbanned = app
        .backend(
            Method::POST,
            &format!("/backend/v1/users/{}/unban", ada.signed.user_id),
            None,
        )
        .await;
    assert_eq!(unbanned.json::<Value>().await.unwrap()["banned"], false);
    assert_eq!(
        app.sign_in_with(&cookie_client(), &ada.email, PASSWORD).await.status(),
        200
    );
    assert!(
        app.count("SELECT COUNT(*) FROM events WHERE type = $1", "session.revoked")
            .await
            >= 1
    );
}

async fn deleting_a_user_keeps_organization_rows(database: TestDb) {
    let app = spawn_app(database).await;
    let ada = app.new_member().await;
    let bob = app.new_member().await;
    let org = app.org_with(&ada, &[&bob]).await;
    let bob_jwt = &org.member_jwts[0];
    let org_item = app
        .send_bearer(Method::POST, "/api/items", bob_jwt, Some(&json!({"name": "shared"})))
        .await;
    assert_eq!(org_item.status(), 201);
    let org_item: Value = org_item.json().await.unwrap();
    let personal = app
        .send_bearer(
            Method::POST,
            "/api/items",
            &bob.signed.jwt,
            Some(&json!({"name": "mine"})),
        )
        .await;
    assert_eq!(personal.status(), 201);

    let path = format!("/backend/v1/users/{}", bob.signed.user_id);
    let deleted = app.backend(Method::DELETE, &path, None).await;
    assert_eq!(deleted.status(), 200);
    assert_eq!(
        deleted.json::<Value>().await.unwrap(),
        json!({"id": bob.signed.user_id, "object": "user", "deleted": true})
    );
    assert_error(app.get_bearer("/api/me", bob_jwt).await, 401, "unauthorized").await;
    assert_error(app.backend(Method::GET, &path, None).await, 404, "not_found").await;
    assert_error(app.backend(Method::DELETE, &path, None).await, 404, "not_found").await;
    assert_eq!(
        app.sign_in_with(&cookie_client(), &bob.email, PASSWORD).await.status(),
        401
    );
    let bob_id = bob.signed.user_id.as_str();
    assert_eq!(
        app.count("SELECT COUNT(*) FROM memberships WHERE user_id = $1", bob_id)
            .await,
        0
    );
    assert_eq!(
        app.count(
            "SELECT COUNT(*) FROM items WHERE owner_id = $1 AND organization_id IS NULL",
            bob_id
        )
        .await,
        0
    );
    // The organization keeps what Bob wrote there.
    let kept = app
        .get_bearer(
            &format!("/api/items/{}", org_item["id"].as_str().unwrap()),
            &org.admin_jwt,
        )
        .await;
    assert_eq!(kept.status(), 200);
    assert_eq!(
        app.count("SELECT COUNT(*) FROM events WHERE type = $1", "user.deleted")
            .await,
        1
    );
}

async fn users_delete_their_own_account(database: TestDb) {
    let app = spawn_app(database).await;
    let ada = app.new_member().await;
    let bob = app.new_member().await;
    let _org = app.org_with(&ada, &[&bob]).await;
    let solo = app.create_org(&bob.signed.jwt, "Bob Solo").await;

    // A stale password proof is refused; the last admin of an org with members too.
    let stale = app.stale_token(&bob).await;
    assert_error(
        app.send_bearer(Method::DELETE, "/api/me", &stale, None).await,
        403,
        "reverification_required",
    )
    .await;
    assert_error(
        app.send_bearer(Method::DELETE, "/api/me", &ada.signed.jwt, None).await,
        409,
        "conflict",
    )
    .await;
    assert_eq!(
        app.get_bearer("/api/me", &ada.signed.jwt).await.status(),
        200,
        "nothing was deleted"
    );

    // Bob (a member, and the only member of his own organization) goes.
    let fresh = jwt_of(
        bob.client
            .post(app.url(&format!("/v1/client/sessions/{}/verify", bob.signed.session_id)))
            .json(&json!({"password": PASSWORD}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        app.send_bearer(Method::DELETE, "/api/me", &fresh, None).await.status(),
        204
    );
    assert_error(app.get_bearer("/api/me", &fresh).await, 401, "unauthorized").await;
    assert_eq!(
        app.count("SELECT COUNT(*) FROM organizations WHERE id = $1", &solo)
            .await,
        0
    );
    assert_eq!(
        app.count("SELECT COUNT(*) FROM users WHERE id = $1", &bob.signed.user_id)
            .await,
        0
    );
    assert_eq!(
        app.sign_in_with(&cookie_client(), &bob.email, PASSWORD).await.status(),
        401
    );
}

async fn actor_tokens_sign_support_in_once(database: TestDb) {
    let options = TestOptions {
        vars: vec![
            ("RATE_LIMIT", "off".into()),
            ("PUBLIC_URL", "http://gatehouse.test".into()),
        ],
        ..Default::default()
    };
    let app = spawn_app_with(database, options).await;
    let ada = app.new_member().await;
    let issue = |body: Value| {
        let app = &app;
        async move { app.backend(Method::POST, "/backend/v1/actor_tokens", Some(&body)).await }
    };
    for bad in [
        json!({"user_id": ada.signed.user_id, "actor": {"sub": ""}}),
        json!({"user_id": ada.signed.user_id, "actor": {"sub": "s"}, "expires_in_seconds": 5}),
        json!({"user_id": "nope", "actor": {"sub": "s"}}),
    ] {
        assert_error(issue(bad).await, 422, "validation_failed").await;
    }
    assert_error(
        issue(json!({"user_id": "user_01jd3m5x0e8k2q9v7w4h6r1t3y", "actor": {"sub": "s"}})).await,
        404,
        "not_found",
    )
    .await;
    let issued = issue(json!({"user_id": ada.signed.user_id, "actor": {"sub": "support_ana"}})).await;
    assert_eq!(issued.status(), 201);
    let issued: Value = issued.json().await.unwrap();
    assert!(issued["id"].as_str().unwrap().starts_with("act_"));
    assert_eq!(issued["status"], "pending");
    let url = issued["url"].as_str().unwrap();
    let prefix = "http://gatehouse.test/v1/tickets/accept?ticket=";
    assert!(url.starts_with(prefix), "{url}");
    let path = &url["http://gatehouse.test".len()..];

    // Opening it signs this browser in as Ada, impersonated.
    let support = cookie_client();
    let opened = support.get(app.url(path)).send().await.unwrap();
    assert_eq!(opened.status(), 303);
    assert_eq!(opened.headers()["location"], "/account");
    let client: Value = support
        .get(app.url("/v1/client"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let sid = client["last_active_session_id"].as_str().unwrap().to_owned();
    let jwt = jwt_of(app.refresh(&support, &sid).await).await;
    let claims = claims_of(&jwt);
    assert_eq!(claims["sub"], ada.signed.user_id.as_str());
    assert_eq!(claims["act"], json!({"sub": "support_ana"}));
    let me: Value = app.get_bearer("/api/me", &jwt).await.json().await.unwrap();
    assert_eq!(me["actor"], json!({"sub": "support_ana"}));
    let own: Value = app.get_bearer("/api/me", &ada.signed.jwt).await.json().await.unwrap();
    assert!(own["actor"].is_null());
    // Opened twice: one sign-in.
    let again = cookie_client().get(app.url(path)).send().await.unwrap();
    assert_eq!(again.status(), 303);
    assert_eq!(again.headers()["location"], "/sign-in?error=ticket_invalid");

    // The impersonated session cannot touch the password, the second factor or the account.
    assert_error(
        app.send_bearer(
            Method::POST,
            "/api/me/password",
            &jwt,
            Some(&json!({"current_password": PASSWORD, "new_password": "another long password"})),
        )
        .await,
        403,
        "forbidden",
    )
    .await;
    assert_error(
        app.send_bearer(Method::POST, "/api/me/mfa/totp", &jwt, None).await,
        403,
        "forbidden",
    )
    .await;
    assert_error(
        app.send_bearer(Method::DELETE, "/api/me", &jwt, None).await,
        403,
        "forbidden",
    )
    .await;
    assert_eq!(
        app.get_bearer("/api/me/profile", &jwt).await.status(),
        200,
        "but it reads as the user"
    );

    // Revoked and expired tokens sign nobody in.
    let revoked: Value = issue(json!({"user_id": ada.signed.user_id, "actor": {"sub": "support_ana"}}))
        .await
        .json()
        .await
        .unwrap();
    let revoke_path = format!("/backend/v1/actor_tokens/{}/revoke", revoked["id"].as_str().unwrap());
    let response = app.backend(Method::POST, &revoke_path, None).await;
    assert_eq!(response.json::<Value>().await.unwrap()["status"], "revoked");
    assert_error(app.backend(Method::POST, &revoke_path, None).await, 409, "conflict").await;
    let opened = cookie_client()
        .get(app.url(&revoked["url"].as_str().unwrap()["http://gatehouse.test".len()..]))
        .send()
        .await
        .unwrap();
    assert_eq!(opened.headers()["location"], "/sign-in?error=ticket_invalid");
    let expired: Value =
        issue(json!({"user_id": ada.signed.user_id, "actor": {"sub": "support_ana"}, "expires_in_seconds": 30}))
            .await
            .json()
            .await
            .unwrap();
    sqlx::query("UPDATE actor_tokens SET expires_at = $1 WHERE id = $2")
        .bind(gatehouse::clock::now_ms() - 1)
        .bind(expired["id"].as_str().unwrap())
        .execute(&app.state.db.pool)
        .await
        .unwrap();
    let opened = cookie_client()
        .get(app.url(&expired["url"].as_str().unwrap()["http://gatehouse.test".len()..]))
        .send()
        .await
        .unwrap();
    assert_eq!(opened.headers()["location"], "/sign-in?error=ticket_invalid");
    let forged = cookie_client()
        .get(app.url("/v1/tickets/accept?ticket=forged"))
        .send()
        .await
        .unwrap();
    assert_eq!(forged.headers()["location"], "/sign-in?error=ticket_invalid");
    assert_error(
        app.backend(
            Method::POST,
            "/backend/v1/actor_tokens/act_01jd3m5x0e8k2q9v7w4h6r1t3y/revoke",
            None,
        )
        .await,
        404,
        "not_found",
    )
    .await;
}

/// Two instances on one PostgreSQL database: a ban and a deletion through A bite on B's
/// next request (the revocation is announced with NOTIFY).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ban_and_delete_reach_another_instance() {
    let Some(database) = TestDb::postgres() else { return };
    let a = spawn_app(database).await;
    let b = spawn_app_with(
        TestDb::Sqlite,
        TestOptions {
            vars: vec![
                ("RATE_LIMIT", "off".into()),
                ("DATABASE_URL", a.state.config.database_url.clone()),
            ],
            ..Default::default()
        },
    )
    .await;
    let ada = a.new_member().await;
    let bob = a.new_member().await;
    assert_eq!(b.get_bearer("/api/me", &ada.signed.jwt).await.status(), 200);
    assert_eq!(b.get_bearer("/api/me", &bob.signed.jwt).await.status(), 200);
    crate::sessions::wait_for_listener(&b).await;
    let ban = a
        .backend(
            Method::POST,
            &format!("/backend/v1/users/{}/ban", ada.signed.user_id),
            None,
        )
        .await;
    assert_eq!(ban.status(), 200);
    let delete = a
        .backend(
            Method::DELETE,
            &format!("/backend/v1/users/{}", bob.signed.user_id),
            None,
        )
        .await;
    assert_eq!(delete.status(), 200);
    for jwt in [&ada.signed.jwt, &bob.signed.jwt] {
        crate::helpers::eventually(std::time::Duration::from_secs(1), "B to refuse the token", || async {
            (b.get_bearer("/api/me", jwt).await.status() == 401).then_some(())
        })
        .await;
    }
}
