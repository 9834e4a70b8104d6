use resilience::retry;

#[retry(max_attempts = 3, timeout = "30s")]
async fn fetch() -> anyhow::Result<u32> {
    Ok(1)
}

fn main() {}
