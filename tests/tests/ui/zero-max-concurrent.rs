use resilience::bulkhead;

#[bulkhead(name = "db", max_concurrent = 0)]
async fn query() -> anyhow::Result<u32> {
    Ok(1)
}

fn main() {}
