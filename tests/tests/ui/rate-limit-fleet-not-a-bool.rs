use resilience::rate_limit;

#[rate_limit(name = "openai", rate = 50, fleet = "true")]
async fn complete() -> anyhow::Result<u32> {
    Ok(1)
}

#[rate_limit(name = "openai", rate = 50, fleet = 1)]
async fn embed() -> anyhow::Result<u32> {
    Ok(1)
}

fn main() {}
