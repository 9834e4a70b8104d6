use resilience::timeout;

#[timeout]
async fn fetch() -> anyhow::Result<u32> {
    Ok(1)
}

fn main() {}
