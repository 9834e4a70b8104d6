use resilience::circuit_breaker;

#[derive(Debug, thiserror::Error)]
enum ApiError {
    #[error("timed out")]
    Timeout,
    #[error(transparent)]
    Resilience(#[from] resilience::Error),
}

fn counts(_: &ApiError) -> bool {
    true
}

#[circuit_breaker(failure_if = counts, failure_on = [ApiError::Timeout])]
async fn fetch() -> Result<u32, ApiError> {
    Err(ApiError::Timeout)
}

fn main() {}
