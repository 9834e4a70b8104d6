//! tower `Layer`s over the same named, registry-held policies and the same
//! schedules as the attributes (feature `tower`): [`circuit_breaker`],
//! [`retry`], [`bulkhead`], [`timeout`], [`rate_limit`], and the policies
//! of the runtime: [`hedge`], [`coalesce`] and [`adaptive_concurrency`]. `ServiceBuilder::new().layer(resilience::tower::circuit_breaker("payments"))`
//! and `#[circuit_breaker(name = "payments")]` in one process share one
//! breaker, one status row, one metric series.
//!
//! ```
//! use resilience::tower::circuit_breaker;
//! use tower_layer::Layer;
//! use tower_service::Service;
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! # #[derive(Clone)] struct Echo;
//! # impl Service<u32> for Echo {
//! #     type Response = u32; type Error = resilience::Error; type Future = std::future::Ready<Result<u32, resilience::Error>>;
//! #     fn poll_ready(&mut self, _: &mut std::task::Context<'_>) -> std::task::Poll<Result<(), resilience::Error>> { std::task::Poll::Ready(Ok(())) }
//! #     fn call(&mut self, n: u32) -> Self::Future { std::future::ready(Ok(n)) }
//! # }
//! let mut svc = circuit_breaker("tower-doc").layer(Echo);
//! assert_eq!(svc.call(7).await.unwrap(), 7);
//! assert!(resilience::registry().get("tower-doc").is_some());
//! # }
//! ```
//!
//! The breaker layer asks for a permit in `call`, never in `poll_ready`: a
//! caller that polls readiness and then drops the service reserves nothing.
//! A classifier decides what a response counts as (an HTTP 503 is an `Ok`
//! response): [`CircuitBreakerLayer::classify`].

mod adaptive;
mod breaker;
mod bulkhead;
mod coalesce;
mod hedge;
mod rate_limit;
mod retry;
mod timeout;

#[allow(unused_imports)]
pub use adaptive::*;
pub use breaker::{
    circuit_breaker, CircuitBreakerLayer, CircuitBreakerService, Classify, DefaultClassifier,
    ResponseFuture,
};
pub use bulkhead::{bulkhead, BulkheadFuture, BulkheadLayer, BulkheadService};
#[allow(unused_imports)]
pub use coalesce::*;
#[allow(unused_imports)]
pub use hedge::*;
pub use rate_limit::{rate_limit, RateLimitFuture, RateLimitLayer, RateLimitService};
pub use retry::{
    retry, EveryError, NoHint, RetryAfter, RetryFuture, RetryIf, RetryLayer, RetryService,
};
pub use timeout::{timeout, TimeoutFuture, TimeoutLayer, TimeoutService};
