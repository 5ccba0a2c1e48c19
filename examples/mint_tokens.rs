//! Mints COUNT distinct session tokens for one session with the instance's signing key
//! (read as the server reads it: `SIGNING_KEY`, or the development key in `DATA_DIR`),
//! one per line, for `scripts/load-tokens`.
//! `DATA_DIR=… ISSUER=… cargo run --release --example mint_tokens -- USER_ID SESSION_ID COUNT`

use std::io::Write;
use std::sync::Arc;

use gatehouse::auth::keys::KeyRing;
use gatehouse::auth::tokens::{SessionTokenInput, SessionTokenIssuer};
use gatehouse::config::Config;

fn main() {
    let mut args = std::env::args().skip(1);
    let (user_id, session_id, count) = match (args.next(), args.next(), args.next()) {
        (Some(user), Some(session), Some(count)) => (user, session, count.parse::<usize>().expect("COUNT is a number")),
        _ => {
            eprintln!("usage: mint_tokens USER_ID SESSION_ID COUNT");
            std::process::exit(2);
        }
    };
    let config = Config::from_env().expect("configuration");
    let keys = Arc::new(KeyRing::load(&config).expect("signing keys"));
    let issuer = SessionTokenIssuer::new(
        keys,
        config.issuer.clone(),
        config.session_token_lifetime.as_secs() as i64,
    );
    let now = gatehouse::clock::now_ms();
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    for _ in 0..count {
        let input = SessionTokenInput {
            user_id: &user_id,
            session_id: &session_id,
            azp: None,
            last_verified_at_ms: now,
            last_second_factor_at_ms: None,
            org: None,
            fea: None,
            act: None,
            custom: Default::default(),
        };
        // Each token has its own `jti`: COUNT distinct tokens.
        writeln!(out, "{}", issuer.issue(input, now).expect("a token")).expect("stdout");
    }
}
