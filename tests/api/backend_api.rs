//! The Backend API: its guard, JWT templates and template tokens, custom session
//! claims, users and sessions.

use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use reqwest::Method;
use serde_json::{Value, json};

use crate::db_tests;
use crate::helpers::{SECRET_KEY, TestApp, TestDb, assert_error, jwt_of, spawn_app};
use crate::session_tokens::claims_of;

db_tests!(
    the_backend_api_needs_the_secret_key,
    templates_are_validated_when_saved,
    supabase_preset_tokens_verify_with_hs256,
    rs256_templates_render_organization_shortcodes,
    custom_signing_keys_sign_template_tokens,
    custom_session_claims_reach_session_tokens,
    backend_users_and_sessions,
);

const SUPABASE_SECRET: &str = "super-secret-jwt-token-with-at-least-32-characters-long";

async fn create_template(app: &TestApp, body: Value) -> reqwest::Response {
    app.backend(Method::POST, "/backend/v1/jwt_templates", Some(&body))
        .await
}

async fn the_backend_api_needs_the_secret_key(database: TestDb) {
    let app = spawn_app(database).await;
    let plain = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let url = app.url("/backend/v1/users");
    for auth in [
        None,
        Some("Bearer "),
        Some("Bearer sk_test_wrong"),
        Some(&format!("Bearer {SECRET_KEY}x")),
        Some(&format!("Basic {SECRET_KEY}")),
    ] {
        let mut request = plain.get(&url);
        if let Some(auth) = auth {
            request = request.header("authorization", auth);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.headers()["www-authenticate"], "Bearer", "{auth:?}");
        assert_error(response, 401, "unauthorized").await;
    }
    // A session token is not the secret key.
    let ada = app.sign_up(&crate::helpers::email()).await;
    assert_error(app.get_bearer("/backend/v1/users", &ada.jwt).await, 401, "unauthorized").await;
    assert_eq!(app.backend(Method::GET, "/backend/v1/users", None).await.status(), 200);
}

async fn templates_are_validated_when_saved(database: TestDb) {
    let app = spawn_app(database).await;
    let created = create_template(
        &app,
        json!({"name": "basic", "claims": {"email": "{{user.primary_email_address}}"}}),
    )
    .await;
    assert_eq!(created.status(), 201);
    let template: Value = created.json().await.unwrap();
    assert!(template["id"].as_str().unwrap().starts_with("jtmpl_"));
    assert_eq!(
        (template["lifetime"].as_i64(), template["allowed_clock_skew"].as_i64()),
        (Some(60), Some(5))
    );
    assert_eq!(template["signing_algorithm"], "RS256");
    assert_eq!(template["custom_signing_key"], false);
    assert_error(
        create_template(&app, json!({"name": "basic", "claims": {}})).await,
        409,
        "conflict",
    )
    .await;

    let bad = [
        (json!({"name": "x", "claims": {"a": "{{user.id"}}), "claims"),
        (json!({"name": "x", "claims": {"sub": "someone"}}), "claims"),
        (json!({"name": "x", "claims": {"iss": "{{user.id}}"}}), "claims"),
        (json!({"name": "x", "claims": ["not an object"]}), "claims"),
        (json!({"name": "x", "claims": {}, "lifetime": 29}), "lifetime"),
        (
            json!({"name": "x", "claims": {}, "lifetime": 315_360_001_i64}),
            "lifetime",
        ),
        (
            json!({"name": "x", "claims": {}, "allowed_clock_skew": 301}),
            "allowed_clock_skew",
        ),
        (
            json!({"name": "x", "claims": {}, "signing_algorithm": "HS256"}),
            "signing_key",
        ),
        (
            json!({"name": "x", "claims": {}, "signing_algorithm": "HS256", "signing_key": "short"}),
            "signing_key",
        ),
        (
            json!({"name": "x", "claims": {}, "signing_algorithm": "none"}),
            "signing_algorithm",
        ),
        (
            json!({"name": "x", "claims": {}, "signing_key": SUPABASE_SECRET}),
            "signing_key",
        ),
        (json!({"name": "has space", "claims": {}}), "name"),
        (json!({"claims": {}}), "name"),
    ];
    for (body, field) in bad {
        let error = assert_error(create_template(&app, body.clone()).await, 422, "validation_failed").await;
        assert!(error["fields"][field].is_string(), "{body} → {error}");
    }

    let id = template["id"].as_str().unwrap();
    let path = format!("/backend/v1/jwt_templates/{id}");
    let patched = app
        .backend(Method::PATCH, &path, Some(&json!({"lifetime": 3600})))
        .await;
    assert_eq!(patched.json::<Value>().await.unwrap()["lifetime"], 3600);
    let invalid = app
        .backend(Method::PATCH, &path, Some(&json!({"claims": {"exp": 1}})))
        .await;
    assert_error(invalid, 422, "validation_failed").await;
    let kept: Value = app.backend(Method::GET, &path, None).await.json().await.unwrap();
    assert_eq!(kept["claims"], json!({"email": "{{user.primary_email_address}}"}));
    let list: Value = app
        .backend(Method::GET, "/backend/v1/jwt_templates", None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list["data"].as_array().unwrap().len(), 1);
    assert_eq!(app.backend(Method::DELETE, &path, None).await.status(), 204);
    assert_error(app.backend(Method::GET, &path, None).await, 404, "not_found").await;
}

async fn supabase_preset_tokens_verify_with_hs256(database: TestDb) {
    let app = spawn_app(database).await;
    let preset = json!({
        "name": "supabase",
        "claims": {"aud": "authenticated", "role": "authenticated", "email": "{{user.primary_email_address}}"},
        "signing_algorithm": "HS256",
        "signing_key": SUPABASE_SECRET,
    });
    let created: Value = create_template(&app, preset).await.json().await.unwrap();
    assert_eq!(created["custom_signing_key"], true);
    assert!(created.get("signing_key").is_none(), "the secret is never returned");

    let ada = app.new_member().await;
    let response = app
        .send_bearer(Method::POST, "/api/tokens/supabase", &ada.signed.jwt, None)
        .await;
    assert_eq!(response.status(), 200);
    let jwt = response.json::<Value>().await.unwrap()["jwt"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut validation = Validation::new(Algorithm::HS256);
    validation.set_audience(&["authenticated"]);
    let claims =
        jsonwebtoken::decode::<Value>(&jwt, &DecodingKey::from_secret(SUPABASE_SECRET.as_bytes()), &validation)
            .expect("verifies with the Supabase secret")
            .claims;
    assert_eq!(claims["sub"], ada.signed.user_id.as_str());
    assert_eq!(claims["role"], "authenticated");
    assert_eq!(claims["email"], ada.email.as_str());
    assert_eq!(claims["iss"], "http://gatehouse.test");
    assert_eq!(claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(), 60);
    assert_eq!(claims["iat"].as_i64().unwrap() - claims["nbf"].as_i64().unwrap(), 5);

    // A template token is never a session token.
    assert_error(app.get_bearer("/api/me", &jwt).await, 401, "unauthorized").await;
    // The client endpoint gives the same kind of token, and does not touch __session.
    let client = ada
        .client
        .post(app.url(&format!(
            "/v1/client/sessions/{}/tokens/supabase",
            ada.signed.session_id
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(client.status(), 200);
    assert!(client.headers().get("set-cookie").is_none());
    let client_jwt = client.json::<Value>().await.unwrap()["jwt"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(claims_of(&client_jwt)["email"], ada.email.as_str());
    assert_error(
        app.send_bearer(Method::POST, "/api/tokens/nope", &ada.signed.jwt, None)
            .await,
        404,
        "not_found",
    )
    .await;
}

async fn rs256_templates_render_organization_shortcodes(database: TestDb) {
    let app = spawn_app(database).await;
    let template = json!({"name": "hasura", "lifetime": 300, "claims": {
        "https://hasura.io/jwt/claims": {"x-hasura-org-id": "{{org.id}}", "x-hasura-role": "{{org.role || 'user'}}"},
        "org": "{{org.slug}}", "meta": "{{user.public_metadata}}", "greeting": "hi {{user.first_name || 'there'}}"
    }});
    assert_eq!(create_template(&app, template).await.status(), 201);
    let ada = app.new_member().await;
    let personal = app
        .send_bearer(Method::POST, "/api/tokens/hasura", &ada.signed.jwt, None)
        .await
        .json::<Value>()
        .await
        .unwrap();
    let claims = claims_of(personal["jwt"].as_str().unwrap());
    assert_eq!(claims["org"], Value::Null);
    assert_eq!(claims["https://hasura.io/jwt/claims"]["x-hasura-role"], "user");
    assert_eq!(claims["meta"], json!({}));
    assert_eq!(claims["greeting"], "hi there");

    let org_id = app.create_org(&ada.signed.jwt, "Acme").await;
    let org_jwt = app
        .switch_org_jwt(&ada.client, &ada.signed.session_id, Some(&org_id))
        .await;
    let token = app
        .send_bearer(Method::POST, "/api/tokens/hasura", &org_jwt, None)
        .await
        .json::<Value>()
        .await
        .unwrap();
    let token = token["jwt"].as_str().unwrap();
    // Signed with the instance key: it verifies with the JWKS, and carries the template category.
    let header = crate::session_tokens::header_of(token);
    assert_eq!(header["cat"], "cl_B7d4PD222AAA");
    assert_eq!(header["kid"], app.state.keys.signing().kid.as_str());
    let jwks: jsonwebtoken::jwk::JwkSet = app
        .client
        .get(app.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let key = DecodingKey::from_jwk(jwks.find(header["kid"].as_str().unwrap()).unwrap()).unwrap();
    let claims = jsonwebtoken::decode::<Value>(token, &key, &Validation::new(Algorithm::RS256))
        .unwrap()
        .claims;
    assert_eq!(claims["org"], "acme");
    assert_eq!(
        claims["https://hasura.io/jwt/claims"]["x-hasura-org-id"],
        org_id.as_str()
    );
    assert_eq!(claims["https://hasura.io/jwt/claims"]["x-hasura-role"], "org:admin");
    assert_eq!(claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(), 300);
}

/// Clerk's `custom_signing_key`: an HS256 secret or an RS256 PEM of the template's own.
async fn custom_signing_keys_sign_template_tokens(database: TestDb) {
    let app = spawn_app(database).await;
    let pem = gatehouse::auth::keys::generate_pem().unwrap();
    let created = create_template(
        &app,
        json!({"name": "supabase-rs", "claims": {"aud": "authenticated", "role": "authenticated"},
               "signing_algorithm": "RS256", "custom_signing_key": true, "signing_key": pem}),
    )
    .await;
    assert_eq!(created.status(), 201);
    let template: Value = created.json().await.unwrap();
    assert_eq!(template["custom_signing_key"], true);
    assert!(template.get("signing_key").is_none(), "the key is never returned");
    let hs = json!({"name": "supabase-hs", "claims": {"aud": "authenticated"}, "signing_algorithm": "HS256",
                    "custom_signing_key": true, "signing_key": SUPABASE_SECRET});
    assert_eq!(create_template(&app, hs).await.status(), 201);

    let ada = app.new_member().await;
    let jwt = jwt_of(
        app.send_bearer(Method::POST, "/api/tokens/supabase-rs", &ada.signed.jwt, None)
            .await,
    )
    .await;
    // Signed by the template's own key, named by its thumbprint; the instance keys do not verify it.
    let jwk = gatehouse::auth::keys::public_jwk(&pem).unwrap();
    let header = crate::session_tokens::header_of(&jwt);
    assert_eq!(header["alg"], "RS256");
    assert_eq!(header["kid"].as_str(), jwk.common.key_id.as_deref());
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_audience(&["authenticated"]);
    let claims = jsonwebtoken::decode::<Value>(&jwt, &DecodingKey::from_jwk(&jwk).unwrap(), &validation)
        .expect("verifies with the template's public key")
        .claims;
    assert_eq!(claims["sub"], ada.signed.user_id.as_str());
    let instance = gatehouse::auth::keys::public_jwk(crate::helpers::test_signing_key()).unwrap();
    assert!(jsonwebtoken::decode::<Value>(&jwt, &DecodingKey::from_jwk(&instance).unwrap(), &validation).is_err());

    let bad = [
        (
            json!({"name": "x", "claims": {}, "custom_signing_key": true}),
            "signing_key",
        ),
        (
            json!({"name": "x", "claims": {}, "custom_signing_key": true, "signing_key": "not a pem"}),
            "signing_key",
        ),
        (
            json!({"name": "x", "claims": {}, "custom_signing_key": false, "signing_key": SUPABASE_SECRET}),
            "signing_key",
        ),
        (
            json!({"name": "x", "claims": {}, "signing_algorithm": "HS256", "custom_signing_key": false}),
            "custom_signing_key",
        ),
        (
            json!({"name": "x", "claims": {}, "signing_algorithm": "HS256", "custom_signing_key": true, "signing_key": "short"}),
            "signing_key",
        ),
    ];
    for (body, field) in bad {
        let error = assert_error(create_template(&app, body.clone()).await, 422, "validation_failed").await;
        assert!(error["fields"][field].is_string(), "{body} → {error}");
    }

    // Back to the instance keys: the custom key is dropped, tokens verify with the JWKS again.
    let path = format!("/backend/v1/jwt_templates/{}", template["id"].as_str().unwrap());
    let patched = app
        .backend(Method::PATCH, &path, Some(&json!({"custom_signing_key": false})))
        .await;
    assert_eq!(patched.status(), 200);
    assert_eq!(patched.json::<Value>().await.unwrap()["custom_signing_key"], false);
    let jwt = jwt_of(
        app.send_bearer(Method::POST, "/api/tokens/supabase-rs", &ada.signed.jwt, None)
            .await,
    )
    .await;
    assert_eq!(
        crate::session_tokens::header_of(&jwt)["kid"],
        app.state.keys.signing().kid.as_str()
    );
}

async fn custom_session_claims_reach_session_tokens(database: TestDb) {
    let app = spawn_app(database).await;
    let ada = app.new_member().await;
    let template =
        json!({"claims": {"metadata": "{{user.public_metadata}}", "email": "{{user.primary_email_address}}"}});
    let put = app
        .backend(Method::PUT, "/backend/v1/session_token_template", Some(&template))
        .await;
    assert_eq!(put.status(), 200);
    let patch = app
        .backend(
            Method::PATCH,
            &format!("/backend/v1/users/{}", ada.signed.user_id),
            Some(&json!({"public_metadata": {"plan": "pro"}})),
        )
        .await;
    assert_eq!(
        patch.json::<Value>().await.unwrap()["public_metadata"],
        json!({"plan": "pro"})
    );

    let refreshed: Value = app
        .refresh(&ada.client, &ada.signed.session_id)
        .await
        .json()
        .await
        .unwrap();
    let jwt = refreshed["jwt"].as_str().unwrap();
    assert_eq!(claims_of(jwt)["metadata"], json!({"plan": "pro"}));
    assert_eq!(claims_of(jwt)["email"], ada.email.as_str());
    let me: Value = app.get_bearer("/api/me", jwt).await.json().await.unwrap();
    assert_eq!(me["session_claims"]["metadata"]["plan"], "pro");

    // Refused at save time, the old template kept: too large, reserved, bad syntax.
    let large = json!({"claims": {"blob": "x".repeat(1300)}});
    for bad in [
        large,
        json!({"claims": {"sid": "x"}}),
        json!({"claims": {"a": "{{user.id"}}),
    ] {
        let response = app
            .backend(Method::PUT, "/backend/v1/session_token_template", Some(&bad))
            .await;
        assert_error(response, 422, "validation_failed").await;
    }
    let kept: Value = app
        .backend(Method::GET, "/backend/v1/session_token_template", None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(kept, template);

    // User data that later pushes the claims past 1.2 KB: the token comes without them.
    let big = json!({"public_metadata": {"notes": "n".repeat(2000)}});
    app.backend(
        Method::PATCH,
        &format!("/backend/v1/users/{}", ada.signed.user_id),
        Some(&big),
    )
    .await;
    let refreshed: Value = app
        .refresh(&ada.client, &ada.signed.session_id)
        .await
        .json()
        .await
        .unwrap();
    let jwt = refreshed["jwt"].as_str().unwrap();
    assert!(claims_of(jwt).get("metadata").is_none() && claims_of(jwt).get("email").is_none());
    assert!(jwt.len() < 4096);
    assert_eq!(app.get_bearer("/api/me", jwt).await.status(), 200);
}

async fn backend_users_and_sessions(database: TestDb) {
    let app = spawn_app(database).await;
    let ada = app.new_member().await;
    let bob = app.new_member().await;
    let users: Value = app
        .backend(Method::GET, "/backend/v1/users?limit=1", None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(users["data"][0]["id"], bob.signed.user_id.as_str(), "newest first");
    assert!(users["next_cursor"].is_string());
    let user: Value = app
        .backend(Method::GET, &format!("/backend/v1/users/{}", ada.signed.user_id), None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(user["public_metadata"], json!({}));
    assert_error(
        app.backend(Method::GET, "/backend/v1/users/user_nobody", None).await,
        404,
        "not_found",
    )
    .await;
    let bad = app
        .backend(
            Method::PATCH,
            &format!("/backend/v1/users/{}", ada.signed.user_id),
            Some(&json!({"public_metadata": [1]})),
        )
        .await;
    assert_error(bad, 422, "validation_failed").await;

    let sessions: Value = app
        .backend(
            Method::GET,
            &format!("/backend/v1/sessions?user_id={}", ada.signed.user_id),
            None,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(sessions["data"].as_array().unwrap().len(), 1);
    assert_eq!(sessions["data"][0]["id"], ada.signed.session_id.as_str());
    let revoked = app
        .backend(
            Method::POST,
            &format!("/backend/v1/sessions/{}/revoke", ada.signed.session_id),
            None,
        )
        .await;
    assert_eq!(revoked.json::<Value>().await.unwrap()["status"], "revoked");
    assert_error(app.get_bearer("/api/me", &ada.signed.jwt).await, 401, "unauthorized").await;
    assert_eq!(app.get_bearer("/api/me", &bob.signed.jwt).await.status(), 200);
    assert_error(
        app.backend(Method::POST, "/backend/v1/sessions/sess_nope/revoke", None)
            .await,
        404,
        "not_found",
    )
    .await;
}
