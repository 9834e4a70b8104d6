use resilience::{circuit_breaker, resilient, retry, CircuitState};
use std::sync::atomic::{AtomicU32, Ordering};

#[derive(Debug, thiserror::Error)]
enum ApiError {
    #[error("upstream")]
    Upstream,
    #[error(transparent)]
    Resilience(#[from] resilience::Error),
}

static CALLS: AtomicU32 = AtomicU32::new(0);

#[circuit_breaker(name = "smoke", failure_threshold = 2, recovery_timeout = 10)]
#[retry(max_attempts = 3, backoff = "fixed", delay = "1s")]
async fn flaky(id: String) -> Result<String, ApiError> {
    CALLS.fetch_add(1, Ordering::SeqCst);
    if id == "bad" {
        return Err(ApiError::Upstream);
    }
    Ok(id)
}

struct Client {
    name: String,
    n: u32,
}
impl Client {
    #[resilient(name = self.name.as_str(), max_attempts = 2, delay = "10ms", timeout = "1s")]
    async fn get(&mut self) -> anyhow::Result<u32> {
        self.n += 1;
        Ok(self.n)
    }
}

#[tokio::test(start_paused = true)]
async fn smoke() {
    assert_eq!(flaky("a".into()).await.unwrap(), "a");
    assert!(flaky("bad".into()).await.is_err());
    assert_eq!(CALLS.load(Ordering::SeqCst), 4);
    assert!(flaky("bad".into()).await.is_err());
    assert_eq!(
        resilience::registry().get("smoke").unwrap().state(),
        CircuitState::Open
    );
    let mut c = Client {
        name: "c1".into(),
        n: 0,
    };
    assert_eq!(c.get().await.unwrap(), 1);
    fn is_send<T: Send>(_: &T) {}
    is_send(&flaky("x".into()));
}
