use resilience::retry;

#[retry(max_attempts = 0)]
async fn fetch() -> anyhow::Result<u32> {
    Ok(1)
}

fn main() {}
