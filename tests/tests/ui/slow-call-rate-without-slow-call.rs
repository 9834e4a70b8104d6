use resilience::circuit_breaker;

#[circuit_breaker(slow_call_rate = 0.5, window = "60s")]
async fn fetch() -> anyhow::Result<u32> {
    Ok(1)
}

fn main() {}
