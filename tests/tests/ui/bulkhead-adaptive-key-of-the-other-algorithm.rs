use resilience::bulkhead;

// `tolerance` is Gradient2's; `latency_threshold` is AIMD's.
#[bulkhead(max_concurrent = "adaptive", tolerance = 2.0)]
async fn aimd() -> anyhow::Result<u32> {
    Ok(1)
}

#[bulkhead(max_concurrent = "gradient2", latency_threshold = "20ms", tolerance = 20.0, sample_window = "10ms")]
async fn gradient2() -> anyhow::Result<u32> {
    Ok(1)
}

fn main() {}
