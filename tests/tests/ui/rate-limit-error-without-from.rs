use resilience::rate_limit;

#[derive(Debug)]
struct ApiError;

#[rate_limit(rate = 50)]
async fn complete() -> Result<u32, ApiError> {
    Ok(1)
}

fn main() {}
