use resilience::retry;

#[retry(fallback = |_e| async { Ok(0) })]
async fn fetch() -> anyhow::Result<u32> {
    Ok(1)
}

fn main() {}
