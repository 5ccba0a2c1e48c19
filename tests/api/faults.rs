//! Faults answered as faults: while PostgreSQL is away the app answers 503
//! `service_unavailable` with `Retry-After` (never 500), `/readyz` says 503, routes that
//! need no database keep working, and the app recovers by itself when it comes back.
//!
//! The outage is made by a TCP proxy between the app and PostgreSQL that the test cuts
//! (every open connection dropped, new ones closed at once) and restores; and by
//! terminating the app's backends from another connection, as a restart does.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use crate::helpers::{TestApp, TestDb, TestOptions, address_of, assert_error, eventually, spawn_app_with};

/// Forwards loopback connections to `target` until cut.
struct FaultProxy {
    address: String,
    up: Arc<AtomicBool>,
    /// Bumped on every cut: open connections watch it and drop.
    cuts: watch::Sender<u64>,
}

impl FaultProxy {
    async fn start(target: String) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let up = Arc::new(AtomicBool::new(true));
        let (cuts, _) = watch::channel(0u64);
        let (flag, signal) = (up.clone(), cuts.clone());
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if !flag.load(Ordering::SeqCst) {
                    continue; // dropped: the client sees the connection closed
                }
                let target = target.clone();
                let mut cut = signal.subscribe();
                tokio::spawn(async move {
                    let Ok(mut outbound) = TcpStream::connect(&target).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = cut.changed() => {}
                    }
                });
            }
        });
        Self { address, up, cuts }
    }

    fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        self.cuts.send_modify(|n| *n += 1);
    }

    fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

async fn create_item(app: &TestApp, jwt: &str, key: &str) -> reqwest::Response {
    reqwest::Client::new()
        .post(app.url("/api/items"))
        .bearer_auth(jwt)
        .header("idempotency-key", key)
        .json(&json!({"name": key}))
        .send()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_outage_is_503_and_the_app_recovers_by_itself() {
    let Some(TestDb::Postgres { admin_url }) = TestDb::postgres() else {
        return;
    };
    let proxy = FaultProxy::start(address_of(&admin_url)).await;
    let options = TestOptions {
        database_address: Some(proxy.address.clone()),
        ..Default::default()
    };
    let app = spawn_app_with(TestDb::Postgres { admin_url }, options).await;
    let ada = app.new_member().await;
    assert_eq!(create_item(&app, &ada.signed.jwt, "before").await.status(), 201);

    proxy.cut();
    let response = create_item(&app, &ada.signed.jwt, "during").await;
    let retry_after = response.headers().get("retry-after").cloned();
    assert_error(response, 503, "service_unavailable").await;
    assert!(retry_after.is_some(), "a 503 says when to retry");
    let ready = reqwest::get(app.url("/readyz")).await.unwrap();
    assert_error(ready, 503, "service_unavailable").await;
    let refresh = app.refresh(&ada.client, &ada.signed.session_id).await;
    assert_error(refresh, 503, "service_unavailable").await;
    // What needs no database keeps working: the token is verified in memory.
    assert_eq!(app.get_bearer("/api/me", &ada.signed.jwt).await.status(), 200);
    assert_eq!(reqwest::get(app.url("/healthz")).await.unwrap().status(), 200);

    proxy.restore();
    let back = Instant::now();
    eventually(Duration::from_secs(5), "the app to serve writes again", || async {
        (create_item(&app, &ada.signed.jwt, "after").await.status() == 201).then_some(())
    })
    .await;
    eprintln!("recovered {:?} after the database came back", back.elapsed());
    assert_eq!(reqwest::get(app.url("/readyz")).await.unwrap().status(), 200);
    // The write refused during the outage was not half-done: only "before" and "after" exist.
    let items: Value = app
        .get_bearer("/api/items", &ada.signed.jwt)
        .await
        .json()
        .await
        .unwrap();
    let names: Vec<&str> = items["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["after", "before"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn terminated_backends_are_503_never_500() {
    let Some(database) = TestDb::postgres() else { return };
    let TestDb::Postgres { admin_url } = &database else {
        unreachable!()
    };
    let admin_url = admin_url.clone();
    let app = spawn_app_with(database, TestOptions::default()).await;
    let ada = app.new_member().await;
    let database: String = sqlx::query_scalar("SELECT current_database()::text")
        .fetch_one(&app.state.db.pool)
        .await
        .unwrap();
    let admin = sqlx::AnyPool::connect(&admin_url).await.unwrap();

    // Writers with idempotency keys, while every backend of the app is terminated
    // (as a PostgreSQL restart does) a few times.
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let (url, jwt) = (app.url("/api/items"), ada.signed.jwt.clone());
            tokio::spawn(async move {
                let http = reqwest::Client::new();
                let mut answers = Vec::new();
                for i in 0..40 {
                    let key = format!("w{w}-{i}");
                    let response = http
                        .post(&url)
                        .bearer_auth(&jwt)
                        .header("idempotency-key", &key)
                        .json(&json!({"name": key}))
                        .send()
                        .await
                        .unwrap();
                    answers.push(response.status().as_u16());
                }
                answers
            })
        })
        .collect();
    for _ in 0..5 {
        sqlx::query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
        )
        .bind(&database)
        .execute(&admin)
        .await
        .unwrap();
        tokio::time::sleep(Duration::from_millis(40)).await;
    }
    let mut by_status = std::collections::BTreeMap::new();
    for writer in writers {
        for status in writer.await.unwrap() {
            *by_status.entry(status).or_insert(0) += 1;
        }
    }
    eprintln!("answers by status: {by_status:?}");
    assert!(
        by_status.keys().all(|s| *s == 201 || *s == 503),
        "only 201 or 503 while backends are terminated: {by_status:?}"
    );
    // And afterwards everything works again.
    eventually(Duration::from_secs(5), "writes after the terminations", || async {
        (create_item(&app, &ada.signed.jwt, "after").await.status() == 201).then_some(())
    })
    .await;
    let response = app.send_bearer(Method::GET, "/readyz", &ada.signed.jwt, None).await;
    assert_eq!(response.status(), 200);
}
