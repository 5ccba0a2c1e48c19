//! Issuing and verifying a session token (`cargo bench --bench tokens`).
//! Reports absolute times; compare within one run: issuing with the kept, parsed key
//! against parsing the key for each signature, and issuing against verifying.

use std::hint::black_box;
use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use gatehouse::auth::keys::{KeyRing, generate_pem};
use gatehouse::auth::tokens::{
    SESSION_TOKEN_CATEGORY, SessionTokenInput, SessionTokenIssuer, SessionTokenVerifier, sign_compact,
};
use jsonwebtoken::Algorithm;

fn tokens(c: &mut Criterion) {
    let keys = Arc::new(KeyRing::from_pems(&("bench".into(), generate_pem().unwrap()), &[]).unwrap());
    let keys_for_baseline = keys.clone();
    let issuer = SessionTokenIssuer::new(keys.clone(), "http://127.0.0.1:8080".into(), 60);
    let verifier = SessionTokenVerifier::new(
        keys,
        "http://127.0.0.1:8080".into(),
        vec!["http://localhost:8080".into()],
    );
    let input = || SessionTokenInput {
        user_id: "user_01jd3m5x0e8k2q9v7w4h6r1t3y",
        session_id: "sess_01jd3m5x0e8k2q9v7w4h6r1t3y",
        azp: Some("http://localhost:8080"),
        last_verified_at_ms: gatehouse::clock::now_ms(),
        last_second_factor_at_ms: None,
        org: None,
        fea: None,
        act: None,
        custom: Default::default(),
    };

    c.bench_function("session_token/issue", |b| {
        b.iter(|| issuer.issue(black_box(input()), gatehouse::clock::now_ms()).unwrap())
    });
    // The way tokens were signed before the parsed key was kept: jsonwebtoken parses the
    // RSA key for every signature (a baseline in the same run).
    let signing = keys_for_baseline.signing();
    c.bench_function("session_token/issue_parsing_the_key_each_time", |b| {
        b.iter(|| {
            let claims = issuer.claims(black_box(input()), gatehouse::clock::now_ms());
            sign_compact(
                &signing.encoding,
                Algorithm::RS256,
                Some(&signing.kid),
                SESSION_TOKEN_CATEGORY,
                &claims,
            )
            .unwrap()
        })
    });
    let token = issuer.issue(input(), gatehouse::clock::now_ms()).unwrap();
    c.bench_function("session_token/verify", |b| {
        b.iter(|| {
            verifier
                .verify(black_box(&token), gatehouse::clock::now_secs())
                .unwrap()
        })
    });
}

criterion_group!(benches, tokens);
criterion_main!(benches);
