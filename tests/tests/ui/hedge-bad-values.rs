use resilience::hedge;

// A percentile out of range, too many hedges, a zero period.
#[hedge(delay = "p150", max_hedges = 5, period = "0s")]
async fn search(q: String) -> Result<String, std::io::Error> {
    Ok(q)
}

#[hedge(delay = "5 parsecs")]
async fn typo(q: String) -> Result<String, std::io::Error> {
    Ok(q)
}

fn main() {}
