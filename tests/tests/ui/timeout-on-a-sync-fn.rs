use resilience::{retry, timeout};

#[retry(max_attempts = 2)]
#[timeout("1s")]
fn fetch() -> anyhow::Result<u32> {
    Ok(1)
}

fn main() {}
