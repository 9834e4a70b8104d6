use resilience::bulkhead;

#[bulkhead(name = "db", max_concurrent = "adaptive", min_limit = 50, max_limit = 10)]
async fn query() -> anyhow::Result<u32> {
    Ok(1)
}

#[bulkhead(name = "db2", max_concurrent = "adaptive", min_limit = 5, initial_limit = 2)]
async fn query2() -> anyhow::Result<u32> {
    Ok(1)
}

fn main() {}
