//! A timeline picture of breakers at work, as a standalone SVG: one lane per
//! breaker, its states as coloured bands (closed, open, half-open), and each
//! call as a dot coloured by its outcome.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use resilience::{registry, CircuitState};
use tokio::time::Instant;

/// What a call amounted to, as the picture shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mark {
    /// Succeeded at the first attempt.
    Success,
    /// Succeeded after retrying.
    Recovered,
    /// Failed (after its retries).
    Failure,
    /// Rejected by an open circuit without calling the upstream.
    Rejected,
}

impl Mark {
    fn colour(self) -> &'static str {
        match self {
            Mark::Success => "#2e9d3a",
            Mark::Recovered => "#1f6fd1",
            Mark::Failure => "#d62728",
            Mark::Rejected => "#8c8c8c",
        }
    }

    fn label(self) -> &'static str {
        match self {
            Mark::Success => "success",
            Mark::Recovered => "success after retry",
            Mark::Failure => "failure",
            Mark::Rejected => "rejected (circuit open)",
        }
    }
}

fn band_colour(state: CircuitState) -> &'static str {
    match state {
        CircuitState::Closed => "#e3f4e1",
        CircuitState::Open => "#f9d4d2",
        CircuitState::HalfOpen => "#fdecc0",
        CircuitState::ForcedOpen => "#f0a9a5",
        _ => "#e6e6e6",
    }
}

#[derive(Debug, Default)]
struct Events {
    calls: Vec<(usize, f64, Mark)>,
    states: Vec<(usize, f64, CircuitState)>,
    spans: Vec<(String, f64, f64)>,
}

/// Records calls and state changes of some breakers, then draws them.
#[derive(Debug)]
pub struct Timeline {
    start: Instant,
    lanes: Vec<String>,
    events: Mutex<Events>,
}

impl Timeline {
    /// A timeline of the breakers named `lanes`, starting now; it listens to
    /// the registry's transitions.
    pub fn new(lanes: &[&str]) -> Arc<Self> {
        let timeline = Arc::new(Timeline {
            start: Instant::now(),
            lanes: lanes.iter().map(|l| (*l).to_owned()).collect(),
            events: Mutex::default(),
        });
        let weak = Arc::downgrade(&timeline);
        registry().on_transition(move |t| {
            if let Some(timeline) = weak.upgrade() {
                timeline.state(&t.name, t.to);
            }
        });
        timeline
    }

    fn lane(&self, name: &str) -> Option<usize> {
        self.lanes.iter().position(|l| l == name)
    }

    fn now(&self) -> f64 {
        self.start.elapsed().as_secs_f64()
    }

    fn events(&self) -> std::sync::MutexGuard<'_, Events> {
        self.events.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records a state change of breaker `name` now.
    pub fn state(&self, name: &str, state: CircuitState) {
        if let Some(lane) = self.lane(name) {
            let t = self.now();
            self.events().states.push((lane, t, state));
        }
    }

    /// Records a call through breaker `name` now.
    pub fn call(&self, name: &str, mark: Mark) {
        if let Some(lane) = self.lane(name) {
            let t = self.now();
            self.events().calls.push((lane, t, mark));
        }
    }

    /// Marks a period above the lanes (an outage, say), in seconds since start.
    pub fn span(&self, label: &str, from: f64, to: f64) {
        self.events().spans.push((label.to_owned(), from, to));
    }

    /// Writes the picture titled `title` as `file` in the target directory
    /// the running example was built in (the workspace's `target/`, or
    /// `CARGO_TARGET_DIR`: cargo runs it as `<target>/<profile>/examples/NAME`)
    /// and says where, or why it could not.
    pub fn save(&self, file: &str, title: &str) {
        let path = std::env::current_exe()
            .ok()
            .and_then(|exe| exe.ancestors().nth(3).map(Path::to_path_buf))
            .unwrap_or_else(|| PathBuf::from("target"))
            .join(file);
        match std::fs::write(&path, self.svg(title)) {
            Ok(()) => println!("timeline picture: {}", path.display()),
            Err(e) => eprintln!("could not write {}: {e}", path.display()),
        }
    }

    /// The picture, as a standalone SVG document.
    pub fn svg(&self, title: &str) -> String {
        let events = self.events();
        let end = events
            .calls
            .iter()
            .map(|c| c.1)
            .chain(events.states.iter().map(|s| s.1))
            .fold(1.0_f64, f64::max)
            * 1.02;
        let (left, right, top, lane_h, gap) = (150.0, 30.0, 96.0, 56.0, 14.0);
        let width = 1000.0;
        let plot_w = width - left - right;
        let height = top + self.lanes.len() as f64 * (lane_h + gap) + 50.0;
        let x = |t: f64| left + t / end * plot_w;

        let mut svg = String::new();
        let _ = write!(
            svg,
            r##"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="Helvetica, Arial, sans-serif">
<rect width="100%" height="100%" fill="white"/>
<text x="{left}" y="24" font-size="17" font-weight="bold">{title}</text>
"##
        );
        // Legend: states, then outcomes.
        let mut lx = left;
        for state in [
            CircuitState::Closed,
            CircuitState::Open,
            CircuitState::HalfOpen,
        ] {
            let _ = writeln!(
                svg,
                r##"<rect x="{lx}" y="38" width="14" height="14" fill="{}" stroke="#999"/><text x="{}" y="50" font-size="12">{}</text>"##,
                band_colour(state),
                lx + 19.0,
                state.as_str().replace('_', "-")
            );
            lx += 90.0;
        }
        for mark in [
            Mark::Success,
            Mark::Recovered,
            Mark::Failure,
            Mark::Rejected,
        ] {
            let _ = writeln!(
                svg,
                r##"<circle cx="{}" cy="45" r="5" fill="{}"/><text x="{}" y="50" font-size="12">{}</text>"##,
                lx + 7.0,
                mark.colour(),
                lx + 17.0,
                mark.label()
            );
            lx += 40.0 + 6.5 * mark.label().len() as f64;
        }
        for (label, from, to) in &events.spans {
            let _ = writeln!(
                svg,
                r##"<rect x="{:.1}" y="66" width="{:.1}" height="20" fill="#555" rx="3"/><text x="{:.1}" y="80" font-size="12" fill="white" text-anchor="middle">{label}</text>"##,
                x(*from),
                x(*to) - x(*from),
                (x(*from) + x(*to)) / 2.0
            );
        }
        for (lane, name) in self.lanes.iter().enumerate() {
            let y = top + lane as f64 * (lane_h + gap);
            // Bands: closed from the start, then each recorded state.
            let mut changes: Vec<(f64, CircuitState)> = vec![(0.0, CircuitState::Closed)];
            changes.extend(
                events
                    .states
                    .iter()
                    .filter(|s| s.0 == lane)
                    .map(|s| (s.1, s.2)),
            );
            for (i, (from, state)) in changes.iter().enumerate() {
                let to = changes.get(i + 1).map_or(end, |next| next.0);
                let _ = writeln!(
                    svg,
                    r##"<rect x="{:.1}" y="{y}" width="{:.1}" height="{lane_h}" fill="{}"/>"##,
                    x(*from),
                    (x(to) - x(*from)).max(0.5),
                    band_colour(*state)
                );
            }
            let _ = write!(
                svg,
                r##"<rect x="{left}" y="{y}" width="{plot_w}" height="{lane_h}" fill="none" stroke="#bbb"/>
<text x="{}" y="{}" font-size="14" text-anchor="end">{name}</text>
"##,
                left - 10.0,
                y + lane_h / 2.0 + 5.0
            );
            for (_, t, mark) in events.calls.iter().filter(|c| c.0 == lane) {
                let _ = writeln!(
                    svg,
                    r##"<circle cx="{:.1}" cy="{}" r="4.5" fill="{}" fill-opacity="0.9"/>"##,
                    x(*t),
                    y + lane_h / 2.0,
                    mark.colour()
                );
            }
        }
        // Time axis.
        let axis_y = top + self.lanes.len() as f64 * (lane_h + gap);
        let step = if end > 20.0 {
            5.0
        } else if end > 6.0 {
            1.0
        } else {
            0.5
        };
        let mut t = 0.0;
        while t <= end {
            let _ = writeln!(
                svg,
                r##"<line x1="{0:.1}" y1="{1}" x2="{0:.1}" y2="{2}" stroke="#888"/><text x="{0:.1}" y="{3}" font-size="11" text-anchor="middle">{4}s</text>"##,
                x(t),
                axis_y - 6.0,
                axis_y,
                axis_y + 14.0,
                t
            );
            t += step;
        }
        let _ = write!(
            svg,
            r##"<text x="{}" y="{}" font-size="12" text-anchor="middle">time since start</text>
</svg>
"##,
            left + plot_w / 2.0,
            axis_y + 32.0
        );
        svg
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn draws_bands_and_dots_per_lane() {
        let timeline = Timeline::new(&["tl-a", "tl-b"]);
        timeline.call("tl-a", Mark::Success);
        tokio::time::advance(std::time::Duration::from_secs(1)).await;
        timeline.state("tl-a", CircuitState::Open);
        timeline.call("tl-a", Mark::Rejected);
        timeline.call("tl-b", Mark::Failure);
        timeline.call("unknown", Mark::Failure);
        let svg = timeline.svg("t");
        assert!(svg.starts_with("<svg"));
        assert_eq!(
            svg.matches(r#"r="4.5""#).count(),
            3,
            "one dot per known call"
        );
        assert!(svg.contains(band_colour(CircuitState::Open)));
        assert!(svg.contains(">tl-a</text>") && svg.contains(">tl-b</text>"));
        assert!(svg.trim_end().ends_with("</svg>"));
    }
}
