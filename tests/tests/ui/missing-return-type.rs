use resilience::retry;

#[retry(max_attempts = 3)]
async fn fetch() {
    println!("fetching");
}

fn main() {}
