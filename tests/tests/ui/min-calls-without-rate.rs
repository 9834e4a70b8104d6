use resilience::circuit_breaker;

#[circuit_breaker(failure_threshold = 5, min_calls = 10)]
async fn fetch() -> anyhow::Result<u32> {
    Ok(1)
}

fn main() {}
