use resilience::hedge;

#[hedge(delay = "20ms", max_hedge = 2)]
async fn search(q: String) -> Result<String, std::io::Error> {
    Ok(q)
}

fn main() {}
