//! The baseline of `scripts/load-guard`: a bare actix-web JSON route, nothing else (no
//! middleware, no state), on the same actix-web version and worker count as the server.
//! `cargo run --release --example bare -- 127.0.0.1:18182 2`

use actix_web::{App, HttpResponse, HttpServer, web};

#[derive(serde::Serialize)]
struct Health {
    status: &'static str,
}

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let address = args.next().unwrap_or_else(|| "127.0.0.1:18182".to_owned());
    let workers: usize = args.next().and_then(|w| w.parse().ok()).unwrap_or(2);
    HttpServer::new(|| {
        App::new().route(
            "/healthz",
            web::get().to(|| async { HttpResponse::Ok().json(Health { status: "ok" }) }),
        )
    })
    .workers(workers)
    .bind(address)?
    .run()
    .await
}
