use resilience::retry;

#[retry(delay = "5 parsecs")]
async fn fetch() -> anyhow::Result<u32> {
    Ok(1)
}

fn main() {}
