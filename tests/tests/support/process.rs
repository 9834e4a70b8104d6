//! A child process of a multi-process test (`fleet_node`, `rate_node`),
//! driven over stdin one command a line, its one-line answers read through
//! a reader thread and a channel so that every answer is awaited with a
//! bound: the test fails, it never hangs. Killed on drop, on success and on
//! panic; a failing test also prints its stderr.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

/// The bound on an answer that has no bound of its own.
pub const ANSWER: Duration = Duration::from_secs(10);

/// One child process, killed on drop.
pub struct Process {
    pub label: &'static str,
    child: Child,
    stdin: Option<ChildStdin>,
    answers: Receiver<String>,
    /// Its stderr (logs), printed if the test fails.
    log: Arc<Mutex<Vec<String>>>,
}

impl Process {
    /// Starts `command` with piped stdin, stdout and stderr.
    pub fn spawn(label: &'static str, mut command: Command) -> Process {
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("{label}: cannot start the process: {e}"));
        let stdout = child.stdout.take().expect("piped stdout");
        let stderr = child.stderr.take().expect("piped stderr");
        let (tx, answers) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let log = Arc::new(Mutex::new(Vec::new()));
        {
            let log = log.clone();
            thread::spawn(move || {
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    log.lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .push(line);
                }
            });
        }
        Process {
            label,
            stdin: child.stdin.take(),
            child,
            answers,
            log,
        }
    }

    /// The next answer (to `command`, for messages), which must come
    /// within `bound`.
    pub fn answer(&self, command: &str, bound: Duration) -> String {
        match self.answers.recv_timeout(bound) {
            Ok(answer) => answer,
            Err(RecvTimeoutError::Timeout) => {
                panic!("{}: no answer to `{command}` within {bound:?}", self.label)
            }
            Err(RecvTimeoutError::Disconnected) => {
                panic!(
                    "{}: the process exited before answering `{command}`",
                    self.label
                )
            }
        }
    }

    /// Sends `command` (a line), answered later.
    pub fn send(&mut self, command: &str) {
        let stdin = self.stdin.as_mut().expect("stdin is open until drop");
        if let Err(e) = writeln!(stdin, "{command}").and_then(|()| stdin.flush()) {
            panic!("{}: cannot send `{command}`: {e}", self.label);
        }
    }

    /// Sends `command` and returns the answer, which must come within `bound`.
    pub fn ask_within(&mut self, command: &str, bound: Duration) -> String {
        self.send(command);
        self.answer(command, bound)
    }

    /// [`ask_within`](Self::ask_within) [`ANSWER`].
    pub fn ask(&mut self, command: &str) -> String {
        self.ask_within(command, ANSWER)
    }

    /// Sends raw bytes (a line that may not be UTF-8) and returns the answer.
    pub fn send_bytes(&mut self, line: &[u8]) -> String {
        let stdin = self.stdin.as_mut().expect("stdin is open until drop");
        if let Err(e) = stdin.write_all(line).and_then(|()| stdin.flush()) {
            panic!("{}: cannot send {line:?}: {e}", self.label);
        }
        self.answer(&String::from_utf8_lossy(line), ANSWER)
    }

    /// Asks the process to quit (it answers `bye`) and waits, within
    /// [`ANSWER`], until it has exited with success.
    pub fn quit(mut self) {
        assert_eq!(self.ask("quit"), "bye");
        let deadline = Instant::now() + ANSWER;
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) => {
                    assert!(status.success(), "{}: exited with {status}", self.label);
                    return;
                }
                Ok(None) => {}
                Err(e) => panic!("{}: cannot wait for it: {e}", self.label),
            }
            assert!(
                Instant::now() < deadline,
                "{}: still running after `quit`",
                self.label
            );
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// Its stderr (logs) so far.
    pub fn log(&self) -> Vec<String> {
        self.log
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Kills the process with `SIGKILL` (as a crash would: no `quit`, no
    /// shutdown of its fleet sync) and waits until it is gone.
    pub fn kill(mut self) {
        use std::os::unix::process::ExitStatusExt;
        if let Err(e) = self.child.kill() {
            panic!("{}: cannot kill it: {e}", self.label);
        }
        let status = self.child.wait();
        assert!(
            status.as_ref().is_ok_and(|s| s.signal() == Some(9)),
            "{}: did not die of SIGKILL: {status:?}",
            self.label
        );
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        drop(self.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
        if thread::panicking() {
            eprintln!("---- stderr of {} ----", self.label);
            for line in self
                .log
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .iter()
            {
                eprintln!("{line}");
            }
        }
    }
}
