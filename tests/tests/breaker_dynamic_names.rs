//! `#[circuit_breaker]` with a name computed at run time
//! (`name = self.breaker.as_str()`), on the paused clock: one breaker per
//! name, its callbacks attached once per breaker created.
//!
//! Every breaker has a name of its own: the tests of this binary run in
//! parallel and share the process-wide registry.

mod support;

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;

use resilience::{circuit_breaker, CircuitState, Transition};
use support::breaker::{rejected, ApiError};
use support::{secs, state};
use tokio::time::advance;

use ApiError::Timeout;
use CircuitState::{Closed, Open};

static TENANT_OPENED: Mutex<Vec<String>> = Mutex::new(Vec::new());

fn tenant_opened(t: &Transition) {
    TENANT_OPENED.lock().unwrap().push(t.name.to_string());
}

struct Tenant {
    breaker: String,
    runs: AtomicU32,
}

impl Tenant {
    fn new(breaker: &str) -> Self {
        Tenant {
            breaker: breaker.to_owned(),
            runs: AtomicU32::new(0),
        }
    }

    #[circuit_breaker(
        name = self.breaker.as_str(),
        failure_threshold = 2,
        recovery_timeout = "10s",
        on_open = tenant_opened
    )]
    async fn call(&self, result: Result<(), ApiError>) -> Result<(), ApiError> {
        self.runs.fetch_add(1, Ordering::SeqCst);
        result
    }
}

#[tokio::test(start_paused = true)]
async fn dynamic_names_attach_callbacks_once_per_created_breaker() {
    let (a, b) = (Tenant::new("pol-dyn-a"), Tenant::new("pol-dyn-b"));
    let opened = |name: &str| {
        TENANT_OPENED
            .lock()
            .unwrap()
            .iter()
            .filter(|n| *n == name)
            .count()
    };
    for _ in 0..5 {
        a.call(Ok(())).await.unwrap();
        b.call(Ok(())).await.unwrap();
    }
    for _ in 0..2 {
        a.call(Err(Timeout)).await.unwrap_err();
    }
    assert_eq!(state("pol-dyn-a"), Open);
    assert_eq!(state("pol-dyn-b"), Closed);
    assert_eq!((opened("pol-dyn-a"), opened("pol-dyn-b")), (1, 0));

    for _ in 0..2 {
        b.call(Err(Timeout)).await.unwrap_err();
    }
    assert_eq!((opened("pol-dyn-a"), opened("pol-dyn-b")), (1, 1));
    assert!(rejected(b.call(Ok(())).await, "pol-dyn-b").is_some());

    // Recover and open `a` again: one more callback, not one per call made.
    advance(secs(10)).await;
    a.call(Ok(())).await.unwrap();
    for _ in 0..2 {
        a.call(Err(Timeout)).await.unwrap_err();
    }
    assert_eq!((opened("pol-dyn-a"), opened("pol-dyn-b")), (2, 1));
    assert_eq!(a.runs.load(Ordering::SeqCst), 10);
    assert_eq!(b.runs.load(Ordering::SeqCst), 7);
}
