use resilience::hedge;

#[hedge(delay = "50ms")]
async fn fill(buffer: &mut Vec<u8>) -> Result<usize, std::io::Error> {
    buffer.push(1);
    Ok(buffer.len())
}

fn main() {}
