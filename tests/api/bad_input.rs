//! Bad input is a clear 4xx with the error shape, never a 5xx, and writes nothing.

use serde_json::json;

use crate::db_tests;
use crate::helpers::{PASSWORD, TestDb, assert_error, email, spawn_app};

db_tests!(
    bad_bodies_are_clear_4xx,
    sign_up_policy_is_explained_per_field,
    bad_input_writes_nothing
);

async fn bad_bodies_are_clear_4xx(database: TestDb) {
    let app = spawn_app(database).await;
    let url = app.url("/v1/sign-up");
    let send = |body: String, content_type: &'static str| {
        app.client
            .post(&url)
            .header("content-type", content_type)
            .body(body)
            .send()
    };
    assert_error(
        send("{\"email\": ".into(), "application/json").await.unwrap(),
        400,
        "bad_request",
    )
    .await;
    assert_error(
        send("not json".into(), "application/json").await.unwrap(),
        400,
        "bad_request",
    )
    .await;
    assert_error(
        send("email=a@b.c".into(), "application/x-www-form-urlencoded")
            .await
            .unwrap(),
        415,
        "unsupported_media_type",
    )
    .await;
    assert_error(
        send(format!("{{\"email\": \"{}\"}}", "a".repeat(70_000)), "application/json")
            .await
            .unwrap(),
        413,
        "payload_too_large",
    )
    .await;

    let missing = assert_error(
        send(json!({"email": email()}).to_string(), "application/json")
            .await
            .unwrap(),
        422,
        "validation_failed",
    )
    .await;
    assert_eq!(missing["fields"]["password"], "is required");
    let unknown = json!({"email": email(), "password": PASSWORD, "is_admin": true}).to_string();
    let unknown = assert_error(
        send(unknown, "application/json").await.unwrap(),
        422,
        "validation_failed",
    )
    .await;
    assert!(unknown["fields"]["is_admin"].is_string(), "{unknown}");
    let wrong_type = json!({"email": 42, "password": PASSWORD}).to_string();
    assert_error(
        send(wrong_type, "application/json").await.unwrap(),
        422,
        "validation_failed",
    )
    .await;
    let array = assert_error(
        send("[]".into(), "application/json").await.unwrap(),
        422,
        "validation_failed",
    )
    .await;
    assert!(array["fields"].is_object());

    // Sign-in: overlong input is refused before any hashing.
    let long = app
        .sign_in_with(&app.client, &format!("{}@example.com", "a".repeat(300)), PASSWORD)
        .await;
    assert_error(long, 422, "validation_failed").await;
    let long = app.sign_in_with(&app.client, &email(), &"p".repeat(10_000)).await;
    assert_error(long, 422, "validation_failed").await;
}

async fn sign_up_policy_is_explained_per_field(database: TestDb) {
    let app = spawn_app(database).await;
    let cases = [
        (json!({"email": "not-an-email", "password": PASSWORD}), "email"),
        (
            json!({"email": format!("{}@example.com", "a".repeat(300)), "password": PASSWORD}),
            "email",
        ),
        (json!({"email": email(), "password": "short"}), "password"),
        (json!({"email": email(), "password": "p".repeat(129)}), "password"),
        (
            json!({"email": email(), "password": PASSWORD, "first_name": "x".repeat(101)}),
            "first_name",
        ),
    ];
    for (body, field) in cases {
        let response = app.post_json(&app.client, "/v1/sign-up", &body).await;
        let error = assert_error(response, 422, "validation_failed").await;
        assert!(error["fields"][field].is_string(), "{field}: {error}");
    }
}

async fn bad_input_writes_nothing(database: TestDb) {
    let app = spawn_app(database).await;
    let address = email();
    let short = app
        .post_json(
            &app.client,
            "/v1/sign-up",
            &json!({"email": address, "password": "short"}),
        )
        .await;
    assert_eq!(short.status(), 422);
    let users: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM users")
        .fetch_one(&app.state.db.pool)
        .await
        .unwrap();
    let clients: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM clients")
        .fetch_one(&app.state.db.pool)
        .await
        .unwrap();
    assert_eq!((users, clients), (0, 0));
    // The email is still free.
    app.sign_up(&address).await;
}
