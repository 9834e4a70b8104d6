use resilience::resilient;

#[resilient(name = "blocking", max_attempts = 3, max_elapsed = "5s")]
fn fetch() -> anyhow::Result<u32> {
    Ok(1)
}

fn main() {}
