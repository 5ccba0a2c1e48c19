//! Rate limits: per user when signed in, per IP when signed out, with headers.

use crate::backend_tests;
use crate::helpers::{Backend, TestOptions, assert_error, email, spawn_app_with};

backend_tests!(requests_over_the_quota_are_429_with_headers);

async fn requests_over_the_quota_are_429_with_headers(backend: Backend) {
    let app = spawn_app_with(
        backend,
        TestOptions {
            vars: vec![("RATE_LIMIT", "4/60s".into())],
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
