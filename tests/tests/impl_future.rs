//! The layers on a `fn` returning `impl Future<Output = Result<..>>` (the
//! shape rustc's `async_fn_in_trait` lint suggests, to promise `Send`): the
//! same breakers and retries, the body's future built anew per attempt, the
//! declared bounds kept (the futures are spawned on a multi-thread runtime,
//! which needs `Send`).

mod support;

use std::future::Future;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use resilience::{circuit_breaker, registry, resilient, retry, CircuitState};
use support::ApiError;

/// An adapter trait whose method promises a `Send` future.
trait Provider {
    fn complete(&self, prompt: String) -> impl Future<Output = Result<String, ApiError>> + Send;
}

struct Groq {
    calls: AtomicU32,
    fail_first: u32,
}

impl Provider for Groq {
    #[circuit_breaker(name = "if-groq", failure_threshold = 10)]
    #[retry(max_attempts = 3, backoff = "fixed", delay = "10ms")]
    fn complete(&self, prompt: String) -> impl Future<Output = Result<String, ApiError>> + Send {
        // Evaluated once per attempt: the call is counted when the future is
        // built, the answer given when it is polled.
        let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        let fail = n <= self.fail_first;
        async move {
            if fail {
                Err(ApiError::Upstream)
            } else {
                Ok(format!("answer to {prompt} after {n} attempts"))
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trait_method_returning_a_send_future_is_retried_and_guarded() {
    let groq = Arc::new(Groq {
        calls: AtomicU32::new(0),
        fail_first: 2,
    });
    let task = {
        let groq = groq.clone();
        tokio::spawn(async move { groq.complete("hi".to_owned()).await })
    };
    assert_eq!(
        task.await.unwrap().unwrap(),
        "answer to hi after 3 attempts"
    );
    assert_eq!(
        groq.calls.load(Ordering::SeqCst),
        3,
        "the body ran once per attempt"
    );
    let b = registry().get("if-groq").unwrap();
    assert_eq!(b.state(), CircuitState::Closed);
}

static OPENS: AtomicU32 = AtomicU32::new(0);

#[circuit_breaker(name = "if-free", failure_threshold = 2, recovery_timeout = "1m")]
fn free(fail: bool) -> impl Future<Output = Result<u32, ApiError>> {
    OPENS.fetch_add(1, Ordering::SeqCst);
    // A `return` in the body returns the future, as written.
    if fail {
        return futures_ready(Err(ApiError::Upstream));
    }
    futures_ready(Ok(7))
}

fn futures_ready(r: Result<u32, ApiError>) -> std::future::Ready<Result<u32, ApiError>> {
    std::future::ready(r)
}

#[tokio::test(start_paused = true)]
async fn a_free_fn_returning_a_future_shares_the_breaker_rules() {
    assert_eq!(free(false).await, Ok(7));
    assert_eq!(free(true).await, Err(ApiError::Upstream));
    assert_eq!(free(true).await, Err(ApiError::Upstream));
    assert!(support::is_open(&free(false).await), "2 failures opened it");
    assert_eq!(
        OPENS.load(Ordering::SeqCst),
        3,
        "rejected before the body built its future"
    );
}

struct Counter {
    n: u32,
}

impl Counter {
    /// `&mut self` and a by-value argument, retried: each attempt gets its
    /// own copy of `step`.
    #[resilient(
        name = "if-counter",
        max_attempts = 3,
        backoff = "fixed",
        delay = "1ms"
    )]
    fn bump(&mut self, step: String) -> impl Future<Output = Result<u32, ApiError>> + '_ {
        self.n += 1;
        let n = self.n;
        async move {
            if n < 2 {
                Err(ApiError::Upstream)
            } else {
                Ok(n * step.len() as u32)
            }
        }
    }
}

#[tokio::test(start_paused = true)]
async fn mut_self_and_by_value_arguments_work_per_attempt() {
    let mut c = Counter { n: 0 };
    assert_eq!(c.bump("ab".to_owned()).await, Ok(4));
    assert_eq!(c.n, 2);
}
