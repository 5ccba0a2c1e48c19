//! Logs, request ids and Prometheus metrics, cheap enough to leave on.
//!
//! Per request: an id (a per-thread prefix and counter, no system call), a span and an
//! access-log line only when their level is enabled, and the metrics as relaxed atomic
//! increments on counters registered at start-up for every route (no lock, no
//! allocation); a route that was not registered (rare: none is added after start-up)
//! falls back to a locked map. Nothing a request writes is written by the other workers
//! too: each thread counts in its own shard, summed when `/metrics` is read.

use std::cell::Cell;
use std::collections::{BTreeMap, HashMap};
use std::future::{Future, Ready, ready};
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicU8, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll};
use std::time::Instant;

use actix_web::dev::{Service, ServiceRequest, ServiceResponse, Transform};
use actix_web::http::Method;
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::{Error, HttpRequest};
use tracing_subscriber::EnvFilter;

pub const REQUEST_ID_HEADER: HeaderName = HeaderName::from_static("x-request-id");

/// Installs the global subscriber (`RUST_LOG` filters; default `info`).
pub fn init_tracing() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .try_init();
}

/// Request ids: `req_<8 random characters of this thread>_<counter>`. Unique, and
/// cheap: each thread counts on its own (a counter shared by the workers would be a
/// cache line bounced between the cores on every request).
struct RequestIds {
    prefix: String,
    next: Cell<u64>,
}

thread_local! {
    static REQUEST_IDS: RequestIds = RequestIds {
        prefix: format!("req_{}_", &crate::ids::random_token(6)),
        next: Cell::new(1),
    };
}

/// Accepts a caller's request id when it is short and plain; otherwise makes one.
fn request_id(req: &ServiceRequest) -> HeaderValue {
    if let Some(given) = req.headers().get(&REQUEST_ID_HEADER)
        && !given.is_empty()
        && given.len() <= 64
        && given
            .as_bytes()
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(b))
    {
        return given.clone();
    }
    REQUEST_IDS.with(|ids| {
        let next = ids.next.get();
        ids.next.set(next + 1);
        let mut counter = itoa::Buffer::new();
        let counter = counter.format(next);
        let mut id = [0u8; 64];
        let (prefix, rest) = id.split_at_mut(ids.prefix.len());
        prefix.copy_from_slice(ids.prefix.as_bytes());
        rest[..counter.len()].copy_from_slice(counter.as_bytes());
        HeaderValue::from_bytes(&id[..ids.prefix.len() + counter.len()]).expect("request ids are visible ASCII")
    })
}

/// Middleware: the request id, a span and an access-log line (when enabled), metrics.
///
/// Written as a `Transform` rather than with `from_fn`: the inner service's future is
/// kept in place (no box per request) and the metrics are held, not looked up, by each
/// worker's service behind an `Rc` (whose count, unlike an `Arc`'s, no other core writes).
pub struct RequestContext {
    metrics: Arc<Metrics>,
}

impl RequestContext {
    pub fn new(metrics: Arc<Metrics>) -> Self {
        Self { metrics }
    }
}

impl<S, B> Transform<S, ServiceRequest> for RequestContext
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error>,
{
    type Response = ServiceResponse<B>;
    type Error = Error;
    type Transform = RequestContextService<S>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, ()>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(RequestContextService {
            service,
            metrics: Rc::new(WorkerMetrics(self.metrics.clone())),
        }))
    }
}

pub struct RequestContextService<S> {
    service: S,
    metrics: Rc<WorkerMetrics>,
}

/// A worker's handle on the metrics, shared by its requests as an `Rc`: cloning it
/// writes a count only this worker's core writes (an `Arc`'s count is written by all).
pub struct WorkerMetrics(Arc<Metrics>);

impl<S, B> Service<ServiceRequest> for RequestContextService<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error>,
{
    type Response = ServiceResponse<B>;
    type Error = Error;
    type Future = RequestContextFuture<S::Future>;

    actix_web::dev::forward_ready!(service);

    fn call(&self, req: ServiceRequest) -> Self::Future {
        let id = request_id(&req);
        let method = req.method().clone();
        let span = tracing::enabled!(tracing::Level::INFO)
            .then(|| tracing::info_span!("request", request_id = ?id, method = %method, path = %req.path()));
        let started = Instant::now();
        let future = match &span {
            Some(span) => span.in_scope(|| self.service.call(req)),
            None => self.service.call(req),
        };
        RequestContextFuture {
            future,
            span,
            id: Some(id),
            method,
            started,
            metrics: self.metrics.clone(),
        }
    }
}

pin_project_lite::pin_project! {
    pub struct RequestContextFuture<F> {
        #[pin]
        future: F,
        // Entered around every poll of the inner future, as `Instrument` does.
        span: Option<tracing::Span>,
        id: Option<HeaderValue>,
        method: Method,
        started: Instant,
        metrics: Rc<WorkerMetrics>,
    }
}

impl<F, B> Future for RequestContextFuture<F>
where
    F: Future<Output = Result<ServiceResponse<B>, Error>>,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let entered = this.span.as_ref().map(tracing::Span::enter);
        let mut response = match this.future.poll(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(result) => result?,
        };
        let status = response.status().as_u16();
        let elapsed = this.started.elapsed();
        let micros = elapsed.as_micros() as u64;
        if entered.is_some() {
            // The access log needs the route's pattern anyway: the metrics take the same one.
            let route = response.request().match_pattern();
            let route = route.as_deref().unwrap_or(UNMATCHED);
            let latency_ms = elapsed.as_secs_f64() * 1000.0;
            tracing::info!(status, route, latency_ms, "handled");
            this.metrics.0.record(this.method, route, status, micros);
        } else {
            this.metrics
                .0
                .record_request(response.request(), this.method, status, micros);
        }
        drop(entered);
        if let Some(id) = this.id.take() {
            response.headers_mut().insert(REQUEST_ID_HEADER, id);
        }
        Poll::Ready(Ok(response))
    }
}

/// The route label of requests that matched no route.
const UNMATCHED: &str = "unmatched";
/// Latency buckets, in microseconds (the exposition says seconds).
const BUCKETS_MICROS: [u64; 10] = [
    1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000,
];
const BUCKET_LABELS: [&str; 10] = [
    "0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1",
];
const METHODS: [Method; 7] = [
    Method::GET,
    Method::POST,
    Method::PUT,
    Method::PATCH,
    Method::DELETE,
    Method::HEAD,
    Method::OPTIONS,
];
/// The statuses this API answers; anything else is counted as `other`.
const STATUSES: [u16; 21] = [
    200, 201, 204, 301, 302, 303, 304, 307, 308, 400, 401, 403, 404, 405, 409, 413, 415, 422, 429, 500, 503,
];

/// One route's counters: requests by method and status, and a latency histogram, kept
/// in shards that each thread writes on its own (see [`Shard`]) and summed when rendered.
struct RouteStats {
    shards: Box<[Shard]>,
    /// Whether a request whose path is this pattern, character for character, is routed
    /// to this pattern (`UNKNOWN` until the first such request; routing is a function of
    /// the path, so one answer holds for all).
    routes_to_itself: AtomicU8,
}

/// One thread's share of a route's counters, aligned to its own cache lines: workers on
/// different cores never write the same line, which a single set of atomics made them do
/// on every request (each increment then waits for the line to come from the other core).
#[repr(align(128))]
struct Shard {
    requests: [[AtomicU64; STATUSES.len() + 1]; METHODS.len() + 1],
    buckets: [AtomicU64; BUCKETS_MICROS.len()],
    count: AtomicU64,
    sum_micros: AtomicU64,
}

const UNKNOWN: u8 = 0;
const YES: u8 = 1;
const NO: u8 = 2;

/// Shards per route: the cores, rounded up to a power of two, at most 16 (beyond that a
/// few threads share a shard, which stays correct: the counters are atomic).
fn shard_count() -> usize {
    static COUNT: OnceLock<usize> = OnceLock::new();
    *COUNT.get_or_init(|| {
        std::thread::available_parallelism()
            .map_or(1, usize::from)
            .next_power_of_two()
            .min(16)
    })
}

/// This thread's shard: threads take them in turn as they first record a request.
fn this_threads_shard() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static SHARD: usize = NEXT.fetch_add(1, Ordering::Relaxed) % shard_count();
    }
    SHARD.with(|shard| *shard)
}

impl RouteStats {
    fn new() -> Self {
        Self {
            shards: (0..shard_count())
                .map(|_| Shard {
                    requests: std::array::from_fn(|_| std::array::from_fn(|_| AtomicU64::new(0))),
                    buckets: std::array::from_fn(|_| AtomicU64::new(0)),
                    count: AtomicU64::new(0),
                    sum_micros: AtomicU64::new(0),
                })
                .collect(),
            routes_to_itself: AtomicU8::new(UNKNOWN),
        }
    }

    fn record(&self, method: &Method, status: u16, micros: u64) {
        let shard = &self.shards[this_threads_shard()];
        let m = METHODS.iter().position(|x| x == method).unwrap_or(METHODS.len());
        let s = STATUSES.iter().position(|x| *x == status).unwrap_or(STATUSES.len());
        shard.requests[m][s].fetch_add(1, Ordering::Relaxed);
        if let Some(bucket) = BUCKETS_MICROS.iter().position(|b| micros <= *b) {
            shard.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        }
        shard.count.fetch_add(1, Ordering::Relaxed);
        shard.sum_micros.fetch_add(micros, Ordering::Relaxed);
    }

    /// One counter summed over the shards.
    fn total(&self, counter: impl Fn(&Shard) -> &AtomicU64) -> u64 {
        self.shards
            .iter()
            .map(|shard| counter(shard).load(Ordering::Relaxed))
            .sum()
    }
}

/// Request counters and latency histograms per route, and named event counters,
/// rendered in Prometheus text format.
#[derive(Default)]
pub struct Metrics {
    /// Every route known at start-up: read without a lock.
    routes: OnceLock<HashMap<Box<str>, RouteStats, foldhash::fast::RandomState>>,
    /// Routes registered later (none in this app, but a route added without
    /// registration is still counted).
    late_routes: Mutex<BTreeMap<String, Box<RouteStats>>>,
    counters: Counters,
}

/// Named counters (`gatehouse_<name>_total`): the known ones are fields, read and
/// written without a lock.
macro_rules! counters {
    ($($name:ident),* $(,)?) => {
        #[derive(Default)]
        struct Counters {
            $($name: AtomicU64,)*
            others: Mutex<BTreeMap<&'static str, u64>>,
        }

        impl Counters {
            fn incr(&self, name: &'static str) {
                match name {
                    $(stringify!($name) => { self.$name.fetch_add(1, Ordering::Relaxed); })*
                    other => *self.others.lock().expect("metrics lock").entry(other).or_default() += 1,
                }
            }

            fn snapshot(&self) -> BTreeMap<&'static str, u64> {
                let mut all = self.others.lock().expect("metrics lock").clone();
                $(
                    let value = self.$name.load(Ordering::Relaxed);
                    if value > 0 {
                        all.insert(stringify!($name), value);
                    }
                )*
                all
            }
        }
    };
}

counters!(
    sign_ins,
    sign_ups,
    sign_in_failures,
    rate_limited,
    handshakes,
    session_tokens_issued,
    custom_claims_dropped,
    webhooks_delivered,
    webhook_attempts_failed,
);

impl Metrics {
    /// Registers the routes whose counters are read without a lock (once, at start-up;
    /// later calls are ignored).
    pub fn register_routes<'a>(&self, patterns: impl IntoIterator<Item = &'a str>) {
        let mut routes: HashMap<Box<str>, RouteStats, _> =
            patterns.into_iter().map(|p| (p.into(), RouteStats::new())).collect();
        routes.insert(UNMATCHED.into(), RouteStats::new());
        let _ = self.routes.set(routes);
    }

    /// Records a request by the route it matched. Most requests go to a route without
    /// parameters, whose pattern is the path itself: those are found by the path, without
    /// asking the router for the pattern again (which builds a `String`).
    pub fn record_request(&self, req: &HttpRequest, method: &Method, status: u16, micros: u64) {
        let path = req.path();
        if let Some(stats) = self.routes.get().and_then(|routes| routes.get(path)) {
            let mut answer = stats.routes_to_itself.load(Ordering::Relaxed);
            if answer == UNKNOWN {
                answer = if req.match_pattern().as_deref() == Some(path) {
                    YES
                } else {
                    NO
                };
                stats.routes_to_itself.store(answer, Ordering::Relaxed);
            }
            if answer == YES {
                return stats.record(method, status, micros);
            }
        }
        let route = req.match_pattern();
        self.record(method, route.as_deref().unwrap_or(UNMATCHED), status, micros);
    }

    pub fn record(&self, method: &Method, route: &str, status: u16, micros: u64) {
        if let Some(stats) = self.routes.get().and_then(|routes| routes.get(route)) {
            stats.record(method, status, micros);
        } else {
            let mut late = self.late_routes.lock().expect("metrics lock");
            late.entry(route.to_owned())
                .or_insert_with(|| Box::new(RouteStats::new()))
                .record(method, status, micros);
        }
    }

    /// Counts a named event (`gatehouse_<name>_total`).
    pub fn incr(&self, name: &'static str) {
        self.counters.incr(name);
    }

    pub fn render(&self) -> String {
        use std::fmt::Write;
        let late = self.late_routes.lock().expect("metrics lock");
        let mut routes: Vec<(&str, &RouteStats)> = self
            .routes
            .get()
            .into_iter()
            .flatten()
            .map(|(route, stats)| (&**route, stats))
            .chain(late.iter().map(|(route, stats)| (route.as_str(), &**stats)))
            .filter(|(_, stats)| stats.total(|shard| &shard.count) > 0)
            .collect();
        routes.sort_by_key(|(route, _)| *route);
        let mut out = String::new();
        out.push_str("# HELP http_requests_total HTTP requests by method, route and status.\n");
        out.push_str("# TYPE http_requests_total counter\n");
        for (route, stats) in &routes {
            let route = escape(route);
            for m in 0..=METHODS.len() {
                let method = METHODS.get(m).map_or("OTHER", Method::as_str);
                for s in 0..=STATUSES.len() {
                    let count = stats.total(|shard| &shard.requests[m][s]);
                    if count > 0 {
                        let status = STATUSES.get(s).map_or_else(|| "other".to_owned(), u16::to_string);
                        let _ = writeln!(
                            out,
                            "http_requests_total{{method=\"{method}\",route=\"{route}\",status=\"{status}\"}} {count}"
                        );
                    }
                }
            }
        }
        out.push_str("# HELP http_request_duration_seconds Request latency by route.\n");
        out.push_str("# TYPE http_request_duration_seconds histogram\n");
        for (route, stats) in &routes {
            let route = escape(route);
            let mut cumulative = 0;
            for (b, label) in BUCKET_LABELS.iter().enumerate() {
                cumulative += stats.total(|shard| &shard.buckets[b]);
                let _ = writeln!(
                    out,
                    "http_request_duration_seconds_bucket{{route=\"{route}\",le=\"{label}\"}} {cumulative}"
                );
            }
            let count = stats.total(|shard| &shard.count);
            let sum = stats.total(|shard| &shard.sum_micros) as f64 / 1e6;
            let _ = writeln!(
                out,
                "http_request_duration_seconds_bucket{{route=\"{route}\",le=\"+Inf\"}} {count}"
            );
            let _ = writeln!(out, "http_request_duration_seconds_sum{{route=\"{route}\"}} {sum}");
            let _ = writeln!(out, "http_request_duration_seconds_count{{route=\"{route}\"}} {count}");
        }
        for (name, count) in self.counters.snapshot() {
            let _ = writeln!(
                out,
                "# TYPE gatehouse_{name}_total counter\ngatehouse_{name}_total {count}"
            );
        }
        out
    }
}

fn escape(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_prometheus_text() {
        let metrics = Metrics::default();
        metrics.register_routes(["/healthz"]);
        metrics.record(&Method::GET, "/healthz", 200, 2_000);
        metrics.record(&Method::GET, "/healthz", 200, 300_000);
        metrics.record(&Method::POST, "/late/{x}", 418, 10);
        metrics.incr("sign_ins");
        metrics.incr("something_new");
        let text = metrics.render();
        assert!(
            text.contains("http_requests_total{method=\"GET\",route=\"/healthz\",status=\"200\"} 2"),
            "{text}"
        );
        assert!(
            text.contains("http_request_duration_seconds_bucket{route=\"/healthz\",le=\"0.0025\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("http_request_duration_seconds_count{route=\"/healthz\"} 2"),
            "{text}"
        );
        assert!(
            text.contains("http_requests_total{method=\"POST\",route=\"/late/{x}\",status=\"other\"} 1"),
            "{text}"
        );
        assert!(text.contains("gatehouse_sign_ins_total 1"), "{text}");
        assert!(text.contains("gatehouse_something_new_total 1"), "{text}");
    }

    #[actix_web::test]
    async fn requests_are_counted_under_the_route_they_matched() {
        use actix_web::{App, HttpResponse, test, web};
        let metrics = web::Data::new(Metrics::default());
        // `/{name}` comes first, so it, not `/shadowed`, serves the path `/shadowed`.
        metrics.register_routes(["/static", "/items/{id}", "/{name}", "/shadowed"]);
        let record = |req: HttpRequest, metrics: web::Data<Metrics>| async move {
            metrics.record_request(&req, &Method::GET, 200, 10);
            HttpResponse::Ok().finish()
        };
        let app = test::init_service(
            App::new()
                .app_data(metrics.clone())
                .route("/static", web::get().to(record))
                .route("/items/{id}", web::get().to(record))
                .route("/{name}", web::get().to(record))
                .route("/shadowed", web::get().to(record)),
        )
        .await;
        for path in [
            "/static",
            "/static",
            "/items/1",
            "/items/{id}",
            "/shadowed",
            "/shadowed",
            "/other",
        ] {
            test::call_service(&app, test::TestRequest::get().uri(path).to_request()).await;
        }
        let text = metrics.render();
        let count = |route: &str| {
            let line = format!("http_request_duration_seconds_count{{route=\"{route}\"}} ");
            text.lines()
                .find_map(|l| l.strip_prefix(&line))
                .map_or(0, |n| n.parse::<u64>().unwrap())
        };
        assert_eq!(count("/static"), 2, "{text}");
        assert_eq!(count("/items/{id}"), 2, "{text}");
        assert_eq!(count("/{name}"), 3, "{text}");
        assert_eq!(count("/shadowed"), 0, "{text}");
    }
}
