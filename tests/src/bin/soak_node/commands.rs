//! The commands read on stdin and their answers.

use std::fmt::Write as _;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::PoisonError;

use resilience::CircuitState;

use crate::node::Node;

fn state_char(state: CircuitState) -> char {
    match state {
        CircuitState::Closed => 'c',
        CircuitState::Open => 'o',
        CircuitState::HalfOpen => 'h',
        CircuitState::ForcedOpen => 'f',
        CircuitState::Disabled => 'd',
        _ => '?',
    }
}

impl Node {
    /// The breakers of a selection, in order, without duplicates.
    fn select(&self, selection: &str) -> Result<Vec<usize>, String> {
        let find = |name: &str| {
            self.index
                .get(name)
                .copied()
                .ok_or_else(|| format!("no breaker {name:?}"))
        };
        let mut picked = vec![false; self.names.len()];
        for item in selection.split(',') {
            if item == "all" {
                picked.iter_mut().for_each(|p| *p = true);
            } else if let Some((from, to)) = item.split_once('-') {
                let (from, to) = (find(from)?, find(to)?);
                if from > to {
                    return Err(format!("empty range {item:?}"));
                }
                picked[from..=to].iter_mut().for_each(|p| *p = true);
            } else {
                picked[find(item)?] = true;
            }
        }
        Ok((0..picked.len()).filter(|&i| picked[i]).collect())
    }

    fn states(&self) -> String {
        self.breakers
            .iter()
            .map(|b| state_char(b.state()))
            .collect()
    }

    fn changed(&self, selection: &str) -> Result<String, String> {
        let picked = self.select(selection)?;
        let changes = self.changes.lock().unwrap_or_else(PoisonError::into_inner);
        let mut answer = String::new();
        for i in picked {
            let c = changes[i].0;
            let (state, cause) = match c.state {
                None => ('c', '-'),
                Some(s) => (state_char(s), if c.fleet { 'f' } else { 'l' }),
            };
            let space = if answer.is_empty() { "" } else { " " };
            let _ = write!(answer, "{space}{}:{state}:{cause}", c.at_us);
        }
        Ok(answer)
    }

    fn tripped(&self, selection: &str) -> Result<String, String> {
        let picked = self.select(selection)?;
        let changes = self.changes.lock().unwrap_or_else(PoisonError::into_inner);
        let mut answer = String::new();
        for i in picked {
            let c = changes[i].1;
            let cause = match (c.state, c.fleet) {
                (None, _) => '-',
                (Some(_), true) => 'f',
                (Some(_), false) => 'l',
            };
            let space = if answer.is_empty() { "" } else { " " };
            let _ = write!(answer, "{space}{}:{cause}", c.at_us);
        }
        Ok(answer)
    }

    fn probing(&self) -> String {
        // A probe whose breaker left half-open meanwhile (the fleet closed
        // it) is no longer the fleet's probe: its permit is only stale.
        let names: Vec<&str> = (0..self.names.len())
            .filter(|&i| {
                self.probing[i].load(Relaxed) && self.breakers[i].state() == CircuitState::HalfOpen
            })
            .map(|i| &*self.names[i])
            .collect();
        let mut answer = names.len().to_string();
        for name in names {
            answer.push(' ');
            answer.push_str(name);
        }
        answer
    }

    fn first(&self) -> String {
        self.first
            .iter()
            .map(|f| match f.load(Relaxed) {
                0 => '-',
                c => char::from(c),
            })
            .collect()
    }

    fn lat(&self) -> String {
        let (calls, p50, p99, max) = self.latency.take();
        let gap = self.gap.swap(0, Relaxed);
        #[allow(clippy::cast_precision_loss)]
        let us = |ns: u64| ns as f64 / 1000.0;
        format!(
            "calls={calls} p50_us={:.3} p99_us={:.3} max_us={:.3} gap_us={:.3}",
            us(p50),
            us(p99),
            us(max),
            us(gap)
        )
    }

    pub(crate) fn set_down(&self, selection: &str, down: bool) -> Result<String, String> {
        let picked = self.select(selection)?;
        for &i in &picked {
            self.down[i].store(down, Relaxed);
        }
        Ok(format!("ok {}", picked.len()))
    }
}

/// The answer to one command line, or `None` for `quit`.
pub(crate) fn answer(node: &Node, fleet: &resilience::Fleet, line: &str) -> Option<String> {
    let words: Vec<&str> = line.split_whitespace().collect();
    let result = match words.as_slice() {
        [] => Err("empty command".to_owned()),
        ["quit"] => return None,
        ["states"] => Ok(node.states()),
        ["changed", selection] => node.changed(selection),
        ["tripped", selection] => node.tripped(selection),
        ["probing"] => Ok(node.probing()),
        ["first"] => Ok(node.first()),
        ["lat"] => Ok(node.lat()),
        ["calls"] => Ok(node.calls.load(Relaxed).to_string()),
        ["probes"] => Ok(node.probes.load(Relaxed).to_string()),
        ["probes", selection] => node.select(selection).map(|picked| {
            let counts: Vec<String> = picked
                .iter()
                .map(|&i| node.probes_of[i].load(Relaxed).to_string())
                .collect();
            counts.join(" ")
        }),
        ["transitions"] => Ok(format!(
            "{} {}",
            node.transitions.load(Relaxed),
            node.local_transitions.load(Relaxed)
        )),
        ["down", selection] => node.set_down(selection, true),
        ["up", selection] => node.set_down(selection, false),
        ["connected"] => Ok(fleet.is_connected().to_string()),
        ["id"] => Ok(fleet.instance_id().to_owned()),
        [command @ ("changed" | "tripped" | "down" | "up" | "probes"), ..] => Err(format!(
            "`{command}` takes one selection (`b000`, `b000-b019`, `all`, comma-separated)"
        )),
        [command @ ("quit" | "states" | "probing" | "first" | "lat" | "calls" | "transitions"
        | "connected" | "id"), extra, ..] => {
            Err(format!("`{command}` takes no argument (got {extra:?})"))
        }
        [command, ..] => Err(format!(
            "unknown command {command:?} (states, changed, tripped, probing, first, lat, calls, probes, transitions, down, up, connected, id, quit)"
        )),
    };
    Some(result.unwrap_or_else(|why| format!("error {why}")))
}
