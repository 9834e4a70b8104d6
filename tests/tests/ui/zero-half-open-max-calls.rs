use resilience::circuit_breaker;

#[circuit_breaker(half_open_max_calls = 0)]
async fn fetch() -> anyhow::Result<u32> {
    Ok(1)
}

fn main() {}
