//! What the two drivers of a buffered run share besides the streams: when
//! the run ends (the child's exit, the post-exit drain bounded by
//! `wait_delay`, the `timeout`), and how its outcome is put together. The
//! poll loop (`poll.rs`) and the reactor's driver (`reactor.rs`) only wait
//! differently; every decision is made here and in `Stream::service`.

use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use super::streams::{Role, Stream};
use super::Output;
use crate::child::fds::SLOT_STDOUT;
use crate::error::Error;
use crate::plan::Plan;

/// The run's clock: deadlines and whether the child has exited.
pub(super) struct Schedule {
    timeout: Option<Duration>,
    /// `None`: no timeout, or one too large for a deadline.
    timeout_at: Option<Instant>,
    wait_delay: Duration,
    exited: bool,
    /// Once the child has exited: the end of the drain (`None`: no end, a
    /// `wait_delay` past what an `Instant` holds).
    drain_until: Option<Instant>,
}

/// What a driver does next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Next {
    /// Wait for the streams (and, before the exit, the child) until `wake`
    /// (`None`: for as long as it takes), service what is ready, ask again.
    Wait { wake: Option<Instant> },
    /// The child has exited and every stream is closed.
    Done,
    /// The child has exited and the drain is over with streams still open
    /// (a grandchild holds them): read what they hold, then finish.
    DrainOver,
    /// The timeout passed while the child runs: read what the pipes hold,
    /// abort the child, return [`Error::Timeout`] with the output so far.
    TimedOut,
}

impl Schedule {
    /// The clock of a run started at `start`.
    pub(super) fn new(plan: &Plan, start: Instant) -> Schedule {
        Schedule {
            timeout: plan.timeout,
            timeout_at: plan.timeout.and_then(|t| start.checked_add(t)),
            wait_delay: plan.buffered.wait_delay,
            exited: false,
            drain_until: None,
        }
    }

    /// Whether the child has exited (and been reaped).
    pub(super) fn exited(&self) -> bool {
        self.exited
    }

    /// The child has exited, seen at `now`: the drain starts.
    pub(super) fn child_exited(&mut self, now: Instant) {
        self.exited = true;
        self.drain_until = now.checked_add(self.wait_delay);
    }

    /// What to do at `now`, given the streams.
    pub(super) fn next<F>(&self, now: Instant, streams: &[Stream<'_, F>]) -> Next {
        if self.exited {
            if !streams.iter().any(|s| s.fd.is_some()) {
                return Next::Done;
            }
            if self.drain_until.is_some_and(|until| now >= until) {
                return Next::DrainOver;
            }
            Next::Wait {
                wake: self.drain_until,
            }
        } else if self.timeout_at.is_some_and(|at| now >= at) {
            Next::TimedOut
        } else {
            Next::Wait {
                wake: self.timeout_at,
            }
        }
    }

    /// The [`Error::Timeout`] of a run whose child has been aborted, with
    /// what was captured.
    pub(super) fn timeout_error<F>(&self, plan: &Plan, streams: Vec<Stream<'_, F>>) -> Error {
        let (stdout, stderr) = collect(streams);
        Error::Timeout {
            command: plan.line.to_string(),
            timeout: self.timeout.unwrap_or_default(),
            stdout,
            stderr,
        }
    }
}

/// One last read of each open reader: what the pipes hold already is kept
/// (at a timeout, or when the drain is over); only what a grandchild might
/// still write is given up.
pub(super) fn last_reads<F: AsFd>(streams: &mut [Stream<'_, F>]) -> Result<(), Error> {
    for s in streams.iter_mut() {
        if s.is_reader() {
            s.service()?;
        }
    }
    Ok(())
}

/// The run's [`Output`]; closes every stream (what a grandchild may still
/// hold).
pub(super) fn output<F>(status: std::process::ExitStatus, streams: Vec<Stream<'_, F>>) -> Output {
    let (stdout, stderr) = collect(streams);
    Output {
        status,
        stdout,
        stderr,
    }
}

/// What the read streams captured, as (stdout, stderr); closes every stream.
fn collect<F>(streams: Vec<Stream<'_, F>>) -> (Vec<u8>, Vec<u8>) {
    let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
    for s in streams {
        if let Role::Read { buf, slot } = s.role {
            if slot == SLOT_STDOUT {
                stdout = buf;
            } else {
                stderr = buf;
            }
        }
    }
    (stdout, stderr)
}
