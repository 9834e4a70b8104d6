use resilience::retry;

#[retry(backoff = "exponentail")]
async fn fetch() -> anyhow::Result<u32> {
    Ok(1)
}

fn main() {}
