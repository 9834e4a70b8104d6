use resilience::circuit_breaker;

#[derive(Debug, thiserror::Error)]
enum ApiError {
    #[error("timed out")]
    Timeout,
    #[error(transparent)]
    Resilience(#[from] resilience::Error),
}

impl ApiError {
    fn is_timeout(&self) -> bool {
        matches!(self, ApiError::Timeout)
    }
}

#[circuit_breaker(failure_on = [ApiError::Timeout, e.is_timeout()])]
async fn fetch() -> Result<u32, ApiError> {
    Err(ApiError::Timeout)
}

fn main() {}
