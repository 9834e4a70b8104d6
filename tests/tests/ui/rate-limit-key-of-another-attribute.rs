use resilience::rate_limit;

#[rate_limit(rate = 50, max_attempts = 3)]
async fn complete() -> anyhow::Result<u32> {
    Ok(1)
}

fn main() {}
