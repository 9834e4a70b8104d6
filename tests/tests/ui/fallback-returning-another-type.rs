use resilience::retry;

#[retry(max_attempts = 2, fallback = cached)]
async fn fetch(id: u32) -> anyhow::Result<String> {
    Ok(id.to_string())
}

// Returns a number where `fetch` returns a string.
async fn cached(id: u32, _error: anyhow::Error) -> anyhow::Result<u32> {
    Ok(id)
}

fn main() {}
