use resilience::retry;

#[retry(max_attempts = 3)]
const fn fetch() -> Result<u32, String> {
    Ok(1)
}

fn main() {}
