use resilience::bulkhead;

#[bulkhead(name = "db", max_concurrent = 10, max_limit = 50)]
async fn query() -> anyhow::Result<u32> {
    Ok(1)
}

fn main() {}
