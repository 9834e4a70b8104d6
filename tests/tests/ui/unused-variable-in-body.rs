#![deny(unused_variables)]

use resilience::retry;

#[retry(max_attempts = 3)]
async fn fetch() -> anyhow::Result<u32> {
    let unused = 5;
    Ok(1)
}

fn main() {
    let _ = fetch();
}
