//! The floor under target 1 of the performance issue: the bare route of `examples/bare.rs`
//! behind one hand-written middleware that does only the least Gatehouse's `GET /healthz`
//! must do, each the cheapest way known (no box, no lock, no count shared by the workers):
//! a request id (a per-thread counter) in `x-request-id`, the route's metrics (a map from
//! path to relaxed atomic counters, a latency histogram from two clock reads), `Vary:
//! Origin` (CORS is on by default), and the two header lookups that find no credentials.
//! No policy, no session middleware, no audit context, no auth state: whatever Gatehouse
//! does beyond this, this is what it cannot go below.
//!
//! `GET /api/me` is the same for a session token the worker has already verified (as all
//! of a load test's are, after its first request): find the bearer token in this
//! thread's map (a hash of its last 32 bytes, then the whole token compared), check its
//! expiry and that its session is not revoked, hand the session to the handler (request
//! extensions), and answer the session's JSON, made once, with `x-user-id`. A token the
//! worker has not seen is **not verified** here, only decoded and kept (the floor
//! measures the steady state, not verification: `cargo bench --bench tokens` does).
//! `cargo run --release --example floor -- 127.0.0.1:18183 2`

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, HashSet};
use std::future::{Future, Ready, ready};
use std::hash::BuildHasher;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Instant, SystemTime};

use actix_web::dev::{Service, ServiceRequest, ServiceResponse, Transform};
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::{App, Error, HttpMessage, HttpResponse, HttpServer, web};
use base64::Engine;

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

/// A session token this worker has seen, with what `/api/me` answers for it.
struct Session {
    session_id: String,
    expires: u64,
    user_id: HeaderValue,
    body: web::Bytes,
}

/// This worker's sessions by a hash of their token's last bytes, with the whole tokens.
type Sessions = HashMap<u64, Vec<(Box<[u8]>, Rc<Session>)>, foldhash::fast::FixedState>;

thread_local! {
    static NEXT_ID: Cell<u64> = const { Cell::new(1) };
    static SESSIONS: RefCell<Sessions> = RefCell::default();
}

/// Revoked sessions (none here, but looked in, as every request must).
static REVOKED: std::sync::LazyLock<HashSet<String>> = std::sync::LazyLock::new(HashSet::new);

/// The session of a bearer token, from this worker's map (or, the first time, decoded
/// and kept without verification: see the module's doc).
fn session(token: &[u8]) -> Option<Rc<Session>> {
    let tail = &token[token.len().saturating_sub(32)..];
    let hash = foldhash::fast::FixedState::default().hash_one(tail);
    let known = SESSIONS.with(|sessions| {
        let sessions = sessions.borrow();
        let slot = sessions.get(&hash)?;
        slot.iter().find(|(t, _)| **t == *token).map(|(_, s)| s.clone())
    });
    let session = match known {
        Some(session) => session,
        None => {
            let session = Rc::new(decode(token)?);
            SESSIONS.with(|s| {
                s.borrow_mut()
                    .entry(hash)
                    .or_default()
                    .push((token.into(), session.clone()))
            });
            session
        }
    };
    let now = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).ok()?.as_secs();
    (session.expires > now && !REVOKED.contains(&session.session_id)).then_some(session)
}

fn decode(token: &[u8]) -> Option<Session> {
    let payload = token.split(|b| *b == b'.').nth(1)?;
    let claims: serde_json::Value =
        serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).ok()?).ok()?;
    let (user_id, session_id) = (claims["sub"].as_str()?.to_owned(), claims["sid"].as_str()?.to_owned());
    let body = serde_json::json!({"actor_type": "user", "user_id": user_id, "session_id": session_id,
        "org_id": null, "org_role": null, "org_slug": null, "org_permissions": [], "actor": null,
        "session_claims": claims});
    Some(Session {
        expires: claims["exp"].as_u64()?,
        user_id: HeaderValue::from_str(&user_id).ok()?,
        session_id,
        body: serde_json::to_vec(&body).ok()?.into(),
    })
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
        match req.headers().get(header::AUTHORIZATION) {
            Some(value) => {
                let bearer = value.as_bytes().strip_prefix(b"Bearer ").unwrap_or_default();
                if let Some(session) = session(bearer) {
                    req.extensions_mut().insert(session);
                }
            }
            None => {
                std::hint::black_box(req.headers().contains_key(header::COOKIE));
            }
        }
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

/// The session's JSON and `x-user-id`; 401 without a session.
async fn me(session: Option<web::ReqData<Rc<Session>>>) -> HttpResponse {
    match session {
        Some(session) => HttpResponse::Ok()
            .content_type(header::ContentType::json())
            .insert_header((HeaderName::from_static("x-user-id"), session.user_id.clone()))
            .body(session.body.clone()),
        None => HttpResponse::Unauthorized().finish(),
    }
}

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let address = args.next().unwrap_or_else(|| "127.0.0.1:18183".to_owned());
    let workers: usize = args.next().and_then(|w| w.parse().ok()).unwrap_or(2);
    let stats: Routes = Box::leak(Box::new(HashMap::from([
        ("/healthz", Stats::default()),
        ("/api/me", Stats::default()),
    ])));
    HttpServer::new(move || {
        App::new()
            .route(
                "/healthz",
                web::get().to(|| async { HttpResponse::Ok().json(Health { status: "ok" }) }),
            )
            .route("/api/me", web::get().to(me))
            .wrap(Floor(stats))
    })
    .workers(workers)
    .bind(address)?
    .run()
    .await
}
