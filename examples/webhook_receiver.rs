//! A webhook receiver for `scripts/bench-outbox`: answers 204 to every POST, counts
//! deliveries (and distinct `webhook-id`s), and keeps each delivery's delay from the
//! event's `timestamp` to its arrival. `GET /stats` reports them; `DELETE /stats`
//! starts over. `cargo run --release --example webhook_receiver -- 127.0.0.1:18187`

use std::collections::HashSet;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};

#[derive(Default)]
struct Stats {
    ids: HashSet<String>,
    deliveries: u64,
    first_ms: i64,
    last_ms: i64,
    delays_ms: Vec<i64>,
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis() as i64
}

async fn receive(stats: web::Data<Mutex<Stats>>, req: HttpRequest, body: web::Bytes) -> HttpResponse {
    let now = now_ms();
    let timestamp = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|event| event["timestamp"].as_i64());
    let id = req
        .headers()
        .get("webhook-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let mut stats = stats.lock().unwrap();
    if stats.deliveries == 0 {
        stats.first_ms = now;
    }
    stats.deliveries += 1;
    stats.last_ms = now;
    stats.ids.insert(id);
    if let Some(timestamp) = timestamp {
        stats.delays_ms.push(now - timestamp);
    }
    HttpResponse::NoContent().finish()
}

async fn report(stats: web::Data<Mutex<Stats>>) -> HttpResponse {
    let stats = stats.lock().unwrap();
    let mut delays = stats.delays_ms.clone();
    delays.sort_unstable();
    let pick = |q: f64| delays.get(((delays.len() as f64 - 1.0) * q).round() as usize).copied();
    HttpResponse::Ok().json(serde_json::json!({
        "deliveries": stats.deliveries,
        "distinct": stats.ids.len(),
        "first_ms": stats.first_ms,
        "last_ms": stats.last_ms,
        "delay_p50_ms": pick(0.5),
        "delay_p99_ms": pick(0.99),
        "delay_max_ms": delays.last(),
    }))
}

async fn reset(stats: web::Data<Mutex<Stats>>) -> HttpResponse {
    *stats.lock().unwrap() = Stats::default();
    HttpResponse::NoContent().finish()
}

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    let address = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:18187".to_owned());
    let stats = web::Data::new(Mutex::new(Stats::default()));
    HttpServer::new(move || {
        App::new()
            .app_data(stats.clone())
            .app_data(web::PayloadConfig::new(1 << 20))
            .route("/stats", web::get().to(report))
            .route("/stats", web::delete().to(reset))
            .default_service(web::post().to(receive))
    })
    .workers(1)
    .bind(address)?
    .run()
    .await
}
