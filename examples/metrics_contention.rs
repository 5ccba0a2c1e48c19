//! What a request's metrics cost when every worker records at once: `Metrics::record`
//! called in a loop by one thread, then by as many threads as there are cores (each
//! thread's counters are its own shard, so the second figure should stay near the
//! first; counters shared by all threads made it several times higher).
//! `cargo run --release --example metrics_contention`

use std::sync::Arc;
use std::time::Instant;

use actix_web::http::Method;
use gatehouse::telemetry::Metrics;

fn main() {
    let metrics = Arc::new(Metrics::default());
    metrics.register_routes(["/healthz", "/api/me"]);
    let calls: u64 = 20_000_000;
    let cores = std::thread::available_parallelism().map_or(2, usize::from);
    for threads in [1, cores] {
        let started = Instant::now();
        std::thread::scope(|scope| {
            for _ in 0..threads {
                let metrics = metrics.clone();
                scope.spawn(move || {
                    for i in 0..calls {
                        metrics.record(&Method::GET, "/healthz", 200, i & 1023);
                    }
                });
            }
        });
        let ns = started.elapsed().as_nanos() as f64 / calls as f64;
        println!("{threads} thread(s) recording at once: {ns:.1} ns per call");
    }
}
