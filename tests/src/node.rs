//! A child process of a multi-process test (`fleet_node`, `rate_node`,
//! `soak_node`): one instance of a fleet, started by the test with its
//! arguments, that shares the global registry through Redis, prints `ready
//! <instance-id>` once it is ready, then answers every command line read on
//! stdin with exactly one line on stdout, until `quit` (answered `bye`),
//! the end of stdin, or nobody reading its stdout any more.
//!
//! What the three have in common lives here, the steps in the order a
//! `main` takes them:
//!
//! 1. [`start`]: the arguments (bad ones print the usage to stderr, exit
//!    status 2: [`usage_error`]), the logs (`tracing`, level from
//!    `RUST_LOG`, default `resilience=info`, to stderr without colours:
//!    [`init_logs`]) and the tokio runtime the fleet sync runs on
//!    ([`runtime`]);
//! 2. [`share`]: the registry shared inside the runtime, exit status 2 if it
//!    cannot be;
//! 3. [`Stdout::synced`] or [`Stdout::wait_for`]: at most [`WAIT`] for the
//!    node's readiness, else `error …` on stdout and exit status 1;
//! 4. [`Stdout::ready`]: `ready <instance-id>`;
//! 5. [`Stdout::serve`]: the command loop, one answer a line, then the
//!    fleet sync stopped.
//!
//! A step that ends the process gives the [`ExitCode`] to return from
//! `main` as its `Err`.

use std::fmt::Display;
use std::io::{self, BufRead, StdoutLock, Write};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use resilience::{Fleet, FleetConfig, FleetError};
use tokio::runtime::Runtime;

/// How long a node waits to be ready before it gives up (exit status 1).
pub const WAIT: Duration = Duration::from_secs(30);

/// The fast fleet tuning of the tests (probe lease 2 s, lease poll 10 ms,
/// lease retry 20 ms), so that they run quickly: `fleet_node`'s and
/// `soak_node`'s, and the in-process fleet tests' base tuning.
pub fn fast_fleet() -> FleetConfig {
    let mut config = FleetConfig::default();
    config.lease = Duration::from_secs(2);
    config.lease_poll = Duration::from_millis(10);
    config.lease_retry = Duration::from_millis(20);
    config
}

/// The start of every node: its arguments (`args`, parsed; if they are
/// bad, [`usage_error`]), its logs ([`init_logs`]), and its
/// [`runtime`] with `workers` worker threads.
pub fn start<A>(
    binary: &str,
    usage: &str,
    args: Result<A, String>,
    workers: usize,
) -> Result<(A, Runtime), ExitCode> {
    let args = args.map_err(|why| usage_error(binary, &why, usage))?;
    init_logs();
    Ok((args, runtime(binary, workers)?))
}

/// Bad arguments: prints `<binary>: <why>` and the usage to stderr; exit
/// status 2.
pub fn usage_error(binary: &str, why: &str, usage: &str) -> ExitCode {
    eprintln!("{binary}: {why}\n{usage}");
    ExitCode::from(2)
}

/// Logs to stderr (`tracing`, level from `RUST_LOG`, default
/// `resilience=info`), without ANSI colours: the test keeps them as text.
pub fn init_logs() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("resilience=info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .init();
}

/// A multi-thread tokio runtime with `workers` worker threads; if it cannot
/// start, `<binary>: cannot start the tokio runtime: …` on stderr and exit
/// status 1.
pub fn runtime(binary: &str, workers: usize) -> Result<Runtime, ExitCode> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
        .map_err(|e| {
            eprintln!("{binary}: cannot start the tokio runtime: {e}");
            ExitCode::FAILURE
        })
}

/// Shares the registry with `share` (a `share_via_redis…` call) inside
/// `runtime`, where it spawns the fleet sync; if it cannot, `<binary>: <the
/// error>` on stderr and exit status 2.
pub fn share(
    binary: &str,
    runtime: &Runtime,
    share: impl FnOnce() -> Result<Fleet, FleetError>,
) -> Result<Fleet, ExitCode> {
    let _entered = runtime.enter();
    share().map_err(|e| {
        eprintln!("{binary}: {e}");
        ExitCode::from(2)
    })
}

/// The node's stdout, where the test reads its answers: one line each,
/// flushed at once.
pub struct Stdout(StdoutLock<'static>);

impl Stdout {
    /// Locks the process's stdout for the node's lines.
    pub fn lock() -> Stdout {
        Stdout(io::stdout().lock())
    }

    /// Writes `line` and flushes it; an error once nobody reads any more.
    pub fn line(&mut self, line: impl Display) -> io::Result<()> {
        writeln!(self.0, "{line}").and_then(|()| self.0.flush())
    }

    /// Checks `condition` every `poll` until it holds; after [`WAIT`],
    /// prints `error <failure> within 30 s` and gives exit status 1.
    pub fn wait_for(
        &mut self,
        poll: Duration,
        failure: &str,
        mut condition: impl FnMut() -> bool,
    ) -> Result<(), ExitCode> {
        let deadline = Instant::now() + WAIT;
        while !condition() {
            if Instant::now() >= deadline {
                let _ = self.line(format_args!("error {failure} within {} s", WAIT.as_secs()));
                return Err(ExitCode::FAILURE);
            }
            std::thread::sleep(poll);
        }
        Ok(())
    }

    /// Waits until `fleet` is synced with the fleet
    /// ([`Fleet::ready`]) and connected: if Redis was unreachable at the
    /// first attempt, until the sync connects, for at most [`WAIT`]
    /// (`error could not connect to Redis within 30 s`, exit status 1).
    pub fn synced(&mut self, runtime: &Runtime, fleet: &Fleet) -> Result<(), ExitCode> {
        runtime.block_on(fleet.ready());
        self.wait_for(
            Duration::from_millis(5),
            "could not connect to Redis",
            || fleet.is_connected(),
        )
    }

    /// Prints `ready <instance-id>`; exit status 1 if nobody listens any
    /// more.
    pub fn ready(&mut self, fleet: &Fleet) -> Result<(), ExitCode> {
        self.line(format_args!("ready {}", fleet.instance_id()))
            .map_err(|_| ExitCode::FAILURE)
    }

    /// The command loop: reads stdin a line at a time and prints `answer`'s
    /// answer to each (`error the command is not UTF-8` for a line that is
    /// not); `answer` gives `None` for `quit`, answered `bye`. When stdin
    /// closes (nobody asks any more), after `quit`, or when stdout breaks
    /// (nobody reads any more), stops the fleet sync
    /// ([`Fleet::shutdown`]) on `runtime`.
    pub fn serve(
        &mut self,
        runtime: &Runtime,
        fleet: Fleet,
        mut answer: impl FnMut(&str, &Fleet) -> Option<String>,
    ) {
        let mut stdin = io::stdin().lock();
        let mut bytes = Vec::new();
        loop {
            bytes.clear();
            match stdin.read_until(b'\n', &mut bytes) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
            let reply = match std::str::from_utf8(&bytes) {
                Ok(line) => answer(line, &fleet),
                Err(_) => Some("error the command is not UTF-8".to_owned()),
            };
            let Some(reply) = reply else {
                let _ = self.line("bye");
                break;
            };
            if self.line(reply).is_err() {
                break;
            }
        }
        runtime.block_on(fleet.shutdown());
    }
}
