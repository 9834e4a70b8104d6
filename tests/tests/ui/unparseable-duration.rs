use resilience::retry;

#[retry(delay = "fast")]
async fn fetch() -> anyhow::Result<u32> {
    Ok(1)
}

fn main() {}
