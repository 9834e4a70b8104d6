use resilience::{circuit_breaker, resilient, retry};

#[circuit_breaker(name = "api")]
#[retry(max_attempts = 3)]
#[resilient(timeout = "30s")]
async fn fetch() -> anyhow::Result<u32> {
    Ok(1)
}

fn main() {}
