use resilience::retry;

#[retry(backoff = "exponential", multiplier = 0.5)]
async fn fetch() -> anyhow::Result<u32> {
    Ok(1)
}

fn main() {}
