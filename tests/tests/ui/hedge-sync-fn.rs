use resilience::hedge;

#[hedge(delay = "50ms")]
fn lookup(id: u64) -> Result<u64, std::io::Error> {
    Ok(id)
}

fn main() {}
