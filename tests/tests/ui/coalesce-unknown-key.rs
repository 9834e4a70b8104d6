use resilience::coalesce;

#[coalesce(kye = id)]
async fn profile(id: u64) -> Result<u64, String> {
    Ok(id)
}

fn main() {}
