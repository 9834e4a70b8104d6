#[resilience::test(flavour = "multi_thread")]
async fn typo() {}

#[resilience::test(worker_threads = 4)]
async fn workers_without_multi_thread() {}

#[resilience::test(flavor = "multi_thread", start_paused = true)]
async fn paused_multi_thread() {}

#[resilience::test]
fn not_async() {}

fn main() {}
