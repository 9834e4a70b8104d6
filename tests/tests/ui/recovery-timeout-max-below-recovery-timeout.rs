use resilience::circuit_breaker;

#[circuit_breaker(recovery_timeout = "60s", recovery_timeout_max = "30s")]
async fn fetch() -> anyhow::Result<u32> {
    Ok(1)
}

fn main() {}
