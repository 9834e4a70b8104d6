use resilience::retry;

#[retry(budget = 20)]
async fn fetch() -> anyhow::Result<u32> {
    Ok(1)
}

fn main() {}
