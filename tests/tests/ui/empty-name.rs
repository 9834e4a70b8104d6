use resilience::circuit_breaker;

#[circuit_breaker(name = "")]
async fn fetch() -> anyhow::Result<u32> {
    Ok(1)
}

fn main() {}
