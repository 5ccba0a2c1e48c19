//! Organization API keys: made, listed and revoked by admins; scopes as permissions on
//! the item routes; every other route refused; revocation at once (and on another
//! instance); keys confined to their organization.

use reqwest::Method;
use serde_json::{Value, json};

use crate::db_tests;
use crate::helpers::{TestApp, TestDb, TestOptions, assert_error, spawn_app, spawn_app_with};

db_tests!(
    admins_make_list_and_revoke_keys,
    scopes_are_the_permissions_of_a_key,
    keys_stay_in_their_organization,
);

async fn make_key(app: &TestApp, admin_jwt: &str, body: Value) -> reqwest::Response {
    app.send_bearer(Method::POST, "/api/admin/api-keys", admin_jwt, Some(&body))
        .await
}

async fn key_with(app: &TestApp, admin_jwt: &str, scopes: &[&str]) -> (String, String) {
    let response = make_key(app, admin_jwt, json!({"name": "script", "scopes": scopes})).await;
    assert_eq!(response.status(), 201);
    let body: Value = response.json().await.unwrap();
    (
        body["id"].as_str().unwrap().to_owned(),
        body["secret"].as_str().unwrap().to_owned(),
    )
}

async fn admins_make_list_and_revoke_keys(database: TestDb) {
    let app = spawn_app(database).await;
    let ada = app.new_member().await;
    let bob = app.new_member().await;
    let org = app.org_with(&ada, &[&bob]).await;
    let body = json!({"name": "nightly export", "scopes": ["org:data:read"]});
    assert_error(
        make_key(&app, &org.member_jwts[0], body.clone()).await,
        403,
        "forbidden",
    )
    .await;
    for (bad, field) in [
        (json!({"name": "x", "scopes": ["org:data:fly"]}), "scopes"),
        (json!({"name": "x", "scopes": ["org:sys_memberships:manage"]}), "scopes"),
        (json!({"name": "x", "scopes": []}), "scopes"),
        (json!({"name": "", "scopes": ["org:data:read"]}), "name"),
        (
            json!({"name": "x", "scopes": ["org:data:read"], "expires_in_seconds": 59}),
            "expires_in_seconds",
        ),
        (
            json!({"name": "x", "scopes": ["org:data:read"], "expires_in_seconds": 31_536_001}),
            "expires_in_seconds",
        ),
    ] {
        let error = assert_error(
            make_key(&app, &org.admin_jwt, bad.clone()).await,
            422,
            "validation_failed",
        )
        .await;
        assert!(error["fields"][field].is_string(), "{bad} → {error}");
    }
    let created = make_key(
        &app,
        &org.admin_jwt,
        json!({"name": "nightly export", "scopes": ["org:data:read"], "expires_in_seconds": 3600}),
    )
    .await;
    assert_eq!(created.status(), 201);
    let created: Value = created.json().await.unwrap();
    let id = created["id"].as_str().unwrap().to_owned();
    let secret = created["secret"].as_str().unwrap().to_owned();
    assert!(id.starts_with("ak_") && secret.starts_with("gk_"));
    assert_eq!(created["scopes"], json!(["org:data:read"]));
    assert!(created["expire_at"].as_i64().unwrap() > created["created_at"].as_i64().unwrap());
    assert!(created["last_used_at"].is_null());
    // Stored hashed: the secret is nowhere in the table.
    assert_eq!(
        app.count("SELECT COUNT(*) FROM api_keys WHERE secret_hash = $1", &secret)
            .await,
        0
    );

    // What the key is.
    let me = app.get_bearer("/api/me", &secret).await;
    assert_eq!(me.status(), 200);
    let me: Value = me.json().await.unwrap();
    assert_eq!(me["actor_type"], "api_key");
    assert_eq!(me["api_key_id"], id.as_str());
    assert_eq!(me["org_id"], org.id.as_str());
    assert!(me["user_id"].is_null());
    assert_eq!(me["org_permissions"], json!(["org:data:read"]));
    let user_me: Value = app.get_bearer("/api/me", &org.admin_jwt).await.json().await.unwrap();
    assert_eq!(user_me["actor_type"], "user");

    // Listed without its secret, with its last use.
    let list: Value = app
        .get_bearer("/api/admin/api-keys", &org.admin_jwt)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list["data"][0]["id"], id.as_str());
    assert!(list["data"][0].get("secret").is_none());
    assert!(list["data"][0]["last_used_at"].as_i64().is_some());
    assert_eq!(
        app.get_bearer("/api/admin/api-keys", &org.member_jwts[0])
            .await
            .status(),
        403
    );

    // Revoked: refused on its next request; gone from the list; revoking again is 404.
    let path = format!("/api/admin/api-keys/{id}");
    assert_error(
        app.send_bearer(Method::DELETE, &path, &org.member_jwts[0], None).await,
        403,
        "forbidden",
    )
    .await;
    assert_eq!(
        app.send_bearer(Method::DELETE, &path, &org.admin_jwt, None)
            .await
            .status(),
        204
    );
    assert_error(app.get_bearer("/api/items", &secret).await, 401, "unauthorized").await;
    assert_error(
        app.send_bearer(Method::DELETE, &path, &org.admin_jwt, None).await,
        404,
        "not_found",
    )
    .await;
    let list: Value = app
        .get_bearer("/api/admin/api-keys", &org.admin_jwt)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list["data"], json!([]));
    for event in ["apiKey.created", "apiKey.revoked"] {
        assert_eq!(
            app.count("SELECT COUNT(*) FROM events WHERE type = $1", event).await,
            1,
            "{event}"
        );
    }
    // Unknown and malformed keys.
    assert_error(app.get_bearer("/api/items", "gk_not_a_key").await, 401, "unauthorized").await;

    // An expired key stops (even while cached).
    let (expiring_id, expiring) = key_with(&app, &org.admin_jwt, &["org:data:read"]).await;
    assert_eq!(app.get_bearer("/api/items", &expiring).await.status(), 200);
    sqlx::query("UPDATE api_keys SET expires_at = $1 WHERE id = $2")
        .bind(gatehouse::clock::now_ms() - 1)
        .bind(&expiring_id)
        .execute(&app.state.db.pool)
        .await
        .unwrap();
    let fresh_app_view = app
        .state
        .guard
        .api_keys
        .authenticate(&app.state.db, &expiring, gatehouse::clock::now_ms() + 31_000)
        .await;
    assert!(
        fresh_app_view.is_err(),
        "past the cache's life the database says expired"
    );
}

async fn scopes_are_the_permissions_of_a_key(database: TestDb) {
    let app = spawn_app(database).await;
    let ada = app.new_member().await;
    let org = app.org_with(&ada, &[]).await;
    let (_, reader) = key_with(&app, &org.admin_jwt, &["org:data:read"]).await;
    let (writer_id, writer) = key_with(&app, &org.admin_jwt, &["org:data:read", "org:data:write"]).await;

    let created = app
        .send_bearer(
            Method::POST,
            "/api/items",
            &writer,
            Some(&json!({"name": "from a script"})),
        )
        .await;
    assert_eq!(created.status(), 201);
    let item: Value = created.json().await.unwrap();
    assert_eq!(
        item["owner_id"],
        writer_id.as_str(),
        "items made by a key are the key's"
    );
    assert_eq!(item["organization_id"], org.id.as_str());
    let item_path = format!("/api/items/{}", item["id"].as_str().unwrap());

    assert_eq!(app.get_bearer("/api/items", &reader).await.status(), 200);
    assert_eq!(app.get_bearer(&item_path, &reader).await.status(), 200);
    assert_error(
        app.send_bearer(Method::POST, "/api/items", &reader, Some(&json!({"name": "no"})))
            .await,
        403,
        "forbidden",
    )
    .await;
    assert_error(
        app.send_bearer(Method::DELETE, &item_path, &writer, None).await,
        403,
        "forbidden",
    )
    .await;
    let listed: Value = app.get_bearer("/api/items", &reader).await.json().await.unwrap();
    assert_eq!(listed["data"][0]["id"], item["id"]);

    // Everything but the item routes and GET /api/me is refused to a key.
    for (method, path) in [
        (Method::GET, "/api/me/profile"),
        (Method::GET, "/api/me/sessions"),
        (Method::GET, "/api/org/members"),
        (Method::GET, "/api/org/settings"),
        (Method::GET, "/api/admin/members"),
        (Method::GET, "/api/admin/api-keys"),
        (Method::POST, "/api/organizations"),
        (Method::DELETE, "/api/me"),
    ] {
        let response = app
            .send_bearer(method.clone(), path, &writer, Some(&json!({"name": "x"})))
            .await;
        assert_eq!(response.status(), 403, "{method} {path}");
    }
    // The admin's own session is unaffected by the keys.
    assert_eq!(app.get_bearer("/api/admin/members", &org.admin_jwt).await.status(), 200);
}

async fn keys_stay_in_their_organization(database: TestDb) {
    let app = spawn_app(database).await;
    let ada = app.new_member().await;
    let eve = app.new_member().await;
    let a = app.org_with(&ada, &[]).await;
    let b = app.org_with(&eve, &[]).await;
    let (_, key_a) = key_with(
        &app,
        &a.admin_jwt,
        &["org:data:read", "org:data:write", "org:data:delete"],
    )
    .await;
    let (b_key_id, _) = key_with(&app, &b.admin_jwt, &["org:data:read"]).await;
    let item_b: Value = app
        .send_bearer(Method::POST, "/api/items", &b.admin_jwt, Some(&json!({"name": "b's"})))
        .await
        .json()
        .await
        .unwrap();
    let path = format!("/api/items/{}", item_b["id"].as_str().unwrap());
    assert_eq!(app.get_bearer(&path, &key_a).await.status(), 404);
    assert_eq!(app.send_bearer(Method::DELETE, &path, &key_a, None).await.status(), 404);
    let listed: Value = app.get_bearer("/api/items", &key_a).await.json().await.unwrap();
    assert_eq!(listed["data"], json!([]));
    // Another organization's key cannot be revoked from here.
    let other = format!("/api/admin/api-keys/{b_key_id}");
    assert_error(
        app.send_bearer(Method::DELETE, &other, &a.admin_jwt, None).await,
        404,
        "not_found",
    )
    .await;
    assert_eq!(app.get_bearer(&path, &b.admin_jwt).await.status(), 200);
}

/// Two instances on one PostgreSQL database: a key revoked through A is refused by B on
/// its next request, although B had it cached.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revocation_reaches_another_instance() {
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
    let org = a.org_with(&ada, &[]).await;
    let (id, key) = key_with(&a, &org.admin_jwt, &["org:data:read"]).await;
    assert_eq!(
        b.get_bearer("/api/items", &key).await.status(),
        200,
        "B knows (and caches) the key"
    );
    crate::sessions::wait_for_listener(&b).await;
    let revoked = a
        .send_bearer(
            Method::DELETE,
            &format!("/api/admin/api-keys/{id}"),
            &org.admin_jwt,
            None,
        )
        .await;
    assert_eq!(revoked.status(), 204);
    crate::helpers::eventually(std::time::Duration::from_secs(1), "B to refuse the key", || async {
        (b.get_bearer("/api/items", &key).await.status() == 401).then_some(())
    })
    .await;
}
