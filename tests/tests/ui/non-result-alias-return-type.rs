use resilience::retry;

type Count = u32;

#[retry(max_attempts = 3)]
async fn fetch() -> Count {
    1
}

fn main() {}
