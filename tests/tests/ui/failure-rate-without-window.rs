use resilience::circuit_breaker;

#[circuit_breaker(failure_rate = 0.5)]
async fn fetch() -> anyhow::Result<u32> {
    Ok(1)
}

fn main() {}
