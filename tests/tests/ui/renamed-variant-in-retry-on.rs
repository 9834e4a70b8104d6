use resilience::retry;

#[derive(Debug)]
enum ApiError {
    TimedOut,
    Unavailable(u16),
}

#[retry(retry_on = [ApiError::Timeout, ApiError::Unavailable(..)])]
async fn fetch() -> Result<u32, ApiError> {
    Err(ApiError::TimedOut)
}

fn main() {}
