use resilience::timeout;

#[timeout(timeout = "30s")]
async fn fetch() -> anyhow::Result<u32> {
    Ok(1)
}

fn main() {}
