use resilience::circuit_breaker;

#[circuit_breaker(name = "api", fallback = cached)]
async fn fetch(id: u32) -> anyhow::Result<String> {
    Ok(id.to_string())
}

// Missing the error argument.
async fn cached(id: u32) -> anyhow::Result<String> {
    Ok(format!("cached {id}"))
}

fn main() {}
