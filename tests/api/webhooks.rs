//! Webhooks in (Clerk, Svix-signed) and out (the outbox, Standard Webhooks).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use gatehouse::webhooks::signature::WebhookSecret;
use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{TestApp, TestDb, TestOptions, assert_error, eventually, spawn_app_with};

const CLERK_WEBHOOK_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

fn incoming_options() -> TestOptions {
    TestOptions {
        vars: vec![
            ("RATE_LIMIT", "off".into()),
            ("CLERK_WEBHOOK_SIGNING_SECRET", CLERK_WEBHOOK_SECRET.into()),
        ],
        ..Default::default()
    }
}

/// Posts a Clerk event signed like Svix signs it.
async fn post_clerk(app: &TestApp, id: &str, event: &Value) -> reqwest::Response {
    let body = event.to_string();
    let timestamp = gatehouse::clock::now_secs();
    let signature = WebhookSecret::parse(CLERK_WEBHOOK_SECRET)
        .unwrap()
        .sign(id, timestamp, body.as_bytes());
    send_raw(app, id, &timestamp.to_string(), &signature, body).await
}

async fn send_raw(app: &TestApp, id: &str, timestamp: &str, signature: &str, body: String) -> reqwest::Response {
    reqwest::Client::new()
        .post(app.url("/api/webhooks/clerk"))
        .header("svix-id", id)
        .header("svix-timestamp", timestamp)
        .header("svix-signature", signature)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap()
}

fn user_event(kind: &str, id: &str, first_name: &str) -> Value {
    json!({"type": kind, "object": "event", "data": {
        "id": id, "object": "user", "first_name": first_name, "last_name": "Clerk",
        "email_addresses": [{"id": "idn_2", "email_address": format!("{id}@other.example")}, {"id": "idn_1", "email_address": format!("{id}@example.com")}],
        "primary_email_address_id": "idn_1", "public_metadata": {"plan": "team"}, "created_at": 1_700_000_000_000_i64, "updated_at": 1_700_000_000_000_i64
    }})
}

fn org_json(id: &str, slug: &str) -> Value {
    json!({"id": id, "object": "organization", "name": "Clerk Org", "slug": slug, "created_at": 1_700_000_000_000_i64, "updated_at": 1_700_000_000_000_i64})
}

fn membership_event(kind: &str, org: &str, user: &str, role: &str) -> Value {
    json!({"type": kind, "data": {"id": format!("orgmem_{user}"), "object": "organization_membership", "role": role,
        "organization": org_json(org, "clerk-org"), "public_user_data": {"user_id": user, "identifier": "x@example.com"},
        "created_at": 1_700_000_000_000_i64, "updated_at": 1_700_000_000_000_i64}})
}

fn session_event(kind: &str, sid: &str, user: &str, status: &str) -> Value {
    let now = gatehouse::clock::now_ms();
    json!({"type": kind, "data": {"id": sid, "object": "session", "user_id": user, "client_id": "client_clerk1", "status": status,
        "created_at": now, "last_active_at": now, "expire_at": now + 86_400_000}})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clerk_events_keep_users_organizations_memberships_and_sessions_in_sync() {
    let app = spawn_app_with(TestDb::Sqlite, incoming_options()).await;
    let user = "user_2clerkabc";
    let ok = |r: reqwest::Response| async move {
        assert_eq!(r.status(), 200);
        r.json::<Value>().await.unwrap()
    };
    assert_eq!(
        ok(post_clerk(&app, "msg_u1", &user_event("user.created", user, "Grace")).await).await,
        json!({"applied": true})
    );
    let synced: Value = app
        .backend(Method::GET, &format!("/backend/v1/users/{user}"), None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(synced["email"], format!("{user}@example.com"), "the primary address");
    assert_eq!(synced["public_metadata"], json!({"plan": "team"}));

    ok(post_clerk(
        &app,
        "msg_o1",
        &json!({"type": "organization.created", "data": org_json("org_2clerk", "clerk-org")}),
    )
    .await)
    .await;
    ok(post_clerk(
        &app,
        "msg_m1",
        &membership_event("organizationMembership.created", "org_2clerk", user, "org:billing"),
    )
    .await)
    .await;
    assert_eq!(
        app.count("SELECT COUNT(*) FROM memberships WHERE user_id = $1", user)
            .await,
        1
    );
    assert_eq!(
        app.count("SELECT COUNT(*) FROM roles WHERE id = $1", "org:billing")
            .await,
        1
    );
    ok(post_clerk(
        &app,
        "msg_m2",
        &membership_event("organizationMembership.updated", "org_2clerk", user, "org:admin"),
    )
    .await)
    .await;
    let role: String = sqlx::query_scalar("SELECT role FROM memberships WHERE user_id = $1")
        .bind(user)
        .fetch_one(&app.state.db.pool)
        .await
        .unwrap();
    assert_eq!(role, "org:admin");

    ok(post_clerk(
        &app,
        "msg_s1",
        &session_event("session.created", "sess_2clerk", user, "active"),
    )
    .await)
    .await;
    assert_eq!(
        app.count(
            "SELECT COUNT(*) FROM sessions WHERE id = $1 AND status = 'active'",
            "sess_2clerk"
        )
        .await,
        1
    );
    ok(post_clerk(
        &app,
        "msg_s2",
        &session_event("session.revoked", "sess_2clerk", user, "revoked"),
    )
    .await)
    .await;
    assert_eq!(
        app.count(
            "SELECT COUNT(*) FROM sessions WHERE id = $1 AND status = 'revoked'",
            "sess_2clerk"
        )
        .await,
        1
    );
    assert!(
        app.state.revocations.contains("sess_2clerk"),
        "revoked through the instant-revocation path"
    );
    // A session this server never saw is still revoked locally (Clerk knows more than we do).
    ok(post_clerk(
        &app,
        "msg_s3",
        &session_event("session.removed", "sess_unknown", user, "removed"),
    )
    .await)
    .await;
    assert!(app.state.revocations.contains("sess_unknown"));

    assert_eq!(
        ok(post_clerk(&app, "msg_x1", &json!({"type": "email.created", "data": {"id": "x"}})).await).await,
        json!({"applied": false})
    );

    ok(post_clerk(
        &app,
        "msg_m3",
        &membership_event("organizationMembership.deleted", "org_2clerk", user, "org:admin"),
    )
    .await)
    .await;
    assert_eq!(
        app.count("SELECT COUNT(*) FROM memberships WHERE user_id = $1", user)
            .await,
        0
    );
    ok(post_clerk(
        &app,
        "msg_o2",
        &json!({"type": "organization.deleted", "data": {"id": "org_2clerk", "deleted": true}}),
    )
    .await)
    .await;
    assert_eq!(
        app.count("SELECT COUNT(*) FROM organizations WHERE id = $1", "org_2clerk")
            .await,
        0
    );
    ok(post_clerk(
        &app,
        "msg_u2",
        &json!({"type": "user.deleted", "data": {"id": user, "deleted": true, "object": "user"}}),
    )
    .await)
    .await;
    assert_error(
        app.backend(Method::GET, &format!("/backend/v1/users/{user}"), None)
            .await,
        404,
        "not_found",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redeliveries_change_nothing() {
    let app = spawn_app_with(TestDb::Sqlite, incoming_options()).await;
    let user = "user_2redeliver";
    post_clerk(&app, "msg_a", &user_event("user.created", user, "First")).await;
    post_clerk(&app, "msg_b", &user_event("user.updated", user, "Second")).await;
    // msg_a again (same id, same body, freshly timestamped): 200, and the name stays "Second".
    let again = post_clerk(&app, "msg_a", &user_event("user.created", user, "First")).await;
    assert_eq!(again.status(), 200);
    assert_eq!(again.json::<Value>().await.unwrap(), json!({"applied": false}));
    let synced: Value = app
        .backend(Method::GET, &format!("/backend/v1/users/{user}"), None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(synced["first_name"], "Second");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_signatures_and_unusable_payloads_change_nothing() {
    let app = spawn_app_with(TestDb::Sqlite, incoming_options()).await;
    let secret = WebhookSecret::parse(CLERK_WEBHOOK_SECRET).unwrap();
    let body = user_event("user.created", "user_2attack", "Mallory").to_string();
    let now = gatehouse::clock::now_secs();
    let good = secret.sign("msg_1", now, body.as_bytes());
    let other = WebhookSecret::parse(&WebhookSecret::generate())
        .unwrap()
        .sign("msg_1", now, body.as_bytes());
    let tampered = body.replace("Mallory", "Trudy");
    let cases: Vec<(&str, String, String, String)> = vec![
        ("no signature", now.to_string(), String::new(), body.clone()),
        ("another secret", now.to_string(), other.clone(), body.clone()),
        ("tampered body", now.to_string(), good.clone(), tampered),
        (
            "old timestamp",
            (now - 310).to_string(),
            secret.sign("msg_1", now - 310, body.as_bytes()),
            body.clone(),
        ),
        (
            "future timestamp",
            (now + 310).to_string(),
            secret.sign("msg_1", now + 310, body.as_bytes()),
            body.clone(),
        ),
        ("timestamp not a number", "soon".into(), good.clone(), body.clone()),
    ];
    for (name, timestamp, signature, body) in cases {
        let response = send_raw(&app, "msg_1", &timestamp, &signature, body).await;
        assert_eq!(response.status(), 400, "{name}");
        assert_eq!(
            response.json::<Value>().await.unwrap()["error"],
            "invalid_signature",
            "{name}"
        );
    }
    let missing_id = reqwest::Client::new()
        .post(app.url("/api/webhooks/clerk"))
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_error(missing_id, 400, "invalid_signature").await;
    assert_eq!(
        app.count("SELECT COUNT(*) FROM users WHERE id = $1", "user_2attack")
            .await,
        0
    );

    // Rotation: several signatures, any valid one passes.
    let rotated = format!("{other} {good}");
    assert_eq!(
        send_raw(&app, "msg_1", &now.to_string(), &rotated, body).await.status(),
        200
    );
    assert_eq!(
        app.count("SELECT COUNT(*) FROM users WHERE id = $1", "user_2attack")
            .await,
        1
    );

    // Verified but unusable: 400 for the wrong shape, 409 for a user not here yet; nothing half-applied.
    let malformed = json!({"type": "user.created", "data": {"first_name": "no id"}});
    assert_error(post_clerk(&app, "msg_bad", &malformed).await, 400, "bad_request").await;
    let early = membership_event(
        "organizationMembership.created",
        "org_2early",
        "user_2notyet",
        "org:member",
    );
    assert_error(post_clerk(&app, "msg_early", &early).await, 409, "conflict").await;
    assert_eq!(
        app.count("SELECT COUNT(*) FROM organizations WHERE id = $1", "org_2early")
            .await,
        0
    );
    // The same message can be applied once its user arrives (it was not recorded as received).
    post_clerk(&app, "msg_u", &user_event("user.created", "user_2notyet", "Late")).await;
    assert_eq!(post_clerk(&app, "msg_early", &early).await.status(), 200);
    assert_eq!(
        app.count("SELECT COUNT(*) FROM organizations WHERE id = $1", "org_2early")
            .await,
        1
    );
}

/// A receiver started by the test: records every request, answers 500 while `failing`.
struct Receiver {
    url: String,
    received: Arc<Mutex<Vec<(actix_web::http::header::HeaderMap, String)>>>,
    failing: Arc<AtomicBool>,
}

async fn start_receiver() -> Receiver {
    let received = Arc::new(Mutex::new(Vec::new()));
    let failing = Arc::new(AtomicBool::new(false));
    let (r, f) = (received.clone(), failing.clone());
    let server = HttpServer::new(move || {
        let (r, f) = (r.clone(), f.clone());
        App::new().default_service(web::to(move |req: HttpRequest, body: String| {
            let (r, f) = (r.clone(), f.clone());
            async move {
                if f.load(Ordering::SeqCst) {
                    return HttpResponse::InternalServerError().finish();
                }
                r.lock().unwrap().push((req.headers().clone(), body));
                HttpResponse::NoContent().finish()
            }
        }))
    })
    .workers(1)
    .bind("127.0.0.1:0")
    .unwrap();
    let port = server.addrs()[0].port();
    tokio::spawn(server.run());
    Receiver {
        url: format!("http://127.0.0.1:{port}/hooks"),
        received,
        failing,
    }
}

impl Receiver {
    fn count(&self) -> usize {
        self.received.lock().unwrap().len()
    }

    async fn wait_for(&self, n: usize, within: Duration) {
        eventually(within, &format!("{n} deliveries"), || async {
            (self.count() >= n).then_some(())
        })
        .await;
    }
}

async fn subscribe(app: &TestApp, url: &str, events: Value) -> (String, String) {
    let response = app
        .backend(
            Method::POST,
            "/backend/v1/webhook_endpoints",
            Some(&json!({"url": url, "events": events})),
        )
        .await;
    assert_eq!(response.status(), 201);
    let body: Value = response.json().await.unwrap();
    (
        body["id"].as_str().unwrap().to_owned(),
        body["secret"].as_str().unwrap().to_owned(),
    )
}

fn retry_options(base_ms: &str) -> TestOptions {
    TestOptions {
        vars: vec![("RATE_LIMIT", "off".into()), ("WEBHOOK_RETRY_BASE_MS", base_ms.into())],
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_are_delivered_signed_and_filtered() {
    let receiver = start_receiver().await;
    let app = spawn_app_with(TestDb::Sqlite, retry_options("100")).await;
    let (endpoint, secret) = subscribe(&app, &receiver.url, json!(["item.created"])).await;
    let list: Value = app
        .backend(Method::GET, "/backend/v1/webhook_endpoints", None)
        .await
        .json()
        .await
        .unwrap();
    assert!(
        list["data"][0].get("secret").is_none(),
        "the secret is shown once, at creation"
    );
    assert_error(
        app.backend(
            Method::POST,
            "/backend/v1/webhook_endpoints",
            Some(&json!({"url": receiver.url, "events": ["nope"]})),
        )
        .await,
        422,
        "validation_failed",
    )
    .await;

    let ada = app.new_member().await; // user.created and session.created: not subscribed
    let item: Value = app
        .send_bearer(
            Method::POST,
            "/api/items",
            &ada.signed.jwt,
            Some(&json!({"name": "hooked"})),
        )
        .await
        .json()
        .await
        .unwrap();
    receiver.wait_for(1, Duration::from_secs(10)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(receiver.count(), 1, "only the subscribed type");
    let (headers, body) = receiver.received.lock().unwrap()[0].clone();
    let header = |name: &str| headers.get(name).unwrap().to_str().unwrap().to_owned();
    WebhookSecret::parse(&secret)
        .unwrap()
        .verify(
            &header("webhook-id"),
            &header("webhook-timestamp"),
            &header("webhook-signature"),
            body.as_bytes(),
            gatehouse::clock::now_secs(),
        )
        .expect("a verifiable Standard Webhooks signature");
    let event: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(event["type"], "item.created");
    assert_eq!(event["object"], "event");
    assert_eq!(event["id"], header("webhook-id").as_str());
    assert!(event["id"].as_str().unwrap().starts_with("msg_"));
    assert_eq!(event["data"]["id"], item["id"]);
    assert!(event["timestamp"].as_i64().unwrap() > 1_600_000_000_000);

    let attempts: Value = app
        .backend(
            Method::GET,
            &format!("/backend/v1/webhook_endpoints/{endpoint}/attempts"),
            None,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(attempts["data"][0]["status_code"], 204);
    assert_eq!(
        app.backend(
            Method::DELETE,
            &format!("/backend/v1/webhook_endpoints/{endpoint}"),
            None
        )
        .await
        .status(),
        204
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_that_was_down_gets_the_event_when_it_is_back() {
    let receiver = start_receiver().await;
    receiver.failing.store(true, Ordering::SeqCst);
    let app = spawn_app_with(TestDb::Sqlite, retry_options("50")).await;
    let (endpoint, _) = subscribe(&app, &receiver.url, json!([])).await;
    let ada = app.new_member().await;
    app.send_bearer(
        Method::POST,
        "/api/items",
        &ada.signed.jwt,
        Some(&json!({"name": "retry me"})),
    )
    .await;
    // Failures are recorded and the endpoint is marked failing after repeated errors.
    let attempts_path = format!("/backend/v1/webhook_endpoints/{endpoint}/attempts?limit=100");
    eventually(Duration::from_secs(15), "the endpoint marked failing", || async {
        let list: Value = app
            .backend(Method::GET, "/backend/v1/webhook_endpoints", None)
            .await
            .json()
            .await
            .unwrap();
        (list["data"][0]["status"] == "failing").then_some(())
    })
    .await;
    let attempts: Value = app
        .backend(Method::GET, &attempts_path, None)
        .await
        .json()
        .await
        .unwrap();
    assert!(
        attempts["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|a| a["status_code"] == 500)
    );

    receiver.failing.store(false, Ordering::SeqCst);
    // Three events were pending (user.created, session.created, item.created).
    receiver.wait_for(3, Duration::from_secs(20)).await;
    let types: Vec<String> = receiver
        .received
        .lock()
        .unwrap()
        .iter()
        .map(|(_, b)| {
            serde_json::from_str::<Value>(b).unwrap()["type"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert!(types.contains(&"item.created".to_owned()), "{types:?}");
    let list: Value = app
        .backend(Method::GET, "/backend/v1/webhook_endpoints", None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list["data"][0]["status"], "active", "a success clears the failing mark");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_between_attempts_still_delivers() {
    let receiver = start_receiver().await;
    receiver.failing.store(true, Ordering::SeqCst);
    let first = spawn_app_with(TestDb::Sqlite, retry_options("300")).await;
    let (endpoint, _) = subscribe(&first, &receiver.url, json!(["item.created"])).await;
    let ada = first.new_member().await;
    first
        .send_bearer(
            Method::POST,
            "/api/items",
            &ada.signed.jwt,
            Some(&json!({"name": "survives"})),
        )
        .await;
    let attempts_path = format!("/backend/v1/webhook_endpoints/{endpoint}/attempts");
    eventually(Duration::from_secs(10), "a first failed attempt", || async {
        let attempts: Value = first
            .backend(Method::GET, &attempts_path, None)
            .await
            .json()
            .await
            .unwrap();
        (!attempts["data"].as_array().unwrap().is_empty()).then_some(())
    })
    .await;
    // The server stops between attempts; another starts on the same database.
    first.stop().await;
    receiver.failing.store(false, Ordering::SeqCst);
    let shared = first.state.config.database_url.clone();
    let second = spawn_app_with(
        TestDb::Sqlite,
        TestOptions {
            vars: vec![
                ("RATE_LIMIT", "off".into()),
                ("WEBHOOK_RETRY_BASE_MS", "300".into()),
                ("DATABASE_URL", shared),
            ],
            ..Default::default()
        },
    )
    .await;
    receiver.wait_for(1, Duration::from_secs(20)).await;
    let (_, body) = receiver.received.lock().unwrap()[0].clone();
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["data"]["name"],
        "survives"
    );
    drop(second);
}

/// Two instances on one PostgreSQL database share the work: each event once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_deliver_each_event_once() {
    let Some(database) = TestDb::postgres() else { return };
    let receiver = start_receiver().await;
    let a = spawn_app_with(database, retry_options("100")).await;
    let shared = a.state.config.database_url.clone();
    let b = spawn_app_with(
        TestDb::Sqlite,
        TestOptions {
            vars: vec![("RATE_LIMIT", "off".into()), ("DATABASE_URL", shared)],
            ..Default::default()
        },
    )
    .await;
    assert_eq!(b.state.db.dialect, gatehouse::db::Dialect::Postgres);
    subscribe(&a, &receiver.url, json!(["item.created"])).await;
    let ada = a.new_member().await;
    for i in 0..30 {
        let app = if i % 2 == 0 { &a } else { &b };
        let created = app
            .send_bearer(
                Method::POST,
                "/api/items",
                &ada.signed.jwt,
                Some(&json!({"name": format!("item {i}")})),
            )
            .await;
        assert_eq!(created.status(), 201);
    }
    receiver.wait_for(30, Duration::from_secs(20)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let ids: Vec<String> = receiver
        .received
        .lock()
        .unwrap()
        .iter()
        .map(|(h, _)| h.get("webhook-id").unwrap().to_str().unwrap().to_owned())
        .collect();
    let unique: std::collections::BTreeSet<&String> = ids.iter().collect();
    assert_eq!(ids.len(), 30, "no event delivered twice");
    assert_eq!(unique.len(), 30);
}

/// In production a delivery never reaches this machine or its network, even through a
/// host name registered as harmless: the address is checked when the delivery connects.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn production_deliveries_refuse_internal_addresses_at_connect_time() {
    let receiver = start_receiver().await;
    let mut options = retry_options("60000");
    options.vars.push(("APP_ENV", "production".into()));
    let app = spawn_app_with(TestDb::Sqlite, options).await;
    // Registration refuses these URLs in production; rows written another way (an old
    // registration, a DNS answer that changed since) meet the check at connect time.
    let port = receiver
        .url
        .split(':')
        .nth(2)
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .to_owned();
    let by_name = format!("http://localhost:{port}/hooks");
    for (id, url) in [
        ("whep_byname", by_name.as_str()),
        ("whep_literal", receiver.url.as_str()),
    ] {
        sqlx::query(
            "INSERT INTO webhook_endpoints (id, url, events, secret, status, consecutive_failures, created_at, updated_at)
             VALUES ($1, $2, '', 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw', 'active', 0, 0, 0)",
        )
        .bind(id)
        .bind(url)
        .execute(&app.state.db.pool)
        .await
        .unwrap();
    }
    let refused = app
        .backend(
            Method::POST,
            "/backend/v1/webhook_endpoints",
            Some(&json!({"url": by_name})),
        )
        .await;
    assert_error(refused, 422, "validation_failed").await;

    let ada = app.sign_up(&crate::helpers::email()).await;
    let created = app
        .send_bearer(Method::POST, "/api/items", &ada.jwt, Some(&json!({"name": "x"})))
        .await;
    assert_eq!(created.status(), 201);
    for endpoint in ["whep_byname", "whep_literal"] {
        let path = format!("/backend/v1/webhook_endpoints/{endpoint}/attempts");
        let attempts: Value = eventually(Duration::from_secs(10), "a refused attempt", || async {
            let body: Value = app.backend(Method::GET, &path, None).await.json().await.unwrap();
            body["data"].as_array().is_some_and(|a| !a.is_empty()).then_some(body)
        })
        .await;
        let error = attempts["data"][0]["error"].as_str().unwrap_or_default();
        assert!(error.contains("internal address"), "{endpoint}: {attempts}");
        assert!(attempts["data"][0]["status_code"].is_null());
    }
    assert_eq!(receiver.count(), 0, "nothing reached the receiver");
}
