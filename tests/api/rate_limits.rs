//! Rate limits: per user when signed in, per IP when signed out, with headers.

use crate::db_tests;
use crate::helpers::{PASSWORD, TestDb, TestOptions, assert_error, email, spawn_app_with};

db_tests!(requests_over_the_quota_are_429_with_headers);

async fn requests_over_the_quota_are_429_with_headers(database: TestDb) {
    let app = spawn_app_with(
        database,
        TestOptions {
            vars: vec![("RATE_LIMIT", "4/60s".into())],
            ..Default::default()
        },
    )
    .await;
    // Sign-up is one signed-out request from this IP.
    let ada = app.sign_up(&email()).await;
    for expected_remaining in [3, 2, 1] {
        let response = app.get_bearer("/api/me", &ada.jwt).await;
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["ratelimit-limit"], "4");
        assert_eq!(
            response.headers()["ratelimit-remaining"],
            expected_remaining.to_string().as_str()
        );
    }
    app.get_bearer("/api/me", &ada.jwt).await;
    let limited = app.get_bearer("/api/me", &ada.jwt).await;
    let retry_after: u64 = limited.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=15).contains(&retry_after), "{retry_after}");
    assert_eq!(limited.headers()["ratelimit-remaining"], "0");
    assert!(limited.headers().contains_key("ratelimit-reset"));
    assert_error(limited, 429, "rate_limited").await;

    // Probes are not counted; another user (signed up from the same IP) has a quota of their own.
    for _ in 0..10 {
        assert_eq!(app.client.get(app.url("/healthz")).send().await.unwrap().status(), 200);
    }
    let bob = app.sign_up_with(&crate::helpers::cookie_client(), &email()).await;
    assert_eq!(app.get_bearer("/api/me", &bob.jwt).await.status(), 200);
}

/// `TEST_REDIS_URL`, required in CI like `TEST_DATABASE_URL`.
fn redis_url() -> Option<String> {
    match std::env::var("TEST_REDIS_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var_os("CI").is_some() => panic!("TEST_REDIS_URL must be set in CI"),
        _ => {
            eprintln!("TEST_REDIS_URL is not set: skipping the Redis rate-limit test");
            None
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_quota_holds_across_two_instances() {
    let Some(redis) = redis_url() else { return };
    let prefix = unique_prefix();
    let options = || TestOptions {
        vars: vec![
            ("RATE_LIMIT", "5/60s".into()),
            ("REDIS_URL", redis.clone()),
            ("REDIS_KEY_PREFIX", prefix.clone()),
        ],
        ..Default::default()
    };
    let a = spawn_app_with(TestDb::Sqlite, options()).await;
    let b = spawn_app_with(TestDb::Sqlite, options()).await;
    // One user, one token, valid on both instances (same key and issuer).
    let ada = a.sign_up(&email()).await;
    let mut statuses = Vec::new();
    for i in 0..6 {
        let app = if i % 2 == 0 { &a } else { &b };
        statuses.push(app.get_bearer("/api/me", &ada.jwt).await.status().as_u16());
    }
    assert_eq!(
        statuses,
        [200, 200, 200, 200, 200, 429],
        "five requests in all, whichever instance serves them"
    );
    let limited = b.get_bearer("/api/me", &ada.jwt).await;
    assert!(limited.headers().contains_key("retry-after"));
    assert_error(limited, 429, "rate_limited").await;
}

/// A Redis key prefix of this test's own: counts never leak between tests or runs.
fn unique_prefix() -> String {
    format!("{}:", gatehouse::ids::new_id(gatehouse::ids::IdKind::Client))
}

/// With `REDIS_URL` the failed-sign-in counts are shared: two replicas allow no more
/// guesses than one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_throttles_hold_across_two_instances() {
    let Some(redis) = redis_url() else { return };
    let prefix = unique_prefix();
    let options = || TestOptions {
        vars: vec![
            ("RATE_LIMIT", "off".into()),
            ("REDIS_URL", redis.clone()),
            ("REDIS_KEY_PREFIX", prefix.clone()),
        ],
        ..Default::default()
    };
    let a = spawn_app_with(TestDb::Sqlite, options()).await;
    let b = spawn_app_with(TestDb::Sqlite, options()).await;
    let address = email();
    a.sign_up(&address).await;
    for i in 0..5 {
        let app = if i % 2 == 0 { &a } else { &b };
        let response = app.sign_in_with(&app.client, &address, "wrong password").await;
        assert_error(response, 401, "unauthorized").await;
    }
    // The sixth attempt is refused on either instance, even with the right password.
    for app in [&a, &b] {
        let response = app.sign_in_with(&app.client, &address, PASSWORD).await;
        assert!(response.headers().contains_key("retry-after"));
        assert_error(response, 429, "rate_limited").await;
    }
    // A restarted instance still knows: the counts live in Redis.
    a.stop().await;
    let c = spawn_app_with(TestDb::Sqlite, options()).await;
    let response = c.sign_in_with(&c.client, &address, PASSWORD).await;
    assert_error(response, 429, "rate_limited").await;
}
