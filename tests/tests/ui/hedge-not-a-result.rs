use resilience::hedge;

#[hedge(delay = "20ms")]
async fn search(q: String) -> Option<String> {
    Some(q)
}

fn main() {}
