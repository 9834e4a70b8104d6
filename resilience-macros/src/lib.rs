//! Attribute macros of the [`resilience`](https://docs.rs/resilience) crate.
//!
//! Depend on `resilience`, which re-exports these; this crate's version is
//! pinned exactly by `resilience`, because the expansions call into
//! `::resilience::__private`.
//!
//! Every entry point is `parse -> validate -> expand`:
//! `layers` validates each attribute's arguments, `func` checks and takes
//! apart the function, and `expand` writes the new body. On any error the original
//! function is emitted too, so IDEs and the user's own errors stay sane.
#![forbid(unsafe_code)]
#![warn(missing_docs, unreachable_pub)]

mod args;
#[cfg(test)]
mod docs_tests;
mod expand;
mod func;
#[cfg(test)]
mod fuzz_tests;
mod layers;
#[cfg(test)]
mod same_words_tests;
mod source;
mod spec_tokens;
mod test_attr;
mod value;

use proc_macro::TokenStream;
use proc_macro2::{Span, TokenStream as TokenStream2};
use quote::quote;

use crate::args::Errors;
use crate::func::Func;
use crate::layers::Kind;

/// Puts the function behind a named, shared circuit breaker.
///
/// On an `async fn`, on a `fn` returning `impl Future<Output = Result<T,
/// E>>` (bounds such as `+ Send` kept; the body runs only when the breaker
/// admits the call), on methods inside `#[async_trait]` impls (put the
/// attribute on the method, under `#[async_trait]` on the impl), and on
/// synchronous `fn`s (blocking code: the layers run on the calling thread;
/// a timeout or `max_elapsed` there is a compile error, since nothing can
/// cancel blocking code). The same holds for every attribute of this crate.
///
/// ```
/// use resilience::circuit_breaker;
/// # #[derive(Debug)] struct ApiError; impl From<resilience::Error> for ApiError { fn from(_: resilience::Error) -> Self { ApiError } }
/// # struct Client;
/// impl Client {
///     #[circuit_breaker(name = "unifi", failure_threshold = 5, recovery_timeout = 60)]
///     async fn list_devices(&self) -> Result<Vec<String>, ApiError> {
///         Ok(vec!["ap-1".into()])
///     }
/// }
/// # #[tokio::main(flavor = "current_thread")] async fn main() { Client.list_devices().await.unwrap(); }
/// ```
///
/// Every key, its default and what it does (values: literals, constants or
/// const expressions; durations as seconds or humantime strings such as
/// `"250ms"` or `"1m30s"`):
///
#[doc = include_str!("../doc/circuit_breaker.md")]
///
/// While the circuit is open, the body does not run and the function returns
/// `Err(E::from(error))` with an `error` of kind `ErrorKind::CircuitOpen`, so the error type `E`
/// must implement `From<resilience::Error>`. Every `Err` the body returns counts
/// as a failure; a panic counts as a failure and keeps unwinding; a cancelled
/// call counts as nothing.
///
/// The code it stands for:
///
/// ```
/// # use std::sync::OnceLock;
/// # use resilience::{registry, BreakerConfig, CircuitBreaker, Outcome};
/// # #[derive(Debug)] struct ApiError; impl From<resilience::Error> for ApiError { fn from(_: resilience::Error) -> Self { ApiError } }
/// async fn list_devices() -> Result<Vec<String>, ApiError> {
///     static BREAKER: OnceLock<std::sync::Arc<CircuitBreaker>> = OnceLock::new();
///     let breaker = BREAKER.get_or_init(|| {
///         let config = BreakerConfig::builder().failure_threshold(5).build().unwrap();
///         registry().breaker("unifi", &config)
///     });
///     let permit = breaker.try_acquire()?; // Err(CircuitOpen) -> ApiError
///     let result = async { Ok(vec!["ap-1".to_owned()]) }.await; // the body
///     permit.record(Outcome::of(&result));
///     result
/// }
/// # #[tokio::main(flavor = "current_thread")] async fn main() { list_devices().await.unwrap(); }
/// ```
///
/// Stacked with other resilience attributes, the first one written is the
/// outermost layer: see [`retry`](macro@retry).
///
/// # Names
///
/// Without `name`, each annotated function has a breaker of its own, named
/// so that a person tells two of them apart in logs, metrics and
/// `registry().snapshot()`:
///
/// - a method with a receiver (`self`, `&self`, `&mut self`,
///   `self: Arc<Self>`, …) is named `module::Type::method`
///   (`my_crate::adapters::ReportsApi::fetch_report`), `Type` being `Self`
///   without its path, generic arguments or references (`&Api<u32>` →
///   `Api`). It is read once, on the first call. A generic `impl<T> Api<T>`
///   has one breaker for every `T` (one call site, one breaker), named
///   `module::Api::method`; a default method of a trait is named after the
///   first type that calls it;
/// - a free function, and an associated function without a receiver, is named
///   `module::function`: the attribute cannot see the `impl` block around it.
///
/// That name finds the breaker: `registry().get(name)`, `reset(name)`,
/// `force_open(name)`, and `registry().configure(name, config)` before the
/// first call replaces the attribute's literals. Such a breaker is never
/// shared through a fleet (feature `redis`). If two call sites still come to
/// the same default name (two trait impls of one type that both annotate
/// `fetch`), they are two breakers all the same: the one called second is
/// named `name#2` (then `#3`, …) and a `tracing` warning says so, once. Give
/// them a `name` to choose.
///
/// # Callbacks
///
/// The callbacks declared for a literal `name` belong to that breaker from
/// the start: when the breaker is created (by any call site,
/// `registry().breaker(..)` or `registry().configure(..)`), the callbacks of
/// every call site declaring that name are attached, each once, before any
/// call can trip it. So `on_open = alert` written on one of several functions
/// sharing `name = "inventory"` fires even if another of them opens the
/// circuit first. (They are found in the link-time list of call sites,
/// `resilience::manifest`.) A dynamic name's call site attaches its callbacks
/// to each breaker it creates; an unnamed call site to its own breaker.
#[proc_macro_attribute]
pub fn circuit_breaker(args: TokenStream, item: TokenStream) -> TokenStream {
    entry(Kind::CircuitBreaker, args, item)
}

/// Re-runs the function body when it returns `Err`, sleeping between attempts.
///
/// ```
/// use resilience::retry;
///
/// #[retry(max_attempts = 3, backoff = "exponential", delay = "100ms")]
/// async fn fetch(url: String) -> std::io::Result<String> {
///     Ok(format!("body of {url}"))
/// }
/// # #[tokio::main(flavor = "current_thread")] async fn main() { fetch("x".into()).await.unwrap(); }
/// ```
///
/// Every key, its default and what it does:
///
#[doc = include_str!("../doc/retry.md")]
///
/// The body is re-run inline (so `&mut self` works and the future stays `Send`
/// when the body's is); `return` and `?` end one attempt. By-value arguments
/// are cloned before each attempt, so they must be `Clone` (references are
/// not cloned). A `self` taken by value (`self: Arc<Self>`) is borrowed by each
/// attempt and must not be moved out of by the body. A retry that runs out of
/// attempts returns the body's last error unchanged; `#[retry]` alone never
/// adds an error of its own.
///
/// The code it stands for:
///
/// ```
/// # use resilience::{Backoff, RetryPolicy, RetryState};
/// # use std::time::Duration;
/// async fn fetch(url: String) -> std::io::Result<String> {
///     static POLICY: RetryPolicy = RetryPolicy::DEFAULT;
///     let mut state = RetryState::new("fetch", &POLICY);
///     loop {
///         let url = url.clone();
///         let result: std::io::Result<String> = async { Ok(format!("body of {url}")) }.await;
///         if result.is_ok() { break result; }
///         match state.next_delay() {
///             Some(delay) => tokio::time::sleep(delay).await,
///             None => break result,
///         }
///     }
/// }
/// # #[tokio::main(flavor = "current_thread")] async fn main() { fetch("x".into()).await.unwrap(); }
/// ```
///
/// # Stacking
///
/// Attributes read top-down: the first is the outer layer.
///
/// - `#[circuit_breaker(..)] #[retry(..)]`: the breaker sees one outcome per
///   retried call; an open circuit rejects before any attempt.
/// - `#[retry(..)] #[circuit_breaker(..)]`: every attempt passes the breaker;
///   when it rejects, the retry stops at once with `CircuitOpen` instead of
///   sleeping against an open circuit.
#[proc_macro_attribute]
pub fn retry(args: TokenStream, item: TokenStream) -> TokenStream {
    entry(Kind::Retry, args, item)
}

/// Every layer in one attribute, composed as fallback → circuit breaker →
/// retry → bulkhead → timeout (per attempt) → body.
///
/// ```
/// use resilience::resilient;
///
/// #[resilient(name = "llm", failure_threshold = 5, recovery_timeout = "60s",
///             max_attempts = 3, backoff = "exponential", delay = "500ms", timeout = "30s")]
/// async fn complete(prompt: &str) -> anyhow::Result<String> {
///     Ok(format!("answer to {prompt}"))
/// }
/// # #[tokio::main(flavor = "current_thread")] async fn main() { complete("q").await.unwrap(); }
/// ```
///
/// Takes every key of [`circuit_breaker`](macro@circuit_breaker) and of
/// [`retry`](macro@retry), with the same defaults, plus:
///
#[doc = include_str!("../doc/resilient.md")]
///
/// A layer is there only when its keys are: no `timeout`, no timeout; no
/// `max_concurrent`, no bulkhead; no `fallback`, no fallback (the breaker and
/// the retry always are). A timed-out attempt is retried, and a call whose
/// attempts all fail counts as one failure for the breaker.
#[proc_macro_attribute]
pub fn resilient(args: TokenStream, item: TokenStream) -> TokenStream {
    entry(Kind::Resilient, args, item)
}

/// Cancels one call (or, under `#[retry]`, one attempt) that takes longer than
/// the given duration, returning `Err(E::from(resilience::Error::timeout(after)))`.
///
/// ```
/// use resilience::timeout;
///
/// #[timeout("30s")]
/// async fn fetch() -> anyhow::Result<u32> {
///     Ok(7)
/// }
/// # #[tokio::main(flavor = "current_thread")] async fn main() { fetch().await.unwrap(); }
/// ```
///
/// The argument is seconds (`30`, `0.5`), a humantime string (`"250ms"`,
/// `"1m30s"`) or a constant of type `Duration`; it must be longer than zero.
/// It stands for `tokio::time::timeout(after, body)` with the elapsed case
/// mapped into the function's error type.
#[proc_macro_attribute]
pub fn timeout(args: TokenStream, item: TokenStream) -> TokenStream {
    entry(Kind::Timeout, args, item)
}

/// A named, shared limit on calls in flight at once.
///
/// ```
/// use resilience::bulkhead;
///
/// #[bulkhead(name = "db", max_concurrent = 10, max_wait = "100ms")]
/// async fn query(sql: &str) -> anyhow::Result<usize> {
///     Ok(sql.len())
/// }
/// # #[tokio::main(flavor = "current_thread")] async fn main() { query("select 1").await.unwrap(); }
/// ```
///
/// Every key, its default and what it does:
///
#[doc = include_str!("../doc/bulkhead.md")]
///
/// A call that gets no slot in time returns
/// `Err(E::from(error))` with an `error` of kind `ErrorKind::BulkheadFull`. The slot is given
/// back when the call completes, fails, panics or is cancelled. It stands for
/// `registry().bulkhead(name, ..).acquire().await?` around the body.
#[proc_macro_attribute]
pub fn bulkhead(args: TokenStream, item: TokenStream) -> TokenStream {
    entry(Kind::Bulkhead, args, item)
}

/// A named, shared rate limit: at most `rate` calls per `per` on average,
/// `burst` at once (the generic cell rate algorithm: one atomic word, no
/// background task).
///
/// ```
/// use resilience::rate_limit;
///
/// #[rate_limit(name = "openai", rate = 50, per = "1s", burst = 10, max_wait = "200ms")]
/// async fn complete(prompt: &str) -> anyhow::Result<usize> {
///     Ok(prompt.len())
/// }
/// # #[tokio::main(flavor = "current_thread")] async fn main() { complete("hi").await.unwrap(); }
/// ```
///
/// Every key, its default and what it does:
///
#[doc = include_str!("../doc/rate_limit.md")]
///
/// A call over the limit waits for its turn up to `max_wait` (tokio's
/// clock), else returns `Err(E::from(error))` with an `error` of kind
/// `ErrorKind::RateLimited` whose `retry_after()` says when a call would be
/// allowed; a `#[retry]` above it waits that long before the next attempt.
/// It stands for `registry().rate_limiter(name, ..).acquire().await?` around
/// the body.
#[proc_macro_attribute]
pub fn rate_limit(args: TokenStream, item: TokenStream) -> TokenStream {
    entry(Kind::RateLimit, args, item)
}

/// Request coalescing (singleflight): concurrent calls with an equal key
/// share one run of the body; the others wait for its result, cloned to each.
///
/// ```
/// use resilience::coalesce;
///
/// #[derive(Debug, Clone)]
/// struct Profile { id: u64 }
///
/// #[coalesce(key = id)]
/// async fn profile(id: u64) -> Result<Profile, String> {
///     Ok(Profile { id })
/// }
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let (a, b) = tokio::join!(profile(7), profile(7)); // one run
/// assert_eq!(a.unwrap().id, b.unwrap().id);
/// # }
/// ```
///
/// Every key, its default and what it does:
///
#[doc = include_str!("../doc/coalesce.md")]
///
/// The value and the error must be `Clone` (every caller gets one), `Send`
/// and `'static`. Nothing outlives the call: once the result is handed
/// out, the next call of the key runs the body again (this is not a cache).
/// A caller that is cancelled while its body runs hands over to one of the
/// waiting callers, which runs its own body; a panic likewise. It stands
/// for `Coalescer::run(key, body)` on a `static Coalescer` of the call site.
/// Put it above a breaker or retry so that the callers waiting on a key take
/// no permit and make no attempt of their own.
#[proc_macro_attribute]
pub fn coalesce(args: TokenStream, item: TokenStream) -> TokenStream {
    entry(Kind::Coalesce, args, item)
}

/// Hedged requests: when an attempt has not answered after `delay`, another
/// one starts alongside it; the first `Ok` wins and the others are dropped
/// (cancelled). For idempotent reads with a long latency tail.
///
/// ```
/// use resilience::hedge;
///
/// struct Search;
///
/// impl Search {
///     #[hedge(name = "search", delay = "50ms", max_hedges = 1)]
///     async fn query(&self, q: String) -> Result<Vec<String>, std::io::Error> {
///         Ok(vec![q])
///     }
/// }
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// assert_eq!(Search.query("rust".into()).await.unwrap(), ["rust"]);
/// # }
/// ```
///
/// Every key, its default and what it does:
///
#[doc = include_str!("../doc/hedge.md")]
///
/// Each attempt runs the body (and every layer written below `#[hedge]`)
/// with its own clone of the by-value arguments; `&self` and `&` arguments
/// are shared by the attempts, so a `&mut self` or `&mut` argument is a
/// compile error that says why, and so is a synchronous function. A failed
/// attempt starts the next hedge at once, without waiting for `delay`; when
/// every attempt failed, the last error is returned. No hedge starts once a
/// circuit breaker below has opened, nor, with `budget`, when the retry
/// budget has no token (each call deposits into it, each hedge withdraws).
/// It stands for `registry().hedge(name, ..).run_with(|| body, may_hedge)`.
#[proc_macro_attribute]
pub fn hedge(args: TokenStream, item: TokenStream) -> TokenStream {
    entry(Kind::Hedge, args, item)
}

/// A test against a registry of its own: `#[tokio::test]` whose every
/// annotated call (on the test's thread, in the tasks it spawns, on either
/// runtime flavor) uses a fresh, isolated registry, so that two tests with
/// one breaker name, run in parallel, never see each other's state. Needs
/// the `testing` feature of `resilience` (in `[dev-dependencies]`).
///
/// ```ignore
/// #[resilience::test(start_paused = true)]
/// async fn opens_after_two_failures() {
///     inventory.stock(1).await.unwrap_err();
///     inventory.stock(1).await.unwrap_err();
///     assert_eq!(resilience::testing::breaker_state("inventory"), CircuitState::Open);
/// }
/// ```
///
/// | key | default | meaning |
/// |---|---|---|
/// | `flavor` | `"current_thread"` | or `"multi_thread"` |
/// | `worker_threads` | `2` | worker threads of a multi-thread runtime (≥ 1) |
/// | `start_paused` | `false` | start with tokio's clock paused (current thread only) |
///
/// It stands for `#[test] fn name() { resilience::testing::run(Runtime::current_thread()
/// .start_paused(true), async move { body }) }`; see `resilience::testing`.
#[proc_macro_attribute]
pub fn test(args: TokenStream, item: TokenStream) -> TokenStream {
    test_attr::expand(args.into(), item.into()).into()
}

fn entry(kind: Kind, args: TokenStream, item: TokenStream) -> TokenStream {
    expand_attribute(kind, args.into(), item.into()).into()
}

/// The whole transformation, on `proc_macro2` tokens (testable outside the
/// compiler).
fn expand_attribute(kind: Kind, args: TokenStream2, item: TokenStream2) -> TokenStream2 {
    let mut func: Func = match syn::parse2(item.clone()) {
        Ok(func) => func,
        Err(e) => {
            let message = format!("`{}` can only be used on an `async fn`: {e}", kind.attr());
            let error = syn::Error::new(e.span(), message).to_compile_error();
            return quote!(#item #error);
        }
    };
    let mut errors = Errors::default();
    let mut attrs = vec![layers::parse(kind, Span::call_site(), args, &mut errors)];
    let siblings = func.take_siblings(&mut errors);
    let sibling_paths: Vec<_> = siblings.iter().map(|s| s.path.clone()).collect();
    for sibling in siblings {
        attrs.push(layers::parse(
            sibling.kind,
            sibling.span,
            sibling.tokens,
            &mut errors,
        ));
    }
    layers::check_stack(&attrs, &mut errors);
    for attr in attrs.iter().filter(|a| a.kind == Kind::Hedge) {
        layers::hedge::check_shared(&func, attr.span, &mut errors);
    }
    if func.is_sync() {
        layers::check_sync(&attrs, &mut errors);
    }
    func.check(kind, &mut errors);
    match errors.finish() {
        Ok(()) => expand::expand(&func, &attrs, &sibling_paths),
        Err(e) => {
            let error = e.to_compile_error();
            quote!(#func #error)
        }
    }
}
