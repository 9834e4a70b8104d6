//! The layers on methods inside `#[async_trait]` impls: async-trait turns
//! each `async fn` into a `fn` returning `Pin<Box<dyn Future + Send>>`
//! before our attribute sees it; the layers run in a boxed future of their
//! own, trait objects included.

mod support;

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use resilience::{circuit_breaker, registry, retry, CircuitState};
use support::ApiError;

#[async_trait]
trait Provider: Send + Sync {
    async fn complete(&self, prompt: &str) -> Result<String, ApiError>;
    async fn reset(&mut self) -> Result<u32, ApiError>;
}

/// A generic method (so not dyn compatible: a trait of its own).
#[async_trait]
trait Echo {
    async fn echo<T: Clone + Send + Sync + 'static>(&self, value: T) -> Result<T, ApiError>;
}

struct Groq {
    calls: AtomicU32,
    resets: u32,
}

#[async_trait]
impl Provider for Groq {
    #[circuit_breaker(name = "at-groq", failure_threshold = 2, recovery_timeout = "1m")]
    #[retry(max_attempts = 3, backoff = "fixed", delay = "10ms")]
    async fn complete(&self, prompt: &str) -> Result<String, ApiError> {
        let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        if prompt == "down" {
            return Err(ApiError::Upstream);
        }
        if n < 2 {
            Err(ApiError::Upstream)
        } else {
            Ok(format!("{prompt}: {n}"))
        }
    }

    #[circuit_breaker]
    async fn reset(&mut self) -> Result<u32, ApiError> {
        self.resets += 1;
        Ok(self.resets)
    }
}

#[async_trait]
impl Echo for Groq {
    /// Generic, by-value argument cloned per attempt.
    #[retry(max_attempts = 2, backoff = "fixed", delay = "1ms")]
    #[circuit_breaker(name = "at-echo")]
    async fn echo<T: Clone + Send + Sync + 'static>(&self, value: T) -> Result<T, ApiError> {
        Ok(value)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_trait_methods_are_retried_and_guarded_through_a_trait_object() {
    let groq: Arc<dyn Provider> = Arc::new(Groq {
        calls: AtomicU32::new(0),
        resets: 0,
    });
    let task = {
        let groq = groq.clone();
        tokio::spawn(async move { groq.complete("hi").await })
    };
    assert_eq!(task.await.unwrap().unwrap(), "hi: 2", "retried once");
    // Two calls whose retries all fail open the breaker for every caller.
    assert_eq!(groq.complete("down").await, Err(ApiError::Upstream));
    assert_eq!(groq.complete("down").await, Err(ApiError::Upstream));
    assert_eq!(
        registry().get("at-groq").unwrap().state(),
        CircuitState::Open
    );
    assert!(support::is_open(&groq.complete("hi").await));
}

#[tokio::test]
async fn mut_self_methods_keep_working_and_are_named_after_their_type() {
    let mut groq = Groq {
        calls: AtomicU32::new(0),
        resets: 0,
    };
    assert_eq!(groq.reset().await, Ok(1));
    assert_eq!(groq.reset().await, Ok(2));
    assert!(
        registry().get("async_trait::Groq::reset").is_some(),
        "the unnamed breaker is named module::Type::method"
    );
}

#[tokio::test]
async fn generic_methods_keep_their_bounds() {
    let groq = Groq {
        calls: AtomicU32::new(0),
        resets: 0,
    };
    assert_eq!(groq.echo(String::from("x")).await, Ok("x".to_owned()));
    assert_eq!(groq.echo(7u8).await, Ok(7));
    assert!(registry().get("at-echo").is_some());
}
