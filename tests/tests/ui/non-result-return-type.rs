use resilience::retry;

#[retry(max_attempts = 3)]
async fn fetch() -> u32 {
    1
}

fn main() {}
