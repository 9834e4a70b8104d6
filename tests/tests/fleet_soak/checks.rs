//! The checks the steps share: no call waits, trips learned, one probe each.

use std::collections::BTreeMap;
use std::ops::Range;

use crate::nodes::{parse_tripped, sel};
use crate::report::Lat;
use crate::{Soak, AT_ONCE};

/// Each node's probes per breaker, by label.
type Probes = BTreeMap<&'static str, Vec<u64>>;

impl Soak {
    /// No call waited on Redis during `step`.
    pub(crate) fn check_lat(step: &str, lat: Lat) {
        #[allow(clippy::cast_precision_loss)]
        let bound = AT_ONCE.as_micros() as f64;
        assert!(
            lat.max_us < bound,
            "{step}: a call took {} µs (try_acquire + record): it waited on something",
            lat.max_us
        );
        assert!(
            lat.gap_us < bound,
            "{step}: {} µs between two rounds of calls: the calls stalled",
            lat.gap_us
        );
    }

    /// Followers learned the trip of `range` from the fleet after `after_us`
    /// (Unix µs): their last closed → open transition was applied from the
    /// fleet, and came after it.
    pub(crate) fn check_learned(
        &mut self,
        what: &str,
        origin: usize,
        range: &Range<usize>,
        after_us: u64,
    ) {
        let labels = self.labels();
        self.recorded(&format!("tripped {}", sel(range)), |answers| {
            for (k, answer) in answers.iter().enumerate() {
                if k == origin {
                    continue;
                }
                for (i, (at, cause)) in range.clone().zip(parse_tripped(answer)) {
                    if cause != 'f' || at < after_us {
                        return Err(format!(
                            "{what}: {} did not learn b{i:03}'s trip from the fleet (tripped {at}:{cause}, want f after {after_us})",
                            labels[k]
                        ));
                    }
                }
            }
            Ok(())
        });
    }

    /// Each running node's probes per breaker of `range` since it started.
    pub(crate) fn probes_of(&mut self, range: &Range<usize>) -> Probes {
        let labels = self.labels();
        let answers = self.ask_all(&format!("probes {}", sel(range)));
        labels
            .into_iter()
            .zip(answers)
            .map(|(label, answer)| {
                let counts = answer.split(' ').map(|n| n.parse().expect("a count"));
                (label, counts.collect())
            })
            .collect()
    }

    /// The fleet lets one instance probe each recovering breaker: at most
    /// one probe per breaker of `range`, by the nodes running now, since
    /// `before` (read when the dependency became healthy; every node stays
    /// connected).
    pub(crate) fn check_one_probe(&mut self, step: &str, range: &Range<usize>, before: &Probes) {
        let mut per_breaker = vec![0; range.len()];
        for (label, counts) in &self.probes_of(range) {
            for (j, n) in counts.iter().enumerate() {
                per_breaker[j] += n - before.get(label).map_or(0, |then| then[j]);
            }
        }
        let again: Vec<String> = per_breaker
            .iter()
            .zip(range.clone())
            .filter(|(n, _)| **n > 1)
            .map(|(n, i)| format!("b{i:03}={n}"))
            .collect();
        assert!(
            again.is_empty(),
            "{step}: {} of {} recovering breakers probed more than once ({} probes; the fleet lets one instance probe each), e.g. {}",
            again.len(),
            range.len(),
            per_breaker.iter().sum::<u64>(),
            again[..again.len().min(6)].join(" ")
        );
    }
}
