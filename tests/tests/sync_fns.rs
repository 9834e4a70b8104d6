//! The layers on synchronous functions (blocking clients: database
//! drivers, SDKs without async): the same names, the same registry, the
//! same breakers as async call sites; retries sleep the thread; a full
//! bulkhead parks the thread up to `max_wait`. Blocking code runs on no
//! runtime, so these use the real clock, with short, bounded waits.

mod support;

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use resilience::{bulkhead, circuit_breaker, registry, resilient, retry, CircuitState};
use support::ApiError;

static SYNC_RUNS: AtomicU32 = AtomicU32::new(0);

#[circuit_breaker(name = "sync-shared", failure_threshold = 2, recovery_timeout = "1m")]
fn query(fail: bool) -> Result<u32, ApiError> {
    SYNC_RUNS.fetch_add(1, Ordering::SeqCst);
    if fail {
        return Err(ApiError::Upstream);
    }
    Ok(1)
}

#[circuit_breaker(name = "sync-shared", failure_threshold = 2, recovery_timeout = "1m")]
async fn query_async() -> Result<u32, ApiError> {
    Ok(2)
}

#[tokio::test]
async fn a_sync_and_an_async_call_site_of_one_name_share_one_breaker() {
    assert_eq!(query(false), Ok(1));
    assert_eq!(query(true), Err(ApiError::Upstream));
    assert_eq!(query(true), Err(ApiError::Upstream));
    assert_eq!(
        registry().get("sync-shared").unwrap().state(),
        CircuitState::Open
    );
    assert!(support::is_open(&query(false)), "rejected without running");
    assert!(
        support::is_open(&query_async().await),
        "the async site shares it"
    );
    assert_eq!(SYNC_RUNS.load(Ordering::SeqCst), 3);
}

static ATTEMPTS: AtomicU32 = AtomicU32::new(0);

#[retry(max_attempts = 3, backoff = "fixed", delay = "5ms")]
fn flaky(key: String) -> Result<String, ApiError> {
    let n = ATTEMPTS.fetch_add(1, Ordering::SeqCst) + 1;
    if n < 3 {
        Err(ApiError::Upstream)
    } else {
        Ok(format!("{key}:{n}"))
    }
}

#[test]
fn a_sync_retry_sleeps_the_thread_between_attempts() {
    let start = Instant::now();
    assert_eq!(flaky("k".to_owned()), Ok("k:3".to_owned()));
    let took = start.elapsed();
    assert!(
        took >= Duration::from_millis(10),
        "two sleeps of 5 ms: {took:?}"
    );
    assert!(took < Duration::from_secs(5), "{took:?}");
}

#[bulkhead(name = "sync-db", max_concurrent = 1, max_wait = "30ms")]
fn hold(until: Option<mpsc::Receiver<()>>) -> Result<(), ApiError> {
    if let Some(until) = until {
        let _ = until.recv_timeout(Duration::from_secs(5));
    }
    Ok(())
}

#[bulkhead(name = "sync-db-patient", max_concurrent = 1, max_wait = "10s")]
fn hold_patiently(until: Option<mpsc::Receiver<()>>) -> Result<(), ApiError> {
    if let Some(until) = until {
        let _ = until.recv_timeout(Duration::from_secs(5));
    }
    Ok(())
}

/// Waits (bounded) until `name`'s only slot is taken.
fn until_taken(name: &str) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while support::in_flight_or_zero(name) == 0 {
        assert!(Instant::now() < deadline, "the holder never got the slot");
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[test]
fn a_full_sync_bulkhead_parks_the_thread_up_to_max_wait() {
    let (release, until) = mpsc::channel();
    let holder = std::thread::spawn(move || hold(Some(until)));
    until_taken("sync-db");
    let start = Instant::now();
    let rejected = hold(None);
    assert!(
        matches!(&rejected, Err(ApiError::Resilience(e)) if e.is_bulkhead_full()),
        "{rejected:?}"
    );
    assert!(
        start.elapsed() >= Duration::from_millis(30),
        "waited max_wait"
    );
    release.send(()).unwrap();
    assert_eq!(holder.join().unwrap(), Ok(()));
    assert_eq!(support::in_flight("sync-db"), 0);
}

#[test]
fn a_slot_freed_while_a_thread_waits_wakes_it() {
    let (release, until) = mpsc::channel();
    let holder = std::thread::spawn(move || hold_patiently(Some(until)));
    until_taken("sync-db-patient");
    let waiter = std::thread::spawn(|| {
        let start = Instant::now();
        (hold_patiently(None), start.elapsed())
    });
    std::thread::sleep(Duration::from_millis(20));
    release.send(()).unwrap();
    assert_eq!(holder.join().unwrap(), Ok(()));
    let (admitted, waited) = waiter.join().unwrap();
    assert_eq!(admitted, Ok(()), "woken when the slot freed");
    assert!(
        waited < Duration::from_secs(10),
        "not by the end of max_wait: {waited:?}"
    );
    assert_eq!(support::in_flight("sync-db-patient"), 0);
}

fn cached(id: u32, error: ApiError) -> Result<String, ApiError> {
    Ok(format!("cached {id} after {error}"))
}

#[resilient(
    name = "sync-resilient",
    failure_threshold = 5,
    max_attempts = 2,
    backoff = "fixed",
    delay = "1ms",
    fallback = cached
)]
fn fetch(id: u32) -> Result<String, ApiError> {
    let _ = id;
    Err(ApiError::Upstream)
}

#[test]
fn resilient_with_a_fallback_on_a_sync_fn() {
    assert_eq!(fetch(7), Ok("cached 7 after upstream failed".to_owned()));
}

struct Conn {
    uses: u32,
}

impl Conn {
    #[circuit_breaker]
    #[retry(max_attempts = 3, backoff = "fixed", delay = "1ms")]
    fn exec(&mut self, sql: &str) -> Result<usize, ApiError> {
        self.uses += 1;
        if self.uses < 2 {
            return Err(ApiError::Upstream);
        }
        Ok(sql.len())
    }
}

#[test]
fn mut_self_methods_are_retried_and_named_after_their_type() {
    let mut conn = Conn { uses: 0 };
    assert_eq!(conn.exec("select 1"), Ok(8));
    assert_eq!(conn.uses, 2);
    assert!(registry().get("sync_fns::Conn::exec").is_some());
}

#[circuit_breaker(name = "sync-panics", failure_threshold = 1, recovery_timeout = "1m")]
fn panics() -> Result<(), ApiError> {
    panic!("the driver crashed")
}

#[test]
fn a_panic_is_a_failure_and_keeps_unwinding() {
    assert!(std::panic::catch_unwind(panics).is_err());
    assert_eq!(
        registry().get("sync-panics").unwrap().state(),
        CircuitState::Open
    );
}
