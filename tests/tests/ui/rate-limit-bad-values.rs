use resilience::rate_limit;

#[rate_limit(name = "openai", rate = 0, per = "0s", burst = 0)]
async fn complete() -> anyhow::Result<u32> {
    Ok(1)
}

fn main() {}
