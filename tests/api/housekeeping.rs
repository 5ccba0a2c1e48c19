//! The housekeeping pass: session expiry with `session.ended`, and retention that
//! deletes what is old in batches and never what is pending.

use gatehouse::jobs::housekeeping::run_once;
use serde_json::Value;

use crate::db_tests;
use crate::helpers::{TestApp, TestDb, assert_error, spawn_app};

db_tests!(
    expiry_by_the_timer_ends_sessions_with_an_event,
    retention_deletes_old_rows_and_keeps_pending_ones,
);

async fn exec(app: &TestApp, sql: &'static str, binds: &[&str]) {
    let mut query = sqlx::query(sql);
    for bind in binds {
        query = query.bind(*bind);
    }
    query.execute(&app.state.db.pool).await.unwrap();
}

async fn expiry_by_the_timer_ends_sessions_with_an_event(database: TestDb) {
    let app = spawn_app(database).await;
    let ada = app.new_member().await;
    assert_eq!(app.get_bearer("/api/me", &ada.signed.jwt).await.status(), 200);
    exec(
        &app,
        "UPDATE sessions SET expire_at = 1 WHERE id = $1",
        &[&ada.signed.session_id],
    )
    .await;

    run_once(&app.state, gatehouse::clock::now_ms()).await;

    let payload: String =
        sqlx::query_scalar("SELECT payload FROM events WHERE type = 'session.ended' AND user_id = $1")
            .bind(&ada.signed.user_id)
            .fetch_one(&app.state.db.pool)
            .await
            .unwrap();
    let session: Value = serde_json::from_str(&payload).unwrap();
    assert_eq!(session["id"], ada.signed.session_id.as_str());
    assert_eq!(session["status"], "expired");
    // Its token stops at once, and the session cannot be refreshed.
    assert_error(app.get_bearer("/api/me", &ada.signed.jwt).await, 401, "unauthorized").await;
    let refresh = app.refresh(&ada.client, &ada.signed.session_id).await;
    assert_eq!(refresh.status(), 401);
    // A second pass finds nothing more to expire: one event per session.
    run_once(&app.state, gatehouse::clock::now_ms()).await;
    let events = app
        .count(
            "SELECT COUNT(*) FROM events WHERE type = 'session.ended' AND user_id = $1",
            &ada.signed.user_id,
        )
        .await;
    assert_eq!(events, 1);
}

async fn retention_deletes_old_rows_and_keeps_pending_ones(database: TestDb) {
    let app = spawn_app(database).await;
    let now = gatehouse::clock::now_ms();
    let old = (now - 31 * 86_400_000).to_string();
    let recent = (now - 86_400_000).to_string();
    let ada = app.new_member().await;

    // Webhooks: one old delivered delivery (with an attempt), one old pending, one recent event.
    exec(
        &app,
        "INSERT INTO webhook_endpoints (id, url, events, secret, status, consecutive_failures, created_at, updated_at)
                VALUES ('whep_1', 'http://127.0.0.1:9/', '', 'whsec_x', 'active', 0, 0, 0)",
        &[],
    )
    .await;
    // In one transaction: the app's own housekeeping runs in the background, and an old
    // event without its delivery yet is one it may delete between two statements.
    let mut tx = app.state.db.pool.begin().await.unwrap();
    for (event, at) in [
        ("msg_old_done", &old),
        ("msg_old_pending", &old),
        ("msg_recent", &recent),
    ] {
        sqlx::query(
            "INSERT INTO events (id, type, payload, created_at) VALUES ($1, 'item.created', '{}', CAST($2 AS BIGINT))",
        )
        .bind(event)
        .bind(at.as_str())
        .execute(&mut *tx)
        .await
        .unwrap();
    }
    sqlx::query(
        "INSERT INTO webhook_deliveries (id, event_id, endpoint_id, status, attempts, next_attempt_at, locked_until, created_at, updated_at)
                VALUES ('d_done', 'msg_old_done', 'whep_1', 'delivered', 1, CAST($1 AS BIGINT), 0, 0, 0),
                       ('d_pending', 'msg_old_pending', 'whep_1', 'pending', 3, CAST($1 AS BIGINT), 0, 0, 0)",
    )
    .bind(old.as_str())
    .execute(&mut *tx)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO webhook_attempts (id, delivery_id, endpoint_id, event_id, attempt, duration_ms, created_at)
                VALUES ('att_1', 'd_done', 'whep_1', 'msg_old_done', 1, 5, 0)",
    )
    .execute(&mut *tx)
    .await
    .unwrap();
    tx.commit().await.unwrap();
    exec(&app, "INSERT INTO webhook_receipts (message_id, event_type, received_at)
                VALUES ('svix_old', 'user.created', CAST($1 AS BIGINT)), ('svix_recent', 'user.created', CAST($2 AS BIGINT))", &[&old, &recent]).await;
    // Sessions: an old ended one on a client of its own, and the live one.
    let bob = app.new_member().await;
    let end = bob
        .client
        .post(app.url(&format!("/v1/client/sessions/{}/end", bob.signed.session_id)))
        .send()
        .await
        .unwrap();
    assert_eq!(end.status(), 200);
    exec(
        &app,
        "UPDATE sessions SET updated_at = CAST($1 AS BIGINT) WHERE id = $2",
        &[&old, &bob.signed.session_id],
    )
    .await;
    exec(&app, "UPDATE clients SET updated_at = CAST($1 AS BIGINT)", &[&old]).await;

    run_once(&app.state, now).await;

    for (sql, id, expected) in [
        ("SELECT COUNT(*) FROM webhook_deliveries WHERE id = $1", "d_done", 0),
        (
            "SELECT COUNT(*) FROM webhook_attempts WHERE delivery_id = $1",
            "d_done",
            0,
        ),
        ("SELECT COUNT(*) FROM events WHERE id = $1", "msg_old_done", 0),
        ("SELECT COUNT(*) FROM webhook_deliveries WHERE id = $1", "d_pending", 1),
        ("SELECT COUNT(*) FROM events WHERE id = $1", "msg_old_pending", 1),
        ("SELECT COUNT(*) FROM events WHERE id = $1", "msg_recent", 1),
        (
            "SELECT COUNT(*) FROM webhook_receipts WHERE message_id = $1",
            "svix_old",
            0,
        ),
        (
            "SELECT COUNT(*) FROM webhook_receipts WHERE message_id = $1",
            "svix_recent",
            1,
        ),
        ("SELECT COUNT(*) FROM sessions WHERE id = $1", &bob.signed.session_id, 0),
        ("SELECT COUNT(*) FROM sessions WHERE id = $1", &ada.signed.session_id, 1),
    ] {
        assert_eq!(app.count(sql, id).await, expected, "{sql} [{id}]");
    }
    // Bob's client had only that session: it goes; Ada's client holds a live session: it stays.
    let clients: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM clients")
        .fetch_one(&app.state.db.pool)
        .await
        .unwrap();
    assert_eq!(clients, 1);
    assert_eq!(app.get_bearer("/api/me", &ada.signed.jwt).await.status(), 200);
}
