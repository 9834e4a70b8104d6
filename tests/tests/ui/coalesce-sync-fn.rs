use resilience::coalesce;

#[coalesce(key = id)]
fn profile(id: u64) -> Result<u64, String> {
    Ok(id)
}

fn main() {}
