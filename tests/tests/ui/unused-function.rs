#![deny(dead_code)]
use resilience::circuit_breaker;

// An annotated function keeps its own location: an unused one is reported.
#[circuit_breaker(name = "api")]
async fn never_called() -> anyhow::Result<u32> {
    Ok(1)
}

fn main() {}
