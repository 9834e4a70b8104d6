use resilience::retry;

#[retry(max_attempts = 3)]
#[retry(max_attempts = 5)]
async fn fetch() -> anyhow::Result<u32> {
    Ok(1)
}

fn main() {}
