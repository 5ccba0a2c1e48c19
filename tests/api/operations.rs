//! Health, readiness, metrics, request ids, 404s, OpenAPI and Swagger UI.

use crate::db_tests;
use crate::helpers::{TestDb, assert_error, spawn_app};

db_tests!(
    health_readiness_and_metrics,
    request_ids_are_echoed_or_made,
    unknown_routes_are_json_404,
    openapi_and_swagger_ui_are_served
);

async fn health_readiness_and_metrics(database: TestDb) {
    let app = spawn_app(database).await;
    let health = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    assert_eq!(health.headers()["content-type"], "application/json");
    assert_eq!(health.json::<serde_json::Value>().await.unwrap()["status"], "ok");
    let ready = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200);

    let metrics = app.client.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(metrics.status(), 200);
    assert!(
        metrics.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let text = metrics.text().await.unwrap();
    assert!(
        text.contains(r#"http_requests_total{method="GET",route="/healthz",status="200"} 1"#),
        "{text}"
    );
    assert!(text.contains("http_request_duration_seconds_bucket"), "{text}");
}

async fn request_ids_are_echoed_or_made(database: TestDb) {
    let app = spawn_app(database).await;
    let given = app
        .client
        .get(app.url("/healthz"))
        .header("x-request-id", "abc-123")
        .send()
        .await
        .unwrap();
    assert_eq!(given.headers()["x-request-id"], "abc-123");
    let made = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert!(made.headers()["x-request-id"].to_str().unwrap().starts_with("req_"));
    // An id that could smuggle text into logs is replaced.
    let hostile = app
        .client
        .get(app.url("/healthz"))
        .header("x-request-id", "a b\"c")
        .send()
        .await
        .unwrap();
    assert!(hostile.headers()["x-request-id"].to_str().unwrap().starts_with("req_"));
    // Errors carry it too.
    let missing = app.client.get(app.url("/nope")).send().await.unwrap();
    assert!(missing.headers().contains_key("x-request-id"));
}

async fn unknown_routes_are_json_404(database: TestDb) {
    let app = spawn_app(database).await;
    let signed = app.sign_up(&crate::helpers::email()).await;
    assert_error(app.get_bearer("/does-not-exist", &signed.jwt).await, 404, "not_found").await;
    assert_error(
        app.get_bearer("/api/does-not-exist", &signed.jwt).await,
        404,
        "not_found",
    )
    .await;
    // A known public path with a method it does not serve.
    assert_error(
        app.client.delete(app.url("/healthz")).send().await.unwrap(),
        404,
        "not_found",
    )
    .await;
}

async fn openapi_and_swagger_ui_are_served(database: TestDb) {
    let app = spawn_app(database).await;
    let spec: serde_json::Value = app
        .client
        .get(app.url("/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(spec["openapi"].as_str().unwrap().starts_with("3."));
    assert!(spec["paths"]["/v1/sign-up"]["post"].is_object());
    assert_eq!(
        spec["components"]["securitySchemes"]["session_token"]["scheme"],
        "bearer"
    );

    let redirect = app.client.get(app.url("/swagger-ui")).send().await.unwrap();
    assert_eq!(redirect.status(), 308);
    assert_eq!(redirect.headers()["location"], "/swagger-ui/");
    let page = app.client.get(app.url("/swagger-ui/")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("swagger-ui"), "{html}");
    assert!(
        !html.contains("https://"),
        "Swagger UI must not load anything from the network: {html}"
    );
    let init = app
        .client
        .get(app.url("/swagger-ui/swagger-initializer.js"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(init.contains("/openapi.json"), "{init}");
    assert!(
        init.contains(r#""validatorUrl": "none""#) || init.contains(r#""validatorUrl":"none""#),
        "{init}"
    );
}
