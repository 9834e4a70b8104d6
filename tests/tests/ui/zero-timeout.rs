use resilience::timeout;

#[timeout("0s")]
async fn fetch() -> anyhow::Result<u32> {
    Ok(1)
}

fn main() {}
