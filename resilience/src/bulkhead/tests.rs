use std::sync::mpsc;

use super::*;
use crate::test_events::Events;

fn bulkhead(n: u32, wait_ms: u64) -> Bulkhead {
    Bulkhead::new(
        "b",
        NonZeroU32::new(n).unwrap(),
        Duration::from_millis(wait_ms),
    )
}

fn limit(n: u32) -> NonZeroU32 {
    NonZeroU32::new(n).unwrap()
}

/// Lets every ready task run, without moving the (paused) clock.
async fn settle() {
    for _ in 0..20 {
        tokio::task::yield_now().await;
    }
}

/// The semaphore holds `max_concurrent + debt` permits, free or held.
fn debt(b: &Bulkhead) -> u32 {
    unpack(b.limits.load(Ordering::SeqCst)).1
}

#[tokio::test(start_paused = true)]
async fn waits_up_to_max_wait_then_rejects() {
    let b = bulkhead(1, 100);
    let held = b.acquire().await.unwrap();
    let start = tokio::time::Instant::now();
    let err = b.acquire().await.unwrap_err();
    assert_eq!(start.elapsed(), Duration::from_millis(100));
    assert!(err.is_bulkhead_full());
    assert_eq!(
        (err.name().as_deref(), err.max_concurrent()),
        (Some("b"), Some(1))
    );
    assert_eq!(b.in_flight(), 1);
    drop(held);
    assert_eq!(b.in_flight(), 0);
}

#[tokio::test(start_paused = true)]
async fn a_slot_freed_while_waiting_is_taken() {
    let b = Arc::new(bulkhead(1, 100));
    let held = b.acquire().await.unwrap();
    let waiter = {
        let b = b.clone();
        tokio::spawn(async move { b.acquire().await.map(drop).is_ok() })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    drop(held);
    assert!(waiter.await.unwrap());
}

#[tokio::test(start_paused = true)]
async fn raising_the_limit_admits_a_waiting_call_at_once() {
    let b = Arc::new(bulkhead(1, 1_000));
    let held = b.acquire().await.unwrap();
    let start = tokio::time::Instant::now();
    let waiter = {
        let b = b.clone();
        tokio::spawn(async move {
            let permit = b.acquire().await.map(drop);
            (permit.is_ok(), start.elapsed())
        })
    };
    settle().await;
    assert!(!waiter.is_finished(), "waits while the only slot is held");
    b.set_limits(limit(2), Duration::from_millis(1_000));
    assert_eq!(b.max_concurrent().get(), 2);
    assert_eq!(waiter.await.unwrap(), (true, Duration::ZERO));
    assert_eq!(b.in_flight(), 1);
    // And the raise is room for one more while `held` runs.
    let second = b.acquire().await.unwrap();
    assert_eq!(b.in_flight(), 2);
    assert!(b.try_take().is_none());
    drop((held, second));
    assert_eq!((b.in_flight(), debt(&b)), (0, 0));
}

#[tokio::test(start_paused = true)]
async fn lowering_below_in_flight_admits_nothing_until_enough_calls_finish() {
    let b = bulkhead(3, 0);
    let mut running = Vec::new();
    for _ in 0..3 {
        running.push(b.acquire().await.unwrap());
    }
    let mut running = running.into_iter();
    assert_eq!(b.in_flight(), 3);

    b.set_limits(limit(1), Duration::ZERO);
    assert_eq!(
        (b.max_concurrent().get(), b.in_flight(), debt(&b)),
        (1, 3, 2),
        "running calls are never cut"
    );
    assert!(b.acquire().await.is_err());
    drop(running.next());
    assert_eq!((b.in_flight(), debt(&b)), (2, 1));
    assert!(b.acquire().await.is_err(), "2 in flight, limit 1");
    drop(running.next());
    assert_eq!((b.in_flight(), debt(&b)), (1, 0));
    assert!(b.acquire().await.is_err(), "1 in flight, limit 1");
    drop(running.next());
    assert_eq!(b.in_flight(), 0);

    // Then exactly the new limit.
    let one = b.acquire().await.unwrap();
    assert_eq!(b.in_flight(), 1);
    assert!(b.acquire().await.is_err());
    drop(one);
    assert_eq!((b.in_flight(), b.semaphore.available_permits()), (0, 1));
}

#[tokio::test(start_paused = true)]
async fn lowering_with_calls_waiting_admits_them_only_under_the_new_limit() {
    let b = Arc::new(bulkhead(2, 10_000));
    let first = b.acquire().await.unwrap();
    let second = b.acquire().await.unwrap();
    let start = tokio::time::Instant::now();
    let waiter = |b: Arc<Bulkhead>| {
        tokio::spawn(async move {
            let permit = b.acquire().await.unwrap();
            let admitted = start.elapsed();
            tokio::time::sleep(Duration::from_millis(10)).await;
            drop(permit);
            admitted
        })
    };
    let (w1, w2) = (waiter(b.clone()), waiter(b.clone()));
    settle().await;

    b.set_limits(limit(1), Duration::from_millis(10_000));
    drop(first);
    settle().await;
    assert_eq!(b.in_flight(), 1, "the freed slot paid the debt");
    assert!(!w1.is_finished() && !w2.is_finished());
    assert_eq!(b.semaphore.available_permits(), 0);

    tokio::time::sleep(Duration::from_millis(100)).await;
    drop(second);
    settle().await;
    assert_eq!(
        b.in_flight(),
        1,
        "one waiter admitted, the other still waits"
    );
    let (a1, a2) = (w1.await.unwrap(), w2.await.unwrap());
    let mut admitted = [a1, a2];
    admitted.sort();
    assert_eq!(
        admitted,
        [Duration::from_millis(100), Duration::from_millis(110)],
        "one at a time: the second waiter runs when the first is done"
    );
    assert_eq!((b.in_flight(), debt(&b)), (0, 0));
}

#[tokio::test(start_paused = true)]
async fn the_full_error_reports_the_limit_in_force() {
    let b = bulkhead(2, 0);
    let held = [b.acquire().await.unwrap(), b.acquire().await.unwrap()];
    let before = b.acquire().await.unwrap_err();
    assert_eq!(before.max_concurrent(), Some(2));

    b.set_limits(limit(1), Duration::ZERO);
    let lowered = b.acquire().await.unwrap_err();
    assert_eq!(lowered.max_concurrent(), Some(1));
    assert_eq!(
        lowered.to_string(),
        "bulkhead `b` is full (1 calls in flight)"
    );
    assert_eq!(b.full_error().max_concurrent(), Some(1));

    b.set_limits(limit(2), Duration::ZERO);
    let raised = b.acquire().await.unwrap_err();
    assert_eq!(raised.max_concurrent(), Some(2));
    assert_eq!(b.in_flight(), 2);
    drop(held);
}

#[tokio::test(start_paused = true)]
async fn a_new_max_wait_applies_to_the_next_acquire() {
    let b = bulkhead(1, 100);
    let _held = b.acquire().await.unwrap();

    b.set_limits(limit(1), Duration::from_millis(250));
    assert_eq!(b.max_wait(), Duration::from_millis(250));
    let start = tokio::time::Instant::now();
    assert!(b.acquire().await.is_err());
    assert_eq!(start.elapsed(), Duration::from_millis(250));

    b.set_limits(limit(1), Duration::ZERO);
    let start = tokio::time::Instant::now();
    assert!(b.acquire().await.is_err());
    assert_eq!(start.elapsed(), Duration::ZERO);
    assert_eq!(
        b.status(),
        BulkheadStatus {
            name: "b".into(),
            in_flight: 1,
            max_concurrent: 1,
            max_wait: Duration::ZERO,
        }
    );
}

#[tokio::test(start_paused = true)]
async fn a_raise_first_cancels_debt() {
    let b = bulkhead(4, 0);
    let held: Vec<_> = (0..4).map(|_| b.try_take().unwrap()).collect();
    b.set_limits(limit(1), Duration::ZERO);
    assert_eq!((b.in_flight(), debt(&b)), (4, 3));
    // 1 → 3: two slots of debt cancelled, no permit added, still full.
    b.set_limits(limit(3), Duration::ZERO);
    assert_eq!((b.in_flight(), debt(&b)), (4, 1));
    assert!(b.try_take().is_none());
    // 3 → 6: the last slot of debt, then two new permits.
    b.set_limits(limit(6), Duration::ZERO);
    assert_eq!((b.in_flight(), debt(&b)), (4, 0));
    let more = [b.try_take().unwrap(), b.try_take().unwrap()];
    assert!(b.try_take().is_none());
    assert_eq!(b.in_flight(), 6);
    drop((held, more));
    assert_eq!((b.in_flight(), b.semaphore.available_permits()), (0, 6));
}

#[tokio::test(start_paused = true)]
async fn lowering_forgets_free_slots_at_once() {
    let b = bulkhead(5, 0);
    let held = b.acquire().await.unwrap();
    b.set_limits(limit(2), Duration::ZERO);
    // Four free, three forgotten: no debt, one free.
    assert_eq!((b.in_flight(), debt(&b)), (1, 0));
    assert_eq!(b.semaphore.available_permits(), 1);
    let second = b.acquire().await.unwrap();
    assert!(b.acquire().await.is_err());
    drop((held, second));
    assert_eq!(b.in_flight(), 0);
}

#[test]
fn a_permit_given_back_late_pays_the_debt_when_taken() {
    // The race `unless_owed` closes: a call that ended while the limit was
    // lowered found no debt and gave its permit back after the free ones
    // were forgotten. Reproduced by hand: the permit goes back straight to
    // the semaphore.
    let b = bulkhead(2, 0);
    let (first, second) = (b.try_take().unwrap(), b.try_take().unwrap());
    b.set_limits(limit(1), Duration::ZERO);
    assert_eq!(debt(&b), 1);
    drop(first); // not `give_back`: the permit is free again, and owed
    assert_eq!(b.in_flight(), 1, "exact all the same");
    assert!(
        b.try_take().is_none(),
        "the free permit paid the debt instead"
    );
    assert_eq!((b.in_flight(), debt(&b)), (1, 0));
    b.give_back(second);
    assert!(b.try_take().is_some());
}

#[test]
fn a_blocking_acquire_honours_a_raise() {
    let b = Arc::new(bulkhead(1, 60_000));
    let held = b.acquire_blocking().unwrap();
    let (started_tx, started) = mpsc::channel();
    let (done_tx, done) = mpsc::channel();
    let waiter = {
        let b = b.clone();
        std::thread::spawn(move || {
            started_tx.send(()).unwrap();
            let start = std::time::Instant::now();
            let permit = b.acquire_blocking();
            done_tx.send((permit.is_ok(), start.elapsed())).unwrap();
            // Hold the slot until the main thread has looked.
            std::thread::park();
        })
    };
    started.recv_timeout(Duration::from_secs(10)).unwrap();
    assert_eq!(
        done.recv_timeout(Duration::from_millis(20)),
        Err(mpsc::RecvTimeoutError::Timeout),
        "waits while the only slot is held"
    );
    b.set_limits(limit(2), Duration::from_secs(60));
    let (admitted, waited) = done.recv_timeout(Duration::from_secs(10)).unwrap();
    assert!(admitted);
    assert!(waited < Duration::from_secs(60), "admitted by the raise");
    assert_eq!(b.in_flight(), 2);
    waiter.thread().unpark();
    waiter.join().unwrap();
    drop(held);
    assert_eq!((b.in_flight(), debt(&b)), (0, 0));
}

#[test]
fn a_blocking_acquire_honours_a_lowered_limit() {
    let b = bulkhead(2, 0);
    let (first, second) = (b.acquire_blocking().unwrap(), b.acquire_blocking().unwrap());
    b.set_limits(limit(1), Duration::ZERO);
    drop(first);
    assert!(b.acquire_blocking().is_err());
    drop(second);
    let only = b.acquire_blocking().unwrap();
    assert!(b.acquire_blocking().is_err());
    drop(only);
}

#[test]
fn limits_changed_under_load_stay_exact() {
    // Callers on four threads take and give back slots while two threads
    // change the limits; once all are done, every slot is accounted for
    // and the last limit holds exactly.
    let b = Arc::new(bulkhead(4, 0));
    let callers: Vec<_> = (0..4)
        .map(|_| {
            let b = b.clone();
            std::thread::spawn(move || {
                for _ in 0..2_000 {
                    if let Ok(permit) = b.acquire_blocking() {
                        assert!(b.in_flight() >= 1);
                        drop(permit);
                    }
                }
            })
        })
        .collect();
    let changers: Vec<_> = (0..2u32)
        .map(|t| {
            let b = b.clone();
            std::thread::spawn(move || {
                for i in 0..500u32 {
                    b.set_limits(limit(1 + (i * 7 + t * 3) % 6), Duration::ZERO);
                }
            })
        })
        .collect();
    for t in callers.into_iter().chain(changers) {
        t.join().unwrap();
    }
    assert_eq!(b.in_flight(), 0);
    b.set_limits(limit(3), Duration::ZERO);
    let held: Vec<_> = (0..3).map(|_| b.acquire_blocking().unwrap()).collect();
    assert!(b.acquire_blocking().is_err(), "exactly the last limit");
    assert_eq!(b.in_flight(), 3);
    drop(held);
    assert_eq!(b.in_flight(), 0);
}

#[test]
fn every_change_is_logged_and_no_change_is_not() {
    let events = Events::at(tracing::Level::INFO);
    tracing::subscriber::with_default(events.clone(), || {
        let b = Bulkhead::new("logged", limit(2), Duration::from_millis(5));
        b.set_limits(limit(2), Duration::from_millis(5)); // nothing changed
        b.set_limits(limit(4), Duration::from_millis(5));
        b.set_limits(limit(4), Duration::from_millis(50));
    });
    let events = events.lines();
    assert_eq!(events.len(), 2, "{events:?}");
    assert_eq!(
        events[0],
        "message=bulkhead `logged` limits changed: max_concurrent 2 → 4, max_wait 5ms → 5ms; \
         bulkhead=\"logged\"; old_max_concurrent=2; max_concurrent=4; \
         old_max_wait=5ms; max_wait=5ms; "
    );
    assert!(
        events[1].contains("max_concurrent 4 → 4, max_wait 5ms → 50ms"),
        "{}",
        events[1]
    );
}

#[test]
fn the_limits_read_back_as_set_and_as_changed() {
    let b = bulkhead(4, 25);
    assert_eq!(b.max_concurrent().get(), 4);
    assert_eq!(b.max_wait(), Duration::from_millis(25));
    b.set_limits(NonZeroU32::new(9).unwrap(), Duration::from_secs(2));
    assert_eq!(b.max_concurrent().get(), 9);
    assert_eq!(b.max_wait(), Duration::from_secs(2));
}

#[tokio::test(start_paused = true)]
async fn debug_output_shows_the_limits_and_what_is_in_flight() {
    let b = bulkhead(2, 50);
    let _held = b.acquire().await.unwrap();
    assert_eq!(
        format!("{b:?}"),
        "Bulkhead { name: \"b\", max_concurrent: 2, max_wait: 50ms, in_flight: 1, debt: 0, .. }"
    );
}
