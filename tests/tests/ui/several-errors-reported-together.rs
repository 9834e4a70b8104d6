use resilience::resilient;

#[resilient(failure_threshold = 0, max_attempt = 3)]
async fn fetch() -> anyhow::Result<u32> {
    Ok(1)
}

fn main() {}
