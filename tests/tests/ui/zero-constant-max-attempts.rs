use resilience::retry;

const ATTEMPTS: u32 = 0;

#[retry(max_attempts = ATTEMPTS)]
async fn fetch() -> anyhow::Result<u32> {
    Ok(1)
}

fn main() {}
