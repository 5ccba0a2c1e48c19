//! Session tokens verify with the published JWKS and carry Clerk v2 claims.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::Value;

use crate::db_tests;
use crate::helpers::{TestDb, email, spawn_app};

db_tests!(tokens_verify_with_jwks_and_carry_v2_claims);

fn segment(jwt: &str, index: usize) -> Value {
    let part = jwt.split('.').nth(index).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}

/// The payload of a token, unverified (for assertions on claims).
pub fn claims_of(jwt: &str) -> Value {
    segment(jwt, 1)
}

async fn tokens_verify_with_jwks_and_carry_v2_claims(database: TestDb) {
    let app = spawn_app(database).await;
    let signed = app.sign_up(&email()).await;

    let header = segment(&signed.jwt, 0);
    assert_eq!(header["alg"], "RS256");
    assert_eq!(header["typ"], "JWT");
    assert_eq!(
        header["cat"], "cl_B7d4PD111AAA",
        "session tokens carry the session category"
    );
    let kid = header["kid"].as_str().unwrap();

    let jwks: JwkSet = app
        .client
        .get(app.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let jwk = jwks.find(kid).expect("the signing key is published");
    let key = DecodingKey::from_jwk(jwk).unwrap();
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_issuer(&["http://gatehouse.test"]);
    validation.set_required_spec_claims(&["exp", "nbf", "iat", "iss", "sub"]);
    let claims = jsonwebtoken::decode::<Value>(&signed.jwt, &key, &validation)
        .expect("verifies with JWKS")
        .claims;

    assert_eq!(claims["sub"], signed.user_id.as_str());
    assert_eq!(claims["sid"], signed.session_id.as_str());
    assert_eq!(claims["v"], 2);
    assert_eq!(claims["sts"], "active");
    assert_eq!(claims["fva"], serde_json::json!([0, -1]));
    assert!(claims["jti"].as_str().is_some_and(|j| !j.is_empty()));
    assert_eq!(claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(), 60);
    assert!(claims["nbf"].as_i64().unwrap() <= claims["iat"].as_i64().unwrap());
    assert!(claims.get("azp").is_none(), "no Origin, no azp");
    assert!(claims.get("o").is_none(), "no active organization, no `o`");
}

/// The header of a token, unverified.
pub fn header_of(jwt: &str) -> Value {
    segment(jwt, 0)
}
