use resilience::retry;

#[retry(max_attempts = 3)]
async fn fetch() -> anyhow::Result<u32> {
    let n: u32 = "one";
    Ok(n)
}

fn main() {}
