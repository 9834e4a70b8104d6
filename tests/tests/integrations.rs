//! Seed 000's scenario (examples/integrations.rs) on the paused clock: one
//! broken integration never slows or breaks the others.

use std::time::Duration;

use resilience::{registry, CircuitState};
use resilience_examples::integrations::{run_round, Behaviour, Integration, Verdict};

#[tokio::test(start_paused = true)]
async fn a_failing_and_a_hanging_integration_never_slow_the_healthy_one() {
    let integrations = [
        Integration::new("it-healthy", Behaviour::Healthy),
        Integration::new("it-failing", Behaviour::Failing),
        Integration::new("it-hanging", Behaviour::Hanging),
    ];
    let ms = Duration::from_millis;
    let mut rounds = Vec::new();
    for _ in 0..4 {
        rounds.push(run_round(&integrations).await);
        tokio::time::sleep(Duration::from_secs(15)).await;
    }
    for (i, round) in rounds.iter().enumerate() {
        // The healthy one: data in 200 ms, every round.
        assert_eq!(
            round[0].verdict,
            Verdict::Data("42 records".into()),
            "round {i}"
        );
        assert_eq!(round[0].took, ms(200), "round {i}");
    }
    for round in &rounds[..3] {
        assert_eq!(
            round[1].verdict,
            Verdict::Upstream("503 Service Unavailable".into())
        );
        assert_eq!(round[1].took, ms(100));
        assert_eq!(round[2].verdict, Verdict::Timeout(Duration::from_secs(30)));
        assert_eq!(round[2].took, Duration::from_secs(30));
    }
    // Round 4: both broken breakers are open; rejected at once.
    // Rounds start at 0, 45, 90 and 135 s: the failing one opened at 90.1 s,
    // the hanging one at 120 s.
    assert_eq!(
        rounds[3][1].verdict,
        Verdict::CircuitOpen(Some(ms(60_000 - (135_000 - 90_100))))
    );
    assert_eq!(
        rounds[3][2].verdict,
        Verdict::CircuitOpen(Some(Duration::from_secs(60 - (135 - 120))))
    );
    assert_eq!(rounds[3][1].took, Duration::ZERO);
    assert_eq!(rounds[3][2].took, Duration::ZERO);
    for (name, state) in [
        ("it-healthy", CircuitState::Closed),
        ("it-failing", CircuitState::Open),
        ("it-hanging", CircuitState::Open),
    ] {
        assert_eq!(registry().get(name).unwrap().state(), state, "{name}");
    }
    let calls: Vec<_> = integrations.iter().map(|i| i.upstream_calls()).collect();
    assert_eq!(calls, [4, 3, 3]);
}
