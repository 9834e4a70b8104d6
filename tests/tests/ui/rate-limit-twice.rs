use resilience::rate_limit;

#[rate_limit(rate = 50)]
#[rate_limit(rate = 10)]
async fn complete() -> anyhow::Result<u32> {
    Ok(1)
}

fn main() {}
