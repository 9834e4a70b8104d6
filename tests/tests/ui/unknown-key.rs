use resilience::retry;

#[retry(colour = "blue")]
async fn fetch() -> anyhow::Result<u32> {
    Ok(1)
}

fn main() {}
