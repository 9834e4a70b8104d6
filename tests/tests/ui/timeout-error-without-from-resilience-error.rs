use resilience::timeout;

#[derive(Debug)]
struct ApiError;

#[timeout("30s")]
async fn fetch() -> Result<u32, ApiError> {
    Err(ApiError)
}

fn main() {}
