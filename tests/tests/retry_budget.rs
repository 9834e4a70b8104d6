//! Shared retry budgets (`#[retry(budget = "…")]`) on the paused clock: an
//! empty budget ends the retry with the last error and refills as retries
//! leave its window; a ratio budget grows with the calls made.

mod support;

use std::time::Duration;

use resilience::{registry, retry, RetryBudget};
use support::retry::{fails, ok, ApiError, Upstream};
use support::{ms, secs as s};
use tokio::time::Instant;

use ApiError::{BadRequest, Timeout, Unavailable};

fn budget(name: &str, ttl: Duration, min_per_sec: u32, ratio: f64) {
    let budget = RetryBudget::new(name, ttl, min_per_sec, ratio).unwrap();
    registry()
        .configure_retry_budget(budget)
        .expect("budget configured before first use");
}

fn budget_status(name: &str) -> resilience::BudgetStatus {
    registry()
        .snapshot()
        .retry_budgets
        .into_iter()
        .find(|b| &*b.name == name)
        .expect("budget exists")
}

impl Upstream {
    #[retry(
        max_attempts = 3,
        backoff = "fixed",
        delay = "100ms",
        budget = "rp-floor"
    )]
    async fn floor_budgeted(&self) -> Result<u32, ApiError> {
        self.call().await
    }

    #[retry(
        max_attempts = 5,
        backoff = "fixed",
        delay = "100ms",
        budget = "rp-ratio"
    )]
    async fn ratio_budgeted(&self) -> Result<u32, ApiError> {
        self.call().await
    }
}

#[tokio::test(start_paused = true)]
async fn an_empty_budget_ends_the_retry_with_the_last_error_then_refills() {
    // 2 retries per 2 s window, whatever the traffic.
    budget("rp-floor", s(2), 1, 0.0);

    let up = Upstream::new([fails(Timeout), fails(Timeout), fails(BadRequest(3))]);
    assert_eq!(up.floor_budgeted().await, Err(BadRequest(3)));
    assert_eq!(up.started(), [ms(0), ms(100), ms(200)]);
    let status = budget_status("rp-floor");
    assert_eq!((status.calls, status.retries, status.available), (1, 2, 0));

    // Spent: the first error ends the call at once.
    let up = Upstream::new([fails(BadRequest(1))]);
    let start = Instant::now();
    assert_eq!(up.floor_budgeted().await, Err(BadRequest(1)));
    assert_eq!(up.attempts(), 1);
    assert_eq!(start.elapsed(), Duration::ZERO);

    // Once the retries left the window, the budget grants them again.
    tokio::time::advance(s(2)).await;
    assert_eq!(budget_status("rp-floor").available, 2);
    let up = Upstream::new([fails(Timeout), ok(2)]);
    assert_eq!(up.floor_budgeted().await, Ok(2));
    assert_eq!(up.attempts(), 2);
    assert_eq!(budget_status("rp-floor").available, 1);
}

#[tokio::test(start_paused = true)]
async fn the_budget_grows_with_the_calls_made() {
    // No floor: each call earns half a retry.
    budget("rp-ratio", s(10), 0, 0.5);

    let up = Upstream::new([fails(Timeout)]);
    assert_eq!(up.ratio_budgeted().await, Err(Timeout), "1 call: 0 retries");
    assert_eq!(up.attempts(), 1);

    let up = Upstream::new([fails(Timeout), fails(Unavailable(None))]);
    assert_eq!(up.ratio_budgeted().await, Err(Unavailable(None)));
    assert_eq!(up.attempts(), 2, "2 calls: 1 retry");

    for _ in 0..4 {
        let up = Upstream::new([ok(1)]);
        assert_eq!(up.ratio_budgeted().await, Ok(1));
    }
    let up = Upstream::new(vec![fails(Timeout); 5]);
    assert_eq!(up.ratio_budgeted().await, Err(Timeout));
    assert_eq!(up.attempts(), 3, "7 calls: 3 retries, 1 taken before");
    let status = budget_status("rp-ratio");
    assert_eq!((status.calls, status.retries, status.available), (7, 3, 0));
}
