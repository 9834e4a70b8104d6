use resilience::coalesce;

#[coalesce(name = "profiles")]
async fn profile(id: u64) -> Result<u64, String> {
    Ok(id)
}

fn main() {}
