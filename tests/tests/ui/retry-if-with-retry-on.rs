use resilience::retry;

#[derive(Debug)]
enum ApiError {
    Timeout,
}

fn transient(_: &ApiError) -> bool {
    true
}

#[retry(retry_if = transient, retry_on = [ApiError::Timeout])]
async fn fetch() -> Result<u32, ApiError> {
    Err(ApiError::Timeout)
}

fn main() {}
