use resilience::circuit_breaker;

#[circuit_breaker(recovery_timeout = 0)]
async fn fetch() -> anyhow::Result<u32> {
    Ok(1)
}

fn main() {}
