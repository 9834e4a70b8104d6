use resilience::circuit_breaker;

const THRESHOLD: i64 = 5;

#[circuit_breaker(name = "reports", failure_threshold = THRESHOLD)]
async fn fetch() -> anyhow::Result<u32> {
    Ok(1)
}

fn main() {}
