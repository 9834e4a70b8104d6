//! `#[bulkhead]` and `fallback` on the paused clock: waiting for a slot,
//! rejection after `max_wait`, slots given back however a call ends, and the
//! fallback standing in for every kind of failure.

mod support;

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use resilience::{bulkhead, circuit_breaker, registry, resilient, retry, CircuitState};
use support::{in_flight, ms, settle, ApiError};
use tokio::sync::Semaphore;
use tokio::time::Instant;

/// What the full bulkhead `name` (of `max_concurrent` slots) answers.
fn full(name: &str, max_concurrent: u32) -> ApiError {
    let e = resilience::__private::bulkhead_full_of(name).expect("the bulkhead exists");
    assert_eq!(e.max_concurrent(), Some(max_concurrent));
    ApiError::Resilience(e)
}

// ------------------------------------------------------------------ bulkhead

static WAIT_RUNS: AtomicU32 = AtomicU32::new(0);

/// Holds its slot for `hold`.
#[bulkhead(name = "bf-wait", max_concurrent = 2, max_wait = "100ms")]
async fn hold_wait(hold: Duration) -> Result<u32, ApiError> {
    let run = WAIT_RUNS.fetch_add(1, Ordering::SeqCst) + 1;
    tokio::time::sleep(hold).await;
    Ok(run)
}

#[tokio::test(start_paused = true)]
async fn a_full_bulkhead_waits_max_wait_then_rejects_without_running() {
    let a = tokio::spawn(hold_wait(ms(1_000)));
    let b = tokio::spawn(hold_wait(ms(1_000)));
    settle().await;
    assert_eq!(in_flight("bf-wait"), 2);

    let start = Instant::now();
    assert_eq!(hold_wait(ms(0)).await, Err(full("bf-wait", 2)));
    assert_eq!(start.elapsed(), ms(100), "waited exactly max_wait");
    assert_eq!(WAIT_RUNS.load(Ordering::SeqCst), 2, "the body never ran");

    assert!(a.await.unwrap().is_ok());
    assert!(b.await.unwrap().is_ok());
    assert_eq!(in_flight("bf-wait"), 0);
}

#[bulkhead(name = "bf-freed", max_concurrent = 1, max_wait = "100ms")]
async fn hold_freed(hold: Duration) -> Result<Instant, ApiError> {
    let entered = Instant::now();
    tokio::time::sleep(hold).await;
    Ok(entered)
}

#[tokio::test(start_paused = true)]
async fn a_slot_freed_while_waiting_is_taken_at_once() {
    let holder = tokio::spawn(hold_freed(ms(60)));
    settle().await;
    let start = Instant::now();
    let entered = hold_freed(ms(0)).await.expect("got the slot in time");
    assert_eq!(entered - start, ms(60), "entered when the holder left");
    holder.await.unwrap().unwrap();
    assert_eq!(in_flight("bf-freed"), 0);
}

#[bulkhead(name = "bf-no-wait", max_concurrent = 1)]
async fn no_wait(gate: Arc<Semaphore>) -> Result<(), ApiError> {
    let _pass = gate.acquire().await.unwrap();
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn without_max_wait_a_full_bulkhead_rejects_at_once() {
    let gate = Arc::new(Semaphore::new(0));
    let holder = tokio::spawn(no_wait(gate.clone()));
    settle().await;
    let start = Instant::now();
    let rejected = tokio::time::timeout(ms(1), no_wait(gate.clone())).await;
    assert_eq!(rejected, Ok(Err(full("bf-no-wait", 1))), "not admitted");
    assert_eq!(start.elapsed(), Duration::ZERO);
    gate.add_permits(1);
    holder.await.unwrap().unwrap();
    assert_eq!(in_flight("bf-no-wait"), 0);
    gate.add_permits(1);
    assert_eq!(no_wait(gate).await, Ok(()), "free again");
}

/// Holds its slot until `gate` opens, then ends as `how` says.
#[bulkhead(name = "bf-release", max_concurrent = 3)]
async fn released(gate: Arc<Semaphore>, how: &'static str) -> Result<(), ApiError> {
    let _pass = gate.acquire().await.unwrap();
    match how {
        "error" => Err(ApiError::Upstream),
        "panic" => panic!("the body panicked"),
        _ => Ok(()),
    }
}

#[tokio::test(start_paused = true)]
async fn slots_are_given_back_after_success_error_panic_and_cancellation() {
    let gate = Arc::new(Semaphore::new(0));
    let ok = tokio::spawn(released(gate.clone(), "ok"));
    let error = tokio::spawn(released(gate.clone(), "error"));
    let panic = tokio::spawn(released(gate.clone(), "panic"));
    settle().await;
    assert_eq!(in_flight("bf-release"), 3);

    gate.add_permits(3);
    assert_eq!(ok.await.unwrap(), Ok(()));
    assert_eq!(error.await.unwrap(), Err(ApiError::Upstream));
    assert!(panic.await.unwrap_err().is_panic());
    assert_eq!(in_flight("bf-release"), 0);

    // Cancelled: the future is dropped while it holds the slot.
    let never = Arc::new(Semaphore::new(0));
    let cut = tokio::time::timeout(ms(10), released(never.clone(), "ok")).await;
    assert!(cut.is_err(), "still waiting at 10 ms");
    assert_eq!(in_flight("bf-release"), 0);

    // Cancelled while holding the slot in a spawned task: aborted.
    let task = tokio::spawn(released(never, "ok"));
    settle().await;
    assert_eq!(in_flight("bf-release"), 1);
    task.abort();
    assert!(task.await.unwrap_err().is_cancelled());
    assert_eq!(in_flight("bf-release"), 0);
}

#[bulkhead(name = "bf-queue", max_concurrent = 1, max_wait = "1s")]
async fn queued(gate: Arc<Semaphore>) -> Result<(), ApiError> {
    let _pass = gate.acquire().await.unwrap();
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn a_call_cancelled_while_waiting_for_a_slot_leaves_the_queue() {
    let gate = Arc::new(Semaphore::new(0));
    let holder = tokio::spawn(queued(gate.clone()));
    settle().await;
    // Waits for the slot, and is dropped after 10 ms of waiting.
    let cut = tokio::time::timeout(ms(10), queued(gate.clone())).await;
    assert!(cut.is_err());
    assert_eq!(in_flight("bf-queue"), 1, "only the holder");
    gate.add_permits(2);
    holder.await.unwrap().unwrap();
    assert_eq!(in_flight("bf-queue"), 0);
    assert_eq!(queued(gate).await, Ok(()));
}

// ------------------------------------------------------------------ fallback

/// What a call answered: fresh from the body, or stale from the fallback,
/// with the arguments and the error the fallback was given.
#[derive(Debug, PartialEq)]
enum Reply {
    Fresh(u32),
    Stale {
        id: u32,
        key: String,
        cause: ApiError,
    },
}

use Reply::{Fresh, Stale};

fn stale(id: u32, key: &str, cause: ApiError) -> Reply {
    Stale {
        id,
        key: key.to_owned(),
        cause,
    }
}

/// What the open breaker `name` answers, a probe `retry_after` away.
fn open_error(name: &str, retry_after: Duration) -> ApiError {
    let breaker = registry().get(name).expect("the breaker exists");
    let e = resilience::__private::rejection_of(&breaker);
    assert_eq!(e.retry_after(), Some(retry_after));
    ApiError::Resilience(e)
}

static FALLBACKS: AtomicU32 = AtomicU32::new(0);

/// The free function's fallback: the same arguments, plus the error.
async fn from_cache(id: u32, key: &str, error: ApiError) -> Result<Reply, ApiError> {
    FALLBACKS.fetch_add(1, Ordering::SeqCst);
    Ok(stale(id, key, error))
}

static OPEN_RUNS: AtomicU32 = AtomicU32::new(0);

#[circuit_breaker(name = "fb-open", failure_threshold = 1, recovery_timeout = "30s", fallback = from_cache)]
async fn fb_open(id: u32, key: &str) -> Result<Reply, ApiError> {
    OPEN_RUNS.fetch_add(1, Ordering::SeqCst);
    if key == "fail" {
        return Err(ApiError::Upstream);
    }
    Ok(Fresh(id))
}

#[tokio::test(start_paused = true)]
async fn fallback_stands_in_when_the_circuit_is_open() {
    assert_eq!(fb_open(1, "k").await, Ok(Fresh(1)));
    // The failure that opens the circuit reaches the fallback as it is.
    assert_eq!(
        fb_open(2, "fail").await,
        Ok(stale(2, "fail", ApiError::Upstream))
    );
    assert_eq!(
        registry().get("fb-open").unwrap().state(),
        CircuitState::Open
    );
    assert_eq!(
        fb_open(3, "k").await,
        Ok(stale(
            3,
            "k",
            open_error("fb-open", Duration::from_secs(30))
        ))
    );
    assert_eq!(OPEN_RUNS.load(Ordering::SeqCst), 2, "not run while open");
}

static RETRY_RUNS: AtomicU32 = AtomicU32::new(0);

#[retry(max_attempts = 3, backoff = "fixed", delay = "1s", fallback = from_cache)]
async fn fb_retry(id: u32, key: &str) -> Result<Reply, ApiError> {
    let run = RETRY_RUNS.fetch_add(1, Ordering::SeqCst) + 1;
    if key == "fail" || run == 1 {
        return Err(ApiError::Upstream);
    }
    Ok(Fresh(id))
}

#[tokio::test(start_paused = true)]
async fn fallback_stands_in_when_the_retries_are_exhausted() {
    let start = Instant::now();
    assert_eq!(fb_retry(1, "k").await, Ok(Fresh(1)), "the retry succeeded");
    assert_eq!(start.elapsed(), Duration::from_secs(1));

    let start = Instant::now();
    assert_eq!(
        fb_retry(2, "fail").await,
        Ok(stale(2, "fail", ApiError::Upstream))
    );
    assert_eq!(RETRY_RUNS.load(Ordering::SeqCst), 5, "2 + 3 attempts");
    assert_eq!(
        start.elapsed(),
        Duration::from_secs(2),
        "after the last one"
    );
}

#[bulkhead(name = "fb-full", max_concurrent = 1, max_wait = "50ms", fallback = from_cache)]
async fn fb_full(id: u32, key: &str) -> Result<Reply, ApiError> {
    tokio::time::sleep(Duration::from_secs(1)).await;
    let _ = key;
    Ok(Fresh(id))
}

#[tokio::test(start_paused = true)]
async fn fallback_stands_in_when_the_bulkhead_is_full() {
    let holder = tokio::spawn(fb_full(1, "holder"));
    settle().await;
    let start = Instant::now();
    assert_eq!(fb_full(2, "k").await, Ok(stale(2, "k", full("fb-full", 1))));
    assert_eq!(start.elapsed(), ms(50));
    assert_eq!(holder.await.unwrap(), Ok(Fresh(1)));
}

#[resilient(name = "fb-timeout", max_attempts = 2, delay = "1s", timeout = "2s", fallback = from_cache)]
async fn fb_timeout(id: u32, key: &str) -> Result<Reply, ApiError> {
    let _ = key;
    std::future::pending::<()>().await;
    Ok(Fresh(id))
}

#[tokio::test(start_paused = true)]
async fn fallback_stands_in_when_every_attempt_timed_out() {
    let start = Instant::now();
    let timeout = ApiError::Resilience(resilience::Error::timeout(Duration::from_secs(2)));
    assert_eq!(fb_timeout(4, "k").await, Ok(stale(4, "k", timeout)));
    assert_eq!(start.elapsed(), Duration::from_secs(5), "2 s + 1 s + 2 s");
}

static SUCCESS_RUNS: AtomicU32 = AtomicU32::new(0);

#[resilient(name = "fb-success", max_concurrent = 1, timeout = "1s", fallback = never_called)]
async fn fb_success(id: u32, key: &str) -> Result<Reply, ApiError> {
    let _ = key;
    SUCCESS_RUNS.fetch_add(1, Ordering::SeqCst);
    Ok(Fresh(id))
}

async fn never_called(_: u32, _: &str, error: ApiError) -> Result<Reply, ApiError> {
    panic!("fallback called on success with {error:?}")
}

#[tokio::test(start_paused = true)]
async fn fallback_is_not_called_on_success() {
    assert_eq!(fb_success(7, "k").await, Ok(Fresh(7)));
    assert_eq!(fb_success(8, "k").await, Ok(Fresh(8)));
    assert_eq!(SUCCESS_RUNS.load(Ordering::SeqCst), 2);
}

// ------------------------------------------------- fallback on a `&self` method

/// A client whose `fetch` fails, hangs or waits for `gate` as its fields say.
struct Client {
    fail: AtomicU32,
    hang: AtomicU32,
    runs: AtomicU32,
    fallbacks: AtomicU32,
    gate: Semaphore,
}

#[derive(Debug, PartialEq)]
struct Page {
    from: &'static str,
    id: String,
    filter: String,
    cause: Option<ApiError>,
}

impl Client {
    fn new() -> Self {
        Client {
            fail: AtomicU32::new(0),
            hang: AtomicU32::new(0),
            runs: AtomicU32::new(0),
            fallbacks: AtomicU32::new(0),
            gate: Semaphore::new(Semaphore::MAX_PERMITS),
        }
    }

    /// By-value `id` (moved by the body), borrowed `filter`.
    #[resilient(
        name = "fb-method",
        failure_threshold = 2,
        recovery_timeout = "60s",
        max_attempts = 2,
        backoff = "fixed",
        delay = "1s",
        bulkhead = "fb-method",
        max_concurrent = 1,
        max_wait = "10ms",
        timeout = "5s",
        fallback = Self::cached
    )]
    async fn fetch(&self, id: String, filter: &str) -> Result<Page, ApiError> {
        self.runs.fetch_add(1, Ordering::SeqCst);
        let _pass = self.gate.acquire().await.unwrap();
        if self.hang.load(Ordering::SeqCst) > 0 {
            std::future::pending::<()>().await;
        }
        if self.fail.load(Ordering::SeqCst) > 0 {
            return Err(ApiError::Upstream);
        }
        Ok(Page {
            from: "upstream",
            id, // moved: the fallback gets its own copy
            filter: filter.to_owned(),
            cause: None,
        })
    }

    async fn cached(&self, id: String, filter: &str, error: ApiError) -> Result<Page, ApiError> {
        self.fallbacks.fetch_add(1, Ordering::SeqCst);
        Ok(Page {
            from: "cache",
            id,
            filter: filter.to_owned(),
            cause: Some(error),
        })
    }
}

fn cached(id: &str, filter: &str, cause: ApiError) -> Page {
    Page {
        from: "cache",
        id: id.to_owned(),
        filter: filter.to_owned(),
        cause: Some(cause),
    }
}

#[tokio::test(start_paused = true)]
async fn method_fallback_gets_self_the_arguments_and_each_cause() {
    let client = Arc::new(Client::new());
    let filter = String::from("active");

    // Success: no fallback.
    let page = client.fetch("a".into(), &filter).await.unwrap();
    assert_eq!((page.from, &*page.id), ("upstream", "a"));
    assert_eq!(client.fallbacks.load(Ordering::SeqCst), 0);

    // Bulkhead full: a holder keeps the only slot; both attempts wait 10 ms
    // and are rejected (1 s apart), then the fallback answers.
    client.gate.forget_permits(Semaphore::MAX_PERMITS);
    let holder = tokio::spawn({
        let client = client.clone();
        async move { client.fetch("holder".into(), "x").await }
    });
    settle().await;
    let start = Instant::now();
    assert_eq!(
        client.fetch("b".into(), &filter).await,
        Ok(cached("b", "active", full("fb-method", 1)))
    );
    assert_eq!(start.elapsed(), ms(1_020));
    client.gate.add_permits(Semaphore::MAX_PERMITS);
    assert_eq!(holder.await.unwrap().unwrap().from, "upstream");
    registry().reset("fb-method");

    // Timeout: both attempts hang and are cut at 5 s.
    client.hang.store(1, Ordering::SeqCst);
    let start = Instant::now();
    let timeout = ApiError::Resilience(resilience::Error::timeout(Duration::from_secs(5)));
    assert_eq!(
        client.fetch("c".into(), &filter).await,
        Ok(cached("c", "active", timeout))
    );
    assert_eq!(start.elapsed(), Duration::from_secs(11));
    client.hang.store(0, Ordering::SeqCst);

    // Retries exhausted: the last error; this second failed call opens the
    // circuit.
    client.fail.store(1, Ordering::SeqCst);
    assert_eq!(
        client.fetch("d".into(), &filter).await,
        Ok(cached("d", "active", ApiError::Upstream))
    );
    assert_eq!(
        registry().get("fb-method").unwrap().state(),
        CircuitState::Open
    );

    // Circuit open: the body does not run.
    let runs = client.runs.load(Ordering::SeqCst);
    assert_eq!(
        client.fetch("e".into(), &filter).await,
        Ok(cached(
            "e",
            "active",
            open_error("fb-method", Duration::from_secs(60))
        ))
    );
    assert_eq!(client.runs.load(Ordering::SeqCst), runs);
    assert_eq!(client.fallbacks.load(Ordering::SeqCst), 4);
    assert_eq!(in_flight("fb-method"), 0);
}
