use resilience::resilient;

#[resilient(name = "db", bulkhead = "db-pool", max_wait = "100ms")]
async fn query() -> anyhow::Result<u32> {
    Ok(1)
}

fn main() {}
