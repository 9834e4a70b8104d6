use resilience::circuit_breaker;

#[circuit_breaker(failure_rate = 1.5, window = 100)]
async fn fetch() -> anyhow::Result<u32> {
    Ok(1)
}

fn main() {}
