use resilience::hedge;

struct Query(String);

// Each attempt gets its own clone of a by-value argument.
#[hedge(delay = "20ms")]
async fn search(q: Query) -> Result<String, std::io::Error> {
    Ok(q.0)
}

fn main() {}
