//! The floor under target 1 of the performance issue: the bare route of `examples/bare.rs`
//! behind one hand-written middleware that does only the least Gatehouse's `GET /healthz`
//! must do, each the cheapest way known (no box, no lock, no count shared by the workers):
//! a request id (a per-thread counter) in `x-request-id`, the route's metrics (a map from
//! path to relaxed atomic counters, a latency histogram from two clock reads), `Vary:
//! Origin` (CORS is on by default), and the two header lookups that find no credentials.
//! No policy, no session middleware, no audit context, no auth state: whatever Gatehouse
//! does beyond this, this is what it cannot go below.
//! `cargo run --release --example floor -- 127.0.0.1:18183 2`

use std::cell::Cell;
use std::collections::HashMap;
use std::future::{Future, Ready, ready};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Instant;

use actix_web::dev::{Service, ServiceRequest, ServiceResponse, Transform};
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::{App, Error, HttpResponse, HttpServer, web};

#[derive(serde::Serialize)]
struct Health {
    status: &'static str,
}

#[derive(Default)]
struct Stats {
    count: AtomicU64,
    sum_micros: AtomicU64,
    buckets: [AtomicU64; 10],
}

const BUCKETS_MICROS: [u64; 10] = [
    1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000,
];
const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

thread_local! {
    static NEXT_ID: Cell<u64> = const { Cell::new(1) };
}

/// The routes' counters, made once and never freed: requests read them without a count.
type Routes = &'static HashMap<&'static str, Stats>;

struct Floor(Routes);

impl<S, B> Transform<S, ServiceRequest> for Floor
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error>,
{
    type Response = ServiceResponse<B>;
    type Error = Error;
    type Transform = FloorService<S>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, ()>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(FloorService { service, stats: self.0 }))
    }
}

struct FloorService<S> {
    service: S,
    stats: Routes,
}

impl<S, B> Service<ServiceRequest> for FloorService<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error>,
{
    type Response = ServiceResponse<B>;
    type Error = Error;
    type Future = FloorFuture<S::Future>;

    actix_web::dev::forward_ready!(service);

    fn call(&self, req: ServiceRequest) -> Self::Future {
        let next = NEXT_ID.with(|n| {
            let next = n.get();
            n.set(next + 1);
            next
        });
        let mut digits = itoa::Buffer::new();
        let mut id = *b"req_abcdef_\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0";
        let digits = digits.format(next).as_bytes();
        id[11..11 + digits.len()].copy_from_slice(digits);
        let id = HeaderValue::from_bytes(&id[..11 + digits.len()]).expect("visible ASCII");
        let signed_out =
            !req.headers().contains_key(header::AUTHORIZATION) && !req.headers().contains_key(header::COOKIE);
        std::hint::black_box(signed_out);
        FloorFuture {
            future: self.service.call(req),
            id: Some(id),
            started: Instant::now(),
            stats: self.stats,
        }
    }
}

pin_project_lite::pin_project! {
    struct FloorFuture<F> {
        #[pin]
        future: F,
        id: Option<HeaderValue>,
        started: Instant,
        stats: Routes,
    }
}

impl<F, B> Future for FloorFuture<F>
where
    F: Future<Output = Result<ServiceResponse<B>, Error>>,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let mut response = match this.future.poll(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(result) => result?,
        };
        let micros = this.started.elapsed().as_micros() as u64;
        if let Some(stats) = this.stats.get(response.request().path()) {
            stats.count.fetch_add(1, Ordering::Relaxed);
            stats.sum_micros.fetch_add(micros, Ordering::Relaxed);
            if let Some(bucket) = BUCKETS_MICROS.iter().position(|b| micros <= *b) {
                stats.buckets[bucket].fetch_add(1, Ordering::Relaxed);
            }
        }
        let headers = response.headers_mut();
        headers.append(header::VARY, HeaderValue::from_static("Origin"));
        if let Some(id) = this.id.take() {
            headers.insert(REQUEST_ID, id);
        }
        Poll::Ready(Ok(response))
    }
}

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let address = args.next().unwrap_or_else(|| "127.0.0.1:18183".to_owned());
    let workers: usize = args.next().and_then(|w| w.parse().ok()).unwrap_or(2);
    let stats: Routes = Box::leak(Box::new(HashMap::from([("/healthz", Stats::default())])));
    HttpServer::new(move || {
        App::new()
            .route(
                "/healthz",
                web::get().to(|| async { HttpResponse::Ok().json(Health { status: "ok" }) }),
            )
            .wrap(Floor(stats))
    })
    .workers(workers)
    .bind(address)?
    .run()
    .await
}
