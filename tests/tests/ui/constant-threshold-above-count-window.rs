use resilience::circuit_breaker;

mod config {
    pub const THRESHOLD: u32 = 10;
}

#[circuit_breaker(name = "reports", failure_threshold = config::THRESHOLD, window = 5)]
async fn fetch() -> anyhow::Result<u32> {
    Ok(1)
}

fn main() {}
