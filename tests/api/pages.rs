//! Pages, assets, and Clerk's handshake (a fresh token in place for pages).

use reqwest::header::{COOKIE, SET_COOKIE};
use serde_json::json;

use crate::db_tests;
use crate::helpers::{PASSWORD, TestDb, email, spawn_app};

db_tests!(
    pages_and_assets_are_served_without_external_loads,
    handshake_refreshes_pages_from_the_client_cookie
);

async fn pages_and_assets_are_served_without_external_loads(database: TestDb) {
    let app = spawn_app(database).await;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    for path in [
        "/",
        "/sign-in",
        "/sign-up?redirect_url=%2Faccount",
        "/reset-password?email=a%40b.c&code=123456",
    ] {
        let response = client.get(app.url(path)).send().await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
        let csp = response.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(
            csp.contains("default-src 'self'") && csp.contains("frame-ancestors 'none'"),
            "{csp}"
        );
        let html = response.text().await.unwrap();
        assert!(
            !html.contains("http://") && !html.contains("https://"),
            "{path} loads nothing external"
        );
    }
    for asset in ["gatehouse.css", "sign-in.js", "account.js", "reset-password.js"] {
        let response = client.get(app.url(&format!("/assets/{asset}"))).send().await.unwrap();
        assert_eq!(response.status(), 200, "{asset}");
        assert!(!response.text().await.unwrap().contains("https://"), "{asset}");
    }
    assert_eq!(
        client
            .get(app.url("/assets/%2e%2e%2fCargo.toml"))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    assert_eq!(
        client.get(app.url("/assets/nope.js")).send().await.unwrap().status(),
        404
    );
    // Signed out, the account page redirects to sign-in.
    let account = client.get(app.url("/account")).send().await.unwrap();
    assert_eq!(account.status(), 307);
}

/// The `__client` cookie value from a response.
fn client_cookie(response: &reqwest::Response) -> String {
    response
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap())
        .find(|c| c.starts_with("__client="))
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned()
}

async fn handshake_refreshes_pages_from_the_client_cookie(database: TestDb) {
    let app = spawn_app(database).await;
    let address = email();
    let up = app
        .post_json(
            &reqwest::Client::new(),
            "/v1/sign-up",
            &json!({"email": address, "password": PASSWORD}),
        )
        .await;
    let device = client_cookie(&up);
    let signed = crate::helpers::signed_in(up).await;
    let plain = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();

    // No __session (or a stale one) but a live __client: the page is served with a fresh token.
    for cookies in [device.clone(), format!("{device}; __session=stale.token.value")] {
        let page = plain
            .get(app.url("/account"))
            .header(COOKIE, &cookies)
            .send()
            .await
            .unwrap();
        assert_eq!(page.status(), 200, "{cookies}");
        let fresh = page
            .headers()
            .get_all(SET_COOKIE)
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .find(|c| c.starts_with("__session="))
            .expect("a fresh __session cookie");
        let jwt = fresh.trim_start_matches("__session=").split(';').next().unwrap();
        assert_eq!(crate::session_tokens::claims_of(jwt)["sid"], signed.session_id.as_str());
    }
    // API paths do not handshake: they answer 401.
    let api = plain
        .get(app.url("/api/me"))
        .header(COOKIE, &device)
        .send()
        .await
        .unwrap();
    assert_eq!(api.status(), 401);
    // Once the session is revoked, the device goes to sign-in.
    let revoke = app
        .send_bearer(
            reqwest::Method::POST,
            &format!("/api/me/sessions/{}/revoke", signed.session_id),
            &signed.jwt,
            None,
        )
        .await;
    assert_eq!(revoke.status(), 200);
    let page = plain
        .get(app.url("/account"))
        .header(COOKIE, &device)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 307);
}
