use resilience::coalesce;

#[derive(Debug)]
struct ApiError;

#[coalesce(key = id)]
async fn profile(id: u64) -> Result<u64, ApiError> {
    Ok(id)
}

fn main() {}
