use resilience::timeout;

#[timeout("30")]
async fn fetch() -> anyhow::Result<u32> {
    Ok(1)
}

fn main() {}
