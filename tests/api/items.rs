//! Items: CRUD in both scopes, permissions, the cross-tenant matrix, pagination,
//! idempotency, optimistic concurrency, events; and organization settings.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::db_tests;
use crate::helpers::{Member, TestApp, TestDb, assert_error, jwt_of, spawn_app};

db_tests!(
    personal_items_crud_with_etags,
    organization_items_follow_permissions,
    cross_tenant_matrix,
    pages_are_stable_while_rows_are_inserted,
    bad_item_input_is_422_and_writes_nothing,
    idempotency_keys_replay_the_first_response,
    racing_updates_with_one_version_let_exactly_one_win,
    concurrent_creates_with_one_key_make_one_row,
    item_changes_are_recorded_as_events,
    organization_settings_read_by_members_written_by_admins,
);

async fn create(app: &TestApp, jwt: &str, body: Value) -> reqwest::Response {
    app.send_bearer(Method::POST, "/api/items", jwt, Some(&body)).await
}

async fn create_item(app: &TestApp, jwt: &str, name: &str) -> Value {
    let response = create(app, jwt, json!({"name": name, "data": {"n": name}})).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    response.json().await.unwrap()
}

async fn count(app: &TestApp, sql: &'static str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(&app.state.db.pool).await.unwrap()
}

/// The organization of `admin` with `members`: `(org id, admin token, member tokens)`.
async fn org_with(app: &TestApp, admin: &Member, members: &[&Member]) -> (String, String, Vec<String>) {
    let org = app.org_with(admin, members).await;
    (org.id, org.admin_jwt, org.member_jwts)
}

async fn personal_items_crud_with_etags(database: TestDb) {
    let app = spawn_app(database).await;
    let ada = app.new_member().await;
    let jwt = &ada.signed.jwt;
    let response = create(&app, jwt, json!({"name": "  Notes  ", "data": {"tags": ["a"]}})).await;
    assert_eq!(response.status(), 201);
    assert_eq!(response.headers()["etag"], "\"1\"");
    let item: Value = response.json().await.unwrap();
    let id = item["id"].as_str().unwrap();
    assert!(id.starts_with("item_"));
    assert_eq!(item["name"], "Notes");
    assert!(item["organization_id"].is_null());
    assert_eq!(item["owner_id"], ada.signed.user_id.as_str());
    assert_eq!(item["data"], json!({"tags": ["a"]}));
    assert_eq!(item["version"], 1);
    let defaulted = create_item(&app, jwt, "Second").await;
    assert_eq!(defaulted["data"], json!({"n": "Second"}));

    let fetched = app.get_bearer(&format!("/api/items/{id}"), jwt).await;
    assert_eq!(fetched.headers()["etag"], "\"1\"");
    let list: Value = app.get_bearer("/api/items", jwt).await.json().await.unwrap();
    assert_eq!(list["data"].as_array().unwrap().len(), 2);
    assert_eq!(list["data"][0]["name"], "Second", "newest first");
    assert!(list["next_cursor"].is_null());

    let path = format!("/api/items/{id}");
    let patched = app
        .send_bearer(Method::PATCH, &path, jwt, Some(&json!({"name": "Renamed"})))
        .await;
    assert_eq!(patched.headers()["etag"], "\"2\"");
    let patched: Value = patched.json().await.unwrap();
    assert_eq!(
        (patched["name"].as_str(), patched["version"].as_i64()),
        (Some("Renamed"), Some(2))
    );
    assert_eq!(patched["data"], json!({"tags": ["a"]}), "data untouched when not given");
    assert!(patched["updated_at"].as_i64() >= item["updated_at"].as_i64());

    // If-Match: quoted, bare; stale is 409 and changes nothing.
    let client = reqwest::Client::new();
    let quoted = client
        .patch(app.url(&path))
        .bearer_auth(jwt)
        .header("if-match", "\"2\"")
        .json(&json!({"data": {"x": 1}}))
        .send()
        .await
        .unwrap();
    assert_eq!(quoted.status(), 200);
    let bare = client
        .patch(app.url(&path))
        .bearer_auth(jwt)
        .header("if-match", "3")
        .json(&json!({"name": "Bare"}))
        .send()
        .await
        .unwrap();
    assert_eq!(bare.status(), 200);
    let stale = client
        .patch(app.url(&path))
        .bearer_auth(jwt)
        .header("if-match", "\"2\"")
        .json(&json!({"name": "Stale"}))
        .send()
        .await
        .unwrap();
    assert_error(stale, 409, "conflict").await;
    let now: Value = app.get_bearer(&path, jwt).await.json().await.unwrap();
    assert_eq!((now["name"].as_str(), now["version"].as_i64()), (Some("Bare"), Some(4)));

    assert_eq!(app.send_bearer(Method::DELETE, &path, jwt, None).await.status(), 204);
    assert_error(app.get_bearer(&path, jwt).await, 404, "not_found").await;
    assert_error(
        app.send_bearer(Method::DELETE, &path, jwt, None).await,
        404,
        "not_found",
    )
    .await;
}

async fn organization_items_follow_permissions(database: TestDb) {
    let app = spawn_app(database).await;
    let ada = app.new_member().await;
    let bob = app.new_member().await;
    let (org_id, admin_jwt, jwts) = org_with(&app, &ada, &[&bob]).await;
    let bob_jwt = &jwts[0];

    let item = create_item(&app, &admin_jwt, "Plan").await;
    assert_eq!(item["organization_id"], org_id.as_str());
    let path = format!("/api/items/{}", item["id"].as_str().unwrap());
    // A member reads and writes, but may not delete.
    assert_eq!(app.get_bearer(&path, bob_jwt).await.status(), 200);
    assert_eq!(
        app.send_bearer(Method::PATCH, &path, bob_jwt, Some(&json!({"name": "Plan B"})))
            .await
            .status(),
        200
    );
    let bobs = create_item(&app, bob_jwt, "Bob's").await;
    assert_eq!(bobs["owner_id"], bob.signed.user_id.as_str());
    assert_error(
        app.send_bearer(Method::DELETE, &path, bob_jwt, None).await,
        403,
        "forbidden",
    )
    .await;
    // A read-only custom role reads, and cannot create or update.
    gatehouse::db::roles::upsert(&app.state.db.pool, "org:viewer", "Viewer", &["org:data:read"], 0)
        .await
        .unwrap();
    let cleo = app.new_member().await;
    app.add_member(&admin_jwt, &cleo, "org:viewer").await;
    let cleo_jwt = app
        .switch_org_jwt(&cleo.client, &cleo.signed.session_id, Some(&org_id))
        .await;
    let list: Value = app.get_bearer("/api/items", &cleo_jwt).await.json().await.unwrap();
    assert_eq!(list["data"].as_array().unwrap().len(), 2);
    assert_error(create(&app, &cleo_jwt, json!({"name": "x"})).await, 403, "forbidden").await;
    assert_error(
        app.send_bearer(Method::PATCH, &path, &cleo_jwt, Some(&json!({"name": "x"})))
            .await,
        403,
        "forbidden",
    )
    .await;
    // The admin deletes.
    assert_eq!(
        app.send_bearer(Method::DELETE, &path, &admin_jwt, None).await.status(),
        204
    );
    // Org items are not personal items, and personal items are not org items.
    let personal: Value = app
        .get_bearer("/api/items", &bob.signed.jwt)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(personal["data"], json!([]));
}

/// For each verb, each foreign scope answers as the contract says: items of another
/// organization or another user's personal items are 404 (as if absent), and after
/// leaving an organization or having the membership revoked, its token gets 403.
async fn cross_tenant_matrix(database: TestDb) {
    let app = spawn_app(database).await;
    let ada = app.new_member().await; // admin of A
    let bob = app.new_member().await; // member of A, later revoked
    let dan = app.new_member().await; // admin of A, later leaves
    let zed = app.new_member().await; // admin of B
    let (_org_a, ada_a, jwts_a) = org_with(&app, &ada, &[&bob, &dan]).await;
    let (_org_b, zed_b, _) = org_with(&app, &zed, &[]).await;
    let bob_a = jwts_a[0].clone();
    let dan_member_a = jwts_a[1].clone();
    // Dan becomes an admin of A too, so that he may leave it.
    let promote = app
        .send_bearer(
            Method::PATCH,
            &format!("/api/admin/members/{}", dan.signed.user_id),
            &ada_a,
            Some(&json!({"role": "org:admin"})),
        )
        .await;
    assert_eq!(promote.status(), 200);
    let dan_a = jwt_of(app.refresh(&dan.client, &dan.signed.session_id).await).await;
    assert_ne!(dan_a, dan_member_a);

    let item_a = create_item(&app, &ada_a, "A's").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let item_b = create_item(&app, &zed_b, "B's").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let bob_personal = create_item(&app, &bob.signed.jwt, "Bob's own").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let ada_personal = create_item(&app, &ada.signed.jwt, "Ada's own").await["id"]
        .as_str()
        .unwrap()
        .to_owned();

    // Dan leaves A (removes himself); Ada revokes Bob.
    let leave = app
        .send_bearer(
            Method::DELETE,
            &format!("/api/admin/members/{}", dan.signed.user_id),
            &dan_a,
            None,
        )
        .await;
    assert_eq!(leave.status(), 204);
    let revoke = app
        .send_bearer(
            Method::DELETE,
            &format!("/api/admin/members/{}", bob.signed.user_id),
            &ada_a,
            None,
        )
        .await;
    assert_eq!(revoke.status(), 204);

    let cases: Vec<(&str, &str, &str, u16)> = vec![
        ("another organization's item", &ada_a, &item_b, 404),
        (
            "another organization's item, from personal scope",
            &ada.signed.jwt,
            &item_b,
            404,
        ),
        (
            "another user's personal item, from personal scope",
            &ada.signed.jwt,
            &bob_personal,
            404,
        ),
        (
            "another user's personal item, from an organization",
            &ada_a,
            &bob_personal,
            404,
        ),
        (
            "one's own personal item, from an organization",
            &ada_a,
            &ada_personal,
            404,
        ),
        ("an organization you left", &dan_a, &item_a, 403),
        ("a revoked membership", &bob_a, &item_a, 403),
    ];
    for (case, jwt, id, expected) in cases {
        let path = format!("/api/items/{id}");
        for (method, body) in [
            (Method::GET, None),
            (Method::PATCH, Some(json!({"name": "pwned"}))),
            (Method::DELETE, None),
        ] {
            let response = app.send_bearer(method.clone(), &path, jwt, body.as_ref()).await;
            assert_eq!(response.status().as_u16(), expected, "{method} {case}");
        }
    }
    for (case, jwt) in [("left", &dan_a), ("revoked", &bob_a)] {
        let list = app.get_bearer("/api/items", jwt).await;
        assert_eq!(list.status(), 403, "list after {case}");
        assert_eq!(
            create(&app, jwt, json!({"name": "x"})).await.status(),
            403,
            "create after {case}"
        );
    }
    // Lists never show other scopes' items; nothing was changed by the refused requests.
    let a_list: Value = app.get_bearer("/api/items", &ada_a).await.json().await.unwrap();
    let names: Vec<&str> = a_list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["A's"]);
    let b_list: Value = app.get_bearer("/api/items", &zed_b).await.json().await.unwrap();
    assert_eq!(b_list["data"][0]["name"], "B's");
    assert_eq!(b_list["data"].as_array().unwrap().len(), 1);
    assert_eq!(count(&app, "SELECT COUNT(*) FROM items").await, 4);
    assert_eq!(count(&app, "SELECT COUNT(*) FROM items WHERE name = 'pwned'").await, 0);
}

async fn pages_are_stable_while_rows_are_inserted(database: TestDb) {
    let app = spawn_app(database).await;
    let ada = app.new_member().await;
    let jwt = &ada.signed.jwt;
    let mut created = Vec::new();
    for i in 0..25 {
        created.push(
            create_item(&app, jwt, &format!("item {i}")).await["id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/items?limit=10&cursor={c}"),
            None => "/api/items?limit=10".to_owned(),
        };
        let page: Value = app.get_bearer(&path, jwt).await.json().await.unwrap();
        pages += 1;
        seen.extend(
            page["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|i| i["id"].as_str().unwrap().to_owned()),
        );
        // New rows arrive between pages; they belong before the cursor, never after it.
        create_item(&app, jwt, &format!("late {pages}")).await;
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    created.reverse();
    assert_eq!(seen, created, "every original row once, newest first, no late row");
    assert_error(
        app.get_bearer("/api/items?limit=101", jwt).await,
        422,
        "validation_failed",
    )
    .await;
    assert_error(
        app.get_bearer("/api/items?cursor=garbage", jwt).await,
        422,
        "validation_failed",
    )
    .await;
}

async fn bad_item_input_is_422_and_writes_nothing(database: TestDb) {
    let app = spawn_app(database).await;
    let ada = app.new_member().await;
    let jwt = &ada.signed.jwt;
    let cases = [
        (json!({"name": ""}), "name"),
        (json!({"name": "   "}), "name"),
        (json!({"name": "x".repeat(201)}), "name"),
        (json!({"name": "ok", "data": [1, 2]}), "data"),
        (json!({"name": "ok", "data": "text"}), "data"),
        (json!({"name": "ok", "data": {"blob": "x".repeat(17_000)}}), "data"),
        (json!({"name": "ok", "organization_id": "org_x"}), "organization_id"),
        (json!({"data": {}}), "name"),
    ];
    for (body, field) in cases {
        let error = assert_error(create(&app, jwt, body).await, 422, "validation_failed").await;
        assert!(error["fields"][field].is_string(), "{field}: {error}");
    }
    let huge = json!({"name": "ok", "data": {"blob": "x".repeat(70_000)}});
    assert_error(create(&app, jwt, huge).await, 413, "payload_too_large").await;
    assert_eq!(count(&app, "SELECT COUNT(*) FROM items").await, 0);

    let item = create_item(&app, jwt, "fine").await;
    let path = format!("/api/items/{}", item["id"].as_str().unwrap());
    assert_error(
        app.send_bearer(Method::PATCH, &path, jwt, Some(&json!({"data": 5})))
            .await,
        422,
        "validation_failed",
    )
    .await;
    let bad_if_match = reqwest::Client::new()
        .patch(app.url(&path))
        .bearer_auth(jwt)
        .header("if-match", "yesterday")
        .json(&json!({"name": "x"}))
        .send()
        .await
        .unwrap();
    assert_error(bad_if_match, 400, "bad_request").await;
    assert_error(app.get_bearer("/api/items/not-an-id", jwt).await, 404, "not_found").await;
    let bad_key = reqwest::Client::new()
        .post(app.url("/api/items"))
        .bearer_auth(jwt)
        .header("idempotency-key", "")
        .json(&json!({"name": "x"}))
        .send()
        .await
        .unwrap();
    assert_error(bad_key, 400, "bad_request").await;
    let unchanged: Value = app.get_bearer(&path, jwt).await.json().await.unwrap();
    assert_eq!(
        (unchanged["name"].as_str(), unchanged["version"].as_i64()),
        (Some("fine"), Some(1))
    );
}

async fn post_with_key(app: &TestApp, jwt: &str, key: &str, body: &Value) -> reqwest::Response {
    reqwest::Client::new()
        .post(app.url("/api/items"))
        .bearer_auth(jwt)
        .header("idempotency-key", key)
        .json(body)
        .send()
        .await
        .unwrap()
}

async fn idempotency_keys_replay_the_first_response(database: TestDb) {
    let app = spawn_app(database).await;
    let ada = app.new_member().await;
    let bob = app.new_member().await;
    let body = json!({"name": "Invoice", "data": {"amount": 10}});
    let first = post_with_key(&app, &ada.signed.jwt, "key-1", &body).await;
    assert_eq!(first.status(), 201);
    assert!(first.headers().get("idempotent-replayed").is_none());
    let first: Value = first.json().await.unwrap();
    let retry = post_with_key(&app, &ada.signed.jwt, "key-1", &body).await;
    assert_eq!(retry.status(), 201);
    assert_eq!(retry.headers()["idempotent-replayed"], "true");
    assert_eq!(retry.json::<Value>().await.unwrap(), first);
    assert_eq!(count(&app, "SELECT COUNT(*) FROM items").await, 1);

    let different = post_with_key(&app, &ada.signed.jwt, "key-1", &json!({"name": "Other"})).await;
    assert_error(different, 409, "conflict").await;
    // Keys belong to their user.
    assert_eq!(post_with_key(&app, &bob.signed.jwt, "key-1", &body).await.status(), 201);
    assert_eq!(count(&app, "SELECT COUNT(*) FROM items").await, 2);
    // After 24 h the key is free again.
    sqlx::query("UPDATE idempotency_keys SET expires_at = 1")
        .execute(&app.state.db.pool)
        .await
        .unwrap();
    let later = post_with_key(&app, &ada.signed.jwt, "key-1", &json!({"name": "Other"})).await;
    assert_eq!(later.status(), 201);
    assert_eq!(count(&app, "SELECT COUNT(*) FROM items").await, 3);
}

async fn racing_updates_with_one_version_let_exactly_one_win(database: TestDb) {
    let app = spawn_app(database).await;
    let ada = app.new_member().await;
    let item = create_item(&app, &ada.signed.jwt, "race").await;
    let path = format!("/api/items/{}", item["id"].as_str().unwrap());
    for round in 0..5 {
        let version = 1 + round;
        let send = |name: &'static str| {
            reqwest::Client::new()
                .patch(app.url(&path))
                .bearer_auth(&ada.signed.jwt)
                .header("if-match", format!("\"{version}\""))
                .json(&json!({"name": name}))
                .send()
        };
        let (a, b) = tokio::join!(send("left"), send("right"));
        let mut statuses = [a.unwrap().status().as_u16(), b.unwrap().status().as_u16()];
        statuses.sort();
        assert_eq!(statuses, [200, 409], "round {round}");
    }
    let now: Value = app.get_bearer(&path, &ada.signed.jwt).await.json().await.unwrap();
    assert_eq!(now["version"], 6);
}

async fn concurrent_creates_with_one_key_make_one_row(database: TestDb) {
    let app = spawn_app(database).await;
    let ada = app.new_member().await;
    let body = json!({"name": "Once"});
    let (url, jwt) = (app.url("/api/items"), ada.signed.jwt.clone());
    let handles: Vec<_> = (0..20)
        .map(|_| {
            let (url, jwt, body) = (url.clone(), jwt.clone(), body.clone());
            tokio::spawn(async move {
                let client = reqwest::Client::new();
                client
                    .post(url)
                    .bearer_auth(jwt)
                    .header("idempotency-key", "same-key")
                    .json(&body)
                    .send()
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut responses = Vec::new();
    for handle in handles {
        responses.push(handle.await.unwrap());
    }
    let mut ids = std::collections::BTreeSet::new();
    for response in responses {
        assert_eq!(response.status(), 201);
        ids.insert(
            response.json::<Value>().await.unwrap()["id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    assert_eq!(ids.len(), 1, "every response names the same item");
    assert_eq!(count(&app, "SELECT COUNT(*) FROM items").await, 1);
    assert_eq!(
        count(&app, "SELECT COUNT(*) FROM events WHERE type = 'item.created'").await,
        1
    );
}

async fn item_changes_are_recorded_as_events(database: TestDb) {
    let app = spawn_app(database).await;
    let ada = app.new_member().await;
    let item = create_item(&app, &ada.signed.jwt, "tracked").await;
    let path = format!("/api/items/{}", item["id"].as_str().unwrap());
    app.send_bearer(
        Method::PATCH,
        &path,
        &ada.signed.jwt,
        Some(&json!({"name": "tracked 2"})),
    )
    .await;
    app.send_bearer(Method::DELETE, &path, &ada.signed.jwt, None).await;
    let rows: Vec<(String, String)> =
        sqlx::query_as("SELECT type, payload FROM events WHERE type LIKE 'item.%' ORDER BY created_at, id")
            .fetch_all(&app.state.db.pool)
            .await
            .unwrap();
    let types: Vec<&str> = rows.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(types, ["item.created", "item.updated", "item.deleted"]);
    let updated: Value = serde_json::from_str(&rows[1].1).unwrap();
    assert_eq!(
        (updated["name"].as_str(), updated["version"].as_i64()),
        (Some("tracked 2"), Some(2))
    );
    let deleted: Value = serde_json::from_str(&rows[2].1).unwrap();
    assert_eq!(deleted["id"], item["id"]);
    assert_eq!(deleted["deleted"], true);
}

async fn organization_settings_read_by_members_written_by_admins(database: TestDb) {
    let app = spawn_app(database).await;
    let ada = app.new_member().await;
    let bob = app.new_member().await;
    let (_org, admin_jwt, jwts) = org_with(&app, &ada, &[&bob]).await;
    let bob_jwt = &jwts[0];
    let empty: Value = app.get_bearer("/api/org/settings", bob_jwt).await.json().await.unwrap();
    assert_eq!(empty, json!({}));
    let settings = json!({"theme": "dark", "seats": 5});
    let put = app
        .send_bearer(Method::PUT, "/api/org/settings", &admin_jwt, Some(&settings))
        .await;
    assert_eq!(put.status(), 200);
    assert_eq!(put.json::<Value>().await.unwrap(), settings);
    assert_eq!(
        app.get_bearer("/api/org/settings", bob_jwt)
            .await
            .json::<Value>()
            .await
            .unwrap(),
        settings
    );
    let replaced = json!({"theme": "light"});
    app.send_bearer(Method::PUT, "/api/org/settings", &admin_jwt, Some(&replaced))
        .await;
    assert_eq!(
        app.get_bearer("/api/org/settings", bob_jwt)
            .await
            .json::<Value>()
            .await
            .unwrap(),
        replaced
    );

    assert_error(
        app.send_bearer(Method::PUT, "/api/org/settings", bob_jwt, Some(&json!({"theme": "x"})))
            .await,
        403,
        "forbidden",
    )
    .await;
    assert_error(
        app.send_bearer(Method::PUT, "/api/org/settings", &ada.signed.jwt, Some(&settings))
            .await,
        400,
        "no_active_organization",
    )
    .await;
    assert_error(
        app.get_bearer("/api/org/settings", &ada.signed.jwt).await,
        400,
        "no_active_organization",
    )
    .await;
    assert_error(
        app.send_bearer(Method::PUT, "/api/org/settings", &admin_jwt, Some(&json!([1])))
            .await,
        422,
        "validation_failed",
    )
    .await;
    assert_eq!(
        app.get_bearer("/api/org/settings", bob_jwt)
            .await
            .json::<Value>()
            .await
            .unwrap(),
        replaced
    );
}
