use resilience::retry;

struct Request {
    url: String,
}

#[retry(max_attempts = 3)]
async fn send(request: Request) -> anyhow::Result<usize> {
    Ok(request.url.len())
}

fn main() {}
