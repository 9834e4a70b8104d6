//! Instructions per call, counted by callgrind: the numbers that do not
//! drift between runs the way nanoseconds do.
//!
//! ```text
//! bash benches/instructions.sh            # builds this, runs every row, prints the table
//! ```
//!
//! This binary runs one workload (`instructions <row> <calls>`) and nothing
//! else; `instructions.sh` runs each row under `valgrind --tool=callgrind`
//! at two lengths and divides the difference of the two instruction counts
//! by the difference of the lengths, so start-up and set-up cancel out.
//! Every call's outcome is checked (a misconfigured row panics rather than
//! counting a cheaper path), and `sizes` prints the sizes of the errors,
//! results and futures the rows move around.

use std::future::Future;
use std::hint::black_box;
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use failsafe::futures::CircuitBreaker as _;
use resilience::{registry, CircuitBreaker};

const HOUR: Duration = Duration::from_secs(3600);

/// Polls `future` once on a no-op waker (every row completes on its first poll).
fn run<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    let mut cx = Context::from_waker(Waker::noop());
    match future.as_mut().poll(&mut cx) {
        Poll::Ready(output) => output,
        Poll::Pending => panic!("a row's future must complete on its first poll"),
    }
}

mod common;
use common::*;

fn rejected<T>(r: &Result<T, BenchError>) -> bool {
    matches!(r, Err(BenchError::Layer(e)) if e.is_circuit_open())
}

/// Runs `calls` calls of `row`; panics on an unexpected outcome.
fn workload(row: &str, calls: u64) {
    // One call of each closure is one call of the row.
    let mut each: Box<dyn FnMut(u64) -> bool> = match row {
        "bare" => Box::new(|_| run(upstream(black_box(false))).is_ok()),
        "closed-macro" => Box::new(|_| run(macro_closed(black_box(false))).is_ok()),
        "closed-api" => {
            let b = ours_breaker(5, HOUR);
            Box::new(move |_| run(ours_api(&b, black_box(false))).is_ok())
        }
        "open-macro" => {
            let _ = run(macro_open(true));
            Box::new(|_| rejected(&run(macro_open(black_box(false)))))
        }
        "open-api" => {
            let b = ours_breaker(1, HOUR);
            let _ = run(ours_api(&b, true));
            Box::new(move |_| rejected(&run(ours_api(&b, black_box(false)))))
        }
        "failure-macro" => Box::new(|i| {
            // Alternating: a failure, then a success that breaks the run.
            let fail = black_box(i & 1 == 1);
            run(macro_alternate(fail)).is_ok() != fail
        }),
        "retry-macro" => Box::new(|_| run(macro_retry(black_box(false))).is_ok()),
        "resilient-macro" => Box::new(|_| run(macro_resilient(black_box(false))).is_ok()),
        "dynamic-macro" => {
            let client = Client {
                name: "bench-dynamic".to_owned(),
            };
            Box::new(move |_| run(client.get(black_box(false))).is_ok())
        }
        "closed-failsafe" => {
            let fs = failsafe::Config::new()
                .failure_policy(failsafe::failure_policy::consecutive_failures(
                    5,
                    failsafe::backoff::constant(HOUR),
                ))
                .build();
            Box::new(move |_| run(fs.call(upstream(black_box(false)))).is_ok())
        }
        "open-failsafe" => {
            let fs = failsafe::Config::new()
                .failure_policy(failsafe::failure_policy::consecutive_failures(
                    1,
                    failsafe::backoff::constant(HOUR),
                ))
                .build();
            let _ = run(fs.call(upstream(true)));
            Box::new(move |_| {
                matches!(
                    run(fs.call(upstream(black_box(false)))),
                    Err(failsafe::Error::Rejected)
                )
            })
        }
        "closed-recloser" => {
            let rc = recloser::AsyncRecloser::from(
                recloser::Recloser::custom()
                    .error_rate(0.9)
                    .open_wait(HOUR)
                    .build(),
            );
            Box::new(move |_| run(rc.call(upstream(black_box(false)))).is_ok())
        }
        "open-recloser" => {
            let rc = recloser::AsyncRecloser::from(
                recloser::Recloser::custom()
                    .error_rate(0.5)
                    .closed_len(1)
                    .open_wait(HOUR)
                    .build(),
            );
            for _ in 0..4 {
                let _ = run(rc.call(upstream(true)));
            }
            Box::new(move |_| {
                matches!(
                    run(rc.call(upstream(black_box(false)))),
                    Err(recloser::Error::Rejected)
                )
            })
        }
        "sizes" => {
            println!(
                "resilience::Error: {} bytes; Option<Error>: {}; Result<u64, E> with E embedding it: {}",
                std::mem::size_of::<resilience::Error>(),
                std::mem::size_of::<Option<resilience::Error>>(),
                std::mem::size_of::<Result<u64, BenchError>>(),
            );
            println!(
                "future of #[circuit_breaker] fn: {} bytes; of #[resilient] fn: {} bytes; bare: {} bytes",
                std::mem::size_of_val(&macro_closed(false)),
                std::mem::size_of_val(&macro_resilient(false)),
                std::mem::size_of_val(&upstream(false)),
            );
            println!(
                "CircuitBreaker: {} bytes (consecutive rule, no window)",
                std::mem::size_of::<CircuitBreaker>()
            );
            return;
        }
        other => panic!("unknown row {other:?}"),
    };
    for i in 0..calls {
        assert!(each(i), "row {row}: call {i} had an unexpected outcome");
    }
    // The registry is used, so nothing above is optimised away unseen.
    black_box(registry());
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.as_slice() {
        [row, calls] => workload(row, calls.parse().expect("a number of calls")),
        [row] if row == "sizes" => workload(row, 0),
        _ => {
            eprintln!("usage: instructions <row> <calls> | instructions sizes");
            std::process::exit(2);
        }
    }
}
