use std::hash::Hasher;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex as StdMutex;
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio::time::{sleep, Instant};

use super::*;
use crate::test_events::Events;

/// Lets every ready task run, without moving the (paused) clock.
async fn settle() {
    for _ in 0..50 {
        tokio::task::yield_now().await;
    }
}

fn coalescer(name: &'static str) -> Arc<Coalescer> {
    Arc::new(Coalescer::new(name))
}

/// A call of `key` whose body counts its run, waits `secs` and answers the
/// run's number.
fn call(
    c: &Arc<Coalescer>,
    key: u32,
    runs: &Arc<AtomicU32>,
    secs: u64,
) -> JoinHandle<Result<u32, String>> {
    let (c, runs) = (c.clone(), runs.clone());
    tokio::spawn(async move {
        c.run(key, async move {
            let run = runs.fetch_add(1, Ordering::SeqCst) + 1;
            sleep(Duration::from_secs(secs)).await;
            Ok(run)
        })
        .await
    })
}

fn counts(c: &Coalescer) -> (u64, u64, u64, u64, usize) {
    let s = c.status();
    assert_eq!(s.calls, s.leaders + s.followers - s.takeovers, "{s:?}");
    (s.calls, s.leaders, s.followers, s.takeovers, s.in_flight)
}

#[tokio::test(start_paused = true)]
async fn a_hundred_callers_of_one_key_share_one_run() {
    let c = coalescer("hundred");
    let runs = Arc::new(AtomicU32::new(0));
    let calls: Vec<_> = (0..100).map(|_| call(&c, 7, &runs, 1)).collect();
    settle().await;
    assert_eq!(counts(&c), (100, 1, 99, 0, 1), "one key in flight");
    let start = Instant::now();
    for call in calls {
        assert_eq!(call.await.unwrap(), Ok(1));
    }
    assert_eq!(start.elapsed(), Duration::from_secs(1));
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    assert_eq!(counts(&c), (100, 1, 99, 0, 0), "nothing left in flight");
}

#[tokio::test(start_paused = true)]
async fn distinct_keys_run_independently_and_at_once() {
    let c = coalescer("distinct");
    let runs = Arc::new(AtomicU32::new(0));
    let start = Instant::now();
    let calls: Vec<_> = (0..30).map(|i| call(&c, i % 10, &runs, 1)).collect();
    settle().await;
    assert_eq!(counts(&c), (30, 10, 20, 0, 10));
    let mut answers = Vec::new();
    for call in calls {
        answers.push(call.await.unwrap().unwrap());
    }
    assert_eq!(
        start.elapsed(),
        Duration::from_secs(1),
        "the ten ran at once"
    );
    assert_eq!(runs.load(Ordering::SeqCst), 10);
    for key in 0..10 {
        let of_key: Vec<_> = answers.iter().skip(key).step_by(10).collect();
        assert!(of_key.iter().all(|a| *a == of_key[0]), "{of_key:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn a_cancelled_leader_hands_over_to_one_follower() {
    let c = coalescer("handover");
    let runs = Arc::new(AtomicU32::new(0));
    let leader = call(&c, 1, &runs, 10);
    settle().await;
    let followers: Vec<_> = (0..5).map(|_| call(&c, 1, &runs, 1)).collect();
    settle().await;
    assert_eq!(counts(&c), (6, 1, 5, 0, 1));
    assert_eq!(
        runs.load(Ordering::SeqCst),
        1,
        "followers keep their bodies unpolled"
    );

    leader.abort();
    assert!(leader.await.unwrap_err().is_cancelled());
    let start = Instant::now();
    for follower in followers {
        assert_eq!(
            follower.await.unwrap(),
            Ok(2),
            "all answered by the one that took over"
        );
    }
    assert_eq!(start.elapsed(), Duration::from_secs(1));
    assert_eq!(runs.load(Ordering::SeqCst), 2, "one more run");
    assert_eq!(counts(&c), (6, 2, 5, 1, 0));
}

#[tokio::test(start_paused = true)]
async fn leaders_cancelled_in_a_row_hand_over_each_time() {
    let c = coalescer("in-a-row");
    // The calls whose body ran, in order.
    let ran = Arc::new(StdMutex::new(Vec::new()));
    let mut calls: Vec<_> = (0..4usize)
        .map(|i| {
            let (c, ran) = (c.clone(), ran.clone());
            Some(tokio::spawn(async move {
                c.run(1u32, async move {
                    ran.lock().unwrap().push(i);
                    sleep(Duration::from_secs(5)).await;
                    Ok::<_, ()>(i)
                })
                .await
            }))
        })
        .collect();
    for round in 1..=3 {
        settle().await;
        let leader = {
            let ran = ran.lock().unwrap();
            assert_eq!(ran.len(), round, "one body at a time: {ran:?}");
            ran[round - 1]
        };
        let call = calls[leader].take().expect("a leader not cancelled yet");
        call.abort();
        assert!(call.await.unwrap_err().is_cancelled());
    }
    let last = calls.into_iter().flatten().collect::<Vec<_>>();
    assert_eq!(last.len(), 1);
    let answer = last.into_iter().next().unwrap().await.unwrap().unwrap();
    assert_eq!(
        ran.lock().unwrap().last(),
        Some(&answer),
        "the last one ran its own body"
    );
    assert_eq!(counts(&c), (4, 4, 3, 3, 0));
}

#[tokio::test(start_paused = true)]
async fn a_panicking_leader_does_not_hang_its_followers() {
    let c = coalescer("panicking");
    let runs = Arc::new(AtomicU32::new(0));
    let leader = {
        let (c, runs) = (c.clone(), runs.clone());
        tokio::spawn(async move {
            c.run(1u32, async move {
                runs.fetch_add(1, Ordering::SeqCst);
                sleep(Duration::from_secs(1)).await;
                if true {
                    panic!("the leader's body panics");
                }
                Ok::<u32, String>(0)
            })
            .await
        })
    };
    settle().await;
    let followers: Vec<_> = (0..5).map(|_| call(&c, 1, &runs, 1)).collect();
    assert!(
        leader.await.unwrap_err().is_panic(),
        "the panic reaches its own caller"
    );
    for follower in followers {
        assert_eq!(follower.await.unwrap(), Ok(2));
    }
    assert_eq!(counts(&c), (6, 2, 5, 1, 0));
}

#[tokio::test(start_paused = true)]
async fn a_body_that_always_panics_panics_in_each_caller_and_none_hangs() {
    let c = coalescer("always-panics");
    let calls: Vec<_> = (0..5)
        .map(|_| {
            let c = c.clone();
            tokio::spawn(async move {
                c.run(1u32, async {
                    sleep(Duration::from_secs(1)).await;
                    if true {
                        panic!("down");
                    }
                    Ok::<u32, String>(0)
                })
                .await
            })
        })
        .collect();
    let start = Instant::now();
    for call in calls {
        assert!(call.await.unwrap_err().is_panic());
    }
    assert_eq!(start.elapsed(), Duration::from_secs(5), "one after another");
    assert_eq!(counts(&c), (5, 5, 4, 4, 0));
}

#[tokio::test(start_paused = true)]
async fn the_next_call_after_completion_runs_again() {
    let c = coalescer("again");
    let runs = Arc::new(AtomicU32::new(0));
    for run in 1..=3 {
        assert_eq!(call(&c, 1, &runs, 1).await.unwrap(), Ok(run));
    }
    assert_eq!(counts(&c), (3, 3, 0, 0, 0));
}

#[tokio::test(start_paused = true)]
async fn errors_are_shared_too() {
    let c = coalescer("errors");
    let runs = Arc::new(AtomicU32::new(0));
    let calls: Vec<_> = (0..10)
        .map(|_| {
            let (c, runs) = (c.clone(), runs.clone());
            tokio::spawn(async move {
                c.run("key".to_owned(), async move {
                    runs.fetch_add(1, Ordering::SeqCst);
                    sleep(Duration::from_secs(1)).await;
                    Err::<u32, _>(format!("down ({} runs)", runs.load(Ordering::SeqCst)))
                })
                .await
            })
        })
        .collect();
    for call in calls {
        assert_eq!(call.await.unwrap(), Err("down (1 runs)".to_owned()));
    }
    assert_eq!(runs.load(Ordering::SeqCst), 1);
}

#[tokio::test(start_paused = true)]
async fn keys_or_results_of_other_types_never_meet() {
    let c = Coalescer::new("types");
    let runs = AtomicU32::new(0);
    let body = |value| {
        let runs = &runs;
        async move {
            runs.fetch_add(1, Ordering::SeqCst);
            sleep(Duration::from_secs(1)).await;
            Ok::<u64, ()>(value)
        }
    };
    let (a, b, c32, d) = tokio::join!(
        c.run(7u32, body(1)),
        c.run(7u64, body(2)),
        c.run(7u32, body(3)),
        c.run(7u32, async { Ok::<&str, ()>("a str") }),
    );
    assert_eq!((a, b, c32, d), (Ok(1), Ok(2), Ok(1), Ok("a str")));
    assert_eq!(
        runs.load(Ordering::SeqCst),
        2,
        "the second `7u32` followed the first"
    );
    assert_eq!(counts(&c), (4, 3, 1, 0, 0));
}

/// Every value hashes alike: every flight of this type collides.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Colliding(u32);

impl Hash for Colliding {
    fn hash<H: Hasher>(&self, _: &mut H) {}
}

#[tokio::test(start_paused = true)]
async fn colliding_keys_are_told_apart_by_their_full_value() {
    let c = coalescer("colliding");
    let runs = Arc::new(AtomicU32::new(0));
    let calls: Vec<_> = (0..9u32)
        .map(|i| {
            let (c, runs) = (c.clone(), runs.clone());
            tokio::spawn(async move {
                c.run(Colliding(i % 3), async move {
                    runs.fetch_add(1, Ordering::SeqCst);
                    // Each key ends at its own time: the chain shrinks from
                    // the middle, the front and the back.
                    sleep(Duration::from_secs([2, 1, 3][(i % 3) as usize])).await;
                    Ok::<_, ()>(i % 3)
                })
                .await
            })
        })
        .collect();
    settle().await;
    assert_eq!(counts(&c), (9, 3, 6, 0, 3));
    for (i, call) in calls.into_iter().enumerate() {
        assert_eq!(call.await.unwrap(), Ok(i as u32 % 3));
    }
    assert_eq!(runs.load(Ordering::SeqCst), 3);
    assert_eq!(counts(&c).4, 0);

    // A cancelled leader in a chain: the others go on.
    let a = call_colliding(&c, 0, 5);
    let b = call_colliding(&c, 1, 1);
    settle().await;
    assert_eq!(counts(&c).4, 2);
    a.abort();
    assert_eq!(b.await.unwrap(), Ok(1));
    assert_eq!(counts(&c).4, 0);
}

fn call_colliding(c: &Arc<Coalescer>, key: u32, secs: u64) -> JoinHandle<Result<u32, ()>> {
    let c = c.clone();
    tokio::spawn(async move {
        c.run(Colliding(key), async move {
            sleep(Duration::from_secs(secs)).await;
            Ok(key)
        })
        .await
    })
}

/// Counts its clones.
#[derive(Debug)]
struct Counted(Arc<AtomicU32>);

impl Clone for Counted {
    fn clone(&self) -> Self {
        self.0.fetch_add(1, Ordering::SeqCst);
        Counted(self.0.clone())
    }
}

#[tokio::test(start_paused = true)]
async fn n_followers_cost_n_clones_and_a_lone_leader_none() {
    let c = coalescer("clones");
    let clones = Arc::new(AtomicU32::new(0));
    let spawn = |c: &Arc<Coalescer>| {
        let (c, clones) = (c.clone(), clones.clone());
        tokio::spawn(async move {
            c.run(1u8, async move {
                sleep(Duration::from_secs(1)).await;
                Ok::<_, ()>(Counted(clones))
            })
            .await
            .map(drop)
        })
    };
    spawn(&c).await.unwrap().unwrap();
    assert_eq!(clones.load(Ordering::SeqCst), 0, "alone: no clone");

    let calls: Vec<_> = (0..4).map(|_| spawn(&c)).collect();
    for call in calls {
        call.await.unwrap().unwrap();
    }
    assert_eq!(
        clones.load(Ordering::SeqCst),
        3,
        "three followers, three clones"
    );

    // A follower gone before the answer costs nothing.
    clones.store(0, Ordering::SeqCst);
    let mut calls: Vec<_> = (0..4).map(|_| spawn(&c)).collect();
    settle().await;
    calls.pop().unwrap().abort();
    for call in calls {
        call.await.unwrap().unwrap();
    }
    assert_eq!(clones.load(Ordering::SeqCst), 2);
}

#[tokio::test(start_paused = true)]
async fn a_follower_cancelled_while_waiting_leaves_the_others_be() {
    let c = coalescer("follower-cancelled");
    let runs = Arc::new(AtomicU32::new(0));
    let leader = call(&c, 1, &runs, 1);
    settle().await;
    let gone = call(&c, 1, &runs, 1);
    let stays = call(&c, 1, &runs, 1);
    settle().await;
    gone.abort();
    assert_eq!(leader.await.unwrap(), Ok(1));
    assert_eq!(stays.await.unwrap(), Ok(1));
    assert_eq!(runs.load(Ordering::SeqCst), 1);
}

#[tokio::test(start_paused = true)]
async fn a_lone_leader_cancelled_leaves_nothing_behind() {
    let c = Coalescer::new("lone");
    let slow = c.run(1u32, async {
        sleep(Duration::from_secs(10)).await;
        Ok::<_, ()>(1)
    });
    assert!(tokio::time::timeout(Duration::from_secs(1), slow)
        .await
        .is_err());
    assert_eq!(counts(&c), (1, 1, 0, 0, 0));
    assert_eq!(c.run(1u32, async { Ok::<_, ()>(2) }).await, Ok(2));
    assert_eq!(counts(&c), (2, 2, 0, 0, 0));
}

#[tokio::test(start_paused = true)]
async fn an_unpolled_call_joins_nothing() {
    let c = Coalescer::new("unpolled");
    let never = c.run(1u32, async { Ok::<_, ()>(0) });
    assert_eq!(c.run(1u32, async { Ok::<_, ()>(1) }).await, Ok(1));
    drop(never);
    assert_eq!(counts(&c), (1, 1, 0, 0, 0));
}

static STATIC: Coalescer = Coalescer::new("static");

#[tokio::test(start_paused = true)]
async fn a_static_serves_borrowing_bodies_and_its_futures_are_send() {
    fn send<T: Send>(t: T) -> T {
        t
    }
    let local = String::from("borrowed");
    let (a, b) = tokio::join!(
        send(STATIC.run(1u32, async {
            tokio::task::yield_now().await;
            Ok::<_, ()>(local.len())
        })),
        STATIC.run(1u32, async { Ok::<_, ()>(0usize) }),
    );
    assert_eq!((a, b), (Ok(8), Ok(8)));
    assert_eq!(format!("{STATIC:?}"), "Coalescer { name: \"static\", calls: 2, leaders: 1, followers: 1, takeovers: 0, in_flight: 0 }");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn many_threads_many_keys_and_cancellations_never_hang() {
    let c = coalescer("threads");
    let mut calls = Vec::new();
    for i in 0..2000u32 {
        let c = c.clone();
        let key = i % 13;
        let call = tokio::spawn(async move {
            c.run(key, async move {
                for _ in 0..(i % 7) {
                    tokio::task::yield_now().await;
                }
                Ok::<_, ()>(key * 10)
            })
            .await
        });
        if i % 5 == 0 {
            call.abort();
        }
        calls.push((key, call));
    }
    let all = async {
        for (key, call) in calls {
            match call.await {
                Ok(answer) => assert_eq!(answer, Ok(key * 10)),
                Err(e) => assert!(e.is_cancelled()),
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(60), all)
        .await
        .expect("no call hangs");
    let (calls, ..) = counts(&c);
    assert!(calls >= 1600, "{calls}");
    assert_eq!(counts(&c).4, 0);
}

#[tokio::test(start_paused = true)]
async fn joining_and_taking_over_are_logged() {
    let events = Events::all();
    let _default = tracing::subscriber::set_default(events.clone());
    let c = coalescer("logged");
    let runs = Arc::new(AtomicU32::new(0));
    let leader = call(&c, 1, &runs, 10);
    settle().await;
    let follower = call(&c, 1, &runs, 1);
    settle().await;
    leader.abort();
    assert_eq!(follower.await.unwrap(), Ok(2));
    let events = events.lines();
    assert_eq!(
        *events,
        [
            "message=coalesce `logged`: a call joined the call of its key in flight; coalesce=\"logged\"; ",
            "message=coalesce `logged`: the leader of a call was cancelled; its 1 followers start over; coalesce=\"logged\"; waiting=1; ",
            "message=coalesce `logged`: a follower took over from its leader and runs its own body; coalesce=\"logged\"; ",
        ]
    );
}

#[cfg(feature = "metrics")]
#[test]
fn coalesced_calls_are_counted_in_metrics() {
    let figures = crate::metrics::tests::recorded(|| async {
        let c = Coalescer::new("metered");
        let body = || async {
            sleep(Duration::from_millis(10)).await;
            Ok::<u32, ()>(1)
        };
        let (a, b, d) = tokio::join!(c.run(1u8, body()), c.run(1u8, body()), c.run(1u8, body()));
        assert_eq!((a, b, d), (Ok(1), Ok(1), Ok(1)));
    });
    assert_eq!(
        figures.into_iter().collect::<Vec<_>>(),
        [("resilience_coalesced_total{name=metered}".to_owned(), 2.0)],
        "two callers waited for the first"
    );
}
