use resilience::retry;

trait Client {
    #[retry(max_attempts = 3)]
    async fn fetch(&self) -> anyhow::Result<u32>;
}

fn main() {}
