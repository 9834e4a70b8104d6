use resilience::{circuit_breaker, resilient};

#[circuit_breaker(name = "api")]
#[resilient(max_attempts = 3)]
async fn fetch() -> anyhow::Result<u32> {
    Ok(1)
}

fn main() {}
