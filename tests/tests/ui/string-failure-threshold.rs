use resilience::circuit_breaker;

#[circuit_breaker(failure_threshold = "5")]
async fn fetch() -> anyhow::Result<u32> {
    Ok(1)
}

fn main() {}
