use resilience::hedge;

struct Cache {
    hits: u64,
}

impl Cache {
    #[hedge(delay = "50ms")]
    async fn get(&mut self, key: String) -> Result<String, std::io::Error> {
        self.hits += 1;
        Ok(key)
    }
}

fn main() {}
