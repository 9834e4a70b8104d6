use resilience::rate_limit;

#[rate_limit(name = "openai", rate = 50, burts = 10)]
async fn complete() -> anyhow::Result<u32> {
    Ok(1)
}

fn main() {}
