use resilience::retry;

#[retry(backoff = "linear", multiplier = 3.0)]
async fn fetch() -> anyhow::Result<u32> {
    Ok(1)
}

fn main() {}
