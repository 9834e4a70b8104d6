use resilience::retry;

#[retry(delay = "2s", max_elapsed = "1s")]
async fn fetch() -> anyhow::Result<u32> {
    Ok(1)
}

fn main() {}
