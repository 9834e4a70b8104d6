use resilience::rate_limit;

const NAME: &str = "openai";

#[rate_limit(name = NAME, rate = 50)]
async fn complete() -> anyhow::Result<u32> {
    Ok(1)
}

fn main() {}
