//! The expansions use absolute paths only: local items named `core`, `std`,
//! `resilience`, `Result`, `Option` or like our generated locals change nothing.
#![deny(warnings)]
#![allow(non_camel_case_types, dead_code, clippy::disallowed_names)]

mod core {}
mod std {}
mod resilience {}
struct Option;
struct Some;
struct None;
struct Ok;
struct Err;
struct Duration;
struct AtomicBool;
struct Ordering;
trait ResultLike {}
trait Future {}

type Res<T> = ::std::result::Result<T, ::anyhow::Error>;

#[::resilience::resilient(name = "hygiene", max_attempts = 2, delay = "1ms", timeout = 1)]
async fn shadowed(__resilience_result: u32, __resilience_breaker_0: u32) -> Res<u32> {
    let __resilience_retry = __resilience_result + __resilience_breaker_0;
    ::std::result::Result::Ok(__resilience_retry)
}

#[::tokio::test(start_paused = true)]
async fn generated_code_ignores_local_names() {
    assert_eq!(shadowed(1, 2).await.unwrap(), 3);
}
