use resilience::retry;

#[retry(jitter = "random")]
async fn fetch() -> anyhow::Result<u32> {
    Ok(1)
}

fn main() {}
