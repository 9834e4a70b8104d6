#![deny(dead_code)]

use resilience::retry;

#[retry(max_attempts = 3)]
async fn fetch() -> anyhow::Result<u32> {
    fn helper() -> u32 {
        2
    }
    Ok(1)
}

fn main() {
    let _ = fetch();
}
