use resilience::circuit_breaker;

#[circuit_breaker(max_attempts = 3)]
async fn fetch() -> anyhow::Result<u32> {
    Ok(1)
}

fn main() {}
