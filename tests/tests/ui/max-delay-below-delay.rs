use resilience::retry;

#[retry(delay = "2s", max_delay = "500ms")]
async fn fetch() -> anyhow::Result<u32> {
    Ok(1)
}

fn main() {}
