use std::time::Duration;

use resilience::retry;

#[retry(delay = Duration::from_secs(2), max_delay = Duration::from_millis(500))]
async fn fetch() -> anyhow::Result<u32> {
    Ok(1)
}

fn main() {}
