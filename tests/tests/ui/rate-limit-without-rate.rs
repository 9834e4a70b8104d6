use resilience::rate_limit;

#[rate_limit(name = "openai", per = "1s")]
async fn complete() -> anyhow::Result<u32> {
    Ok(1)
}

fn main() {}
