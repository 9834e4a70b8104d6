use std::future::Future;

use resilience::circuit_breaker;

#[circuit_breaker(name = "counts")]
fn count() -> impl Future<Output = u32> {
    async { 1 }
}

fn main() {}
