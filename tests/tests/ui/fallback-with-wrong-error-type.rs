use resilience::retry;

#[retry(max_attempts = 2, fallback = cached)]
async fn fetch(id: u32) -> anyhow::Result<String> {
    Ok(id.to_string())
}

// `fetch` fails with `anyhow::Error`, not `std::io::Error`.
async fn cached(id: u32, _error: std::io::Error) -> anyhow::Result<String> {
    Ok(format!("cached {id}"))
}

fn main() {}
