use resilience::hedge;

// `min_samples` and `warmup_delay` belong to a percentile delay.
#[hedge(delay = "20ms", min_samples = 50, warmup_delay = "1s")]
async fn search(q: String) -> Result<String, std::io::Error> {
    Ok(q)
}

fn main() {}
