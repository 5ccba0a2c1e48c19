//! The `__client` cookie's middleware (actix-session), applied only to the requests
//! that can use it: the client API (`/v1/…`) and pages (the guard's handshake reads it).
//! API, Backend API, probe, docs and asset requests skip it: they neither read nor set
//! the device cookie, and skipping it keeps their path short.

use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use actix_web::Error;
use actix_web::body::EitherBody;
use actix_web::dev::{Service, ServiceRequest, ServiceResponse, Transform};

/// Wraps a middleware `T` so that it only sees requests for which `applies` holds.
pub struct OnlyWhere<T> {
    middleware: T,
    applies: fn(&ServiceRequest) -> bool,
}

impl<T> OnlyWhere<T> {
    pub fn new(middleware: T, applies: fn(&ServiceRequest) -> bool) -> Self {
        Self { middleware, applies }
    }
}

impl<S, T, B, BT> Transform<S, ServiceRequest> for OnlyWhere<T>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error> + 'static,
    T: Transform<Rc<S>, ServiceRequest, Response = ServiceResponse<BT>, Error = Error, InitError = ()>,
    T::Future: 'static,
{
    type Response = ServiceResponse<EitherBody<BT, B>>;
    type Error = Error;
    type Transform = OnlyWhereService<S, T::Transform>;
    type InitError = ();
    type Future = Pin<Box<dyn Future<Output = Result<Self::Transform, ()>>>>;

    fn new_transform(&self, service: S) -> Self::Future {
        let plain = Rc::new(service);
        let wrapped = self.middleware.new_transform(plain.clone());
        let applies = self.applies;
        Box::pin(async move {
            Ok(OnlyWhereService {
                plain,
                wrapped: wrapped.await?,
                applies,
            })
        })
    }
}

pub struct OnlyWhereService<S, W> {
    plain: Rc<S>,
    wrapped: W,
    applies: fn(&ServiceRequest) -> bool,
}

impl<S, W, B, BW> Service<ServiceRequest> for OnlyWhereService<S, W>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error>,
    W: Service<ServiceRequest, Response = ServiceResponse<BW>, Error = Error>,
{
    type Response = ServiceResponse<EitherBody<BW, B>>;
    type Error = Error;
    type Future = Either<W::Future, S::Future>;

    fn poll_ready(&self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.wrapped.poll_ready(cx)
    }

    fn call(&self, req: ServiceRequest) -> Self::Future {
        if (self.applies)(&req) {
            Either::Wrapped {
                future: self.wrapped.call(req),
            }
        } else {
            Either::Plain {
                future: self.plain.call(req),
            }
        }
    }
}

pin_project_lite::pin_project! {
    /// The future of one branch or the other, with the body type made one.
    #[project = EitherProj]
    pub enum Either<W, P> {
        Wrapped { #[pin] future: W },
        Plain { #[pin] future: P },
    }
}

impl<W, P, BW, B> Future for Either<W, P>
where
    W: Future<Output = Result<ServiceResponse<BW>, Error>>,
    P: Future<Output = Result<ServiceResponse<B>, Error>>,
{
    type Output = Result<ServiceResponse<EitherBody<BW, B>>, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            EitherProj::Wrapped { future } => future.poll(cx).map_ok(ServiceResponse::map_into_left_body),
            EitherProj::Plain { future } => future.poll(cx).map_ok(ServiceResponse::map_into_right_body),
        }
    }
}
