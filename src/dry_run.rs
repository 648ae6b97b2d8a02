//! Dry runs: record commands instead of running them (libvirt's
//! virCommandSetDryRun), so callers can unit-test code that runs commands.
//!
//! (Skeleton: the public `capture`/`capture_with` API is built on
//! [`intercept`] and [`refuse_spawn`], which every run path calls.)

use std::process::ExitStatus;

use crate::error::Error;

/// The fake outcome of a command run inside a dry-run scope.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The exit status to report.
    pub status: ExitStatus,
    /// What the command "wrote" to stdout (returned by buffered runs).
    pub stdout: Vec<u8>,
    /// What the command "wrote" to stderr.
    pub stderr: Vec<u8>,
}

/// Called by every synchronous run path (`run`, `status`, `output`, daemon
/// `run`) with the command's quoted line: `Some(outcome)` when a dry-run
/// scope is active on this thread (the line has then been recorded), `None`
/// to run for real.
pub(crate) fn intercept(line: &str) -> Option<Outcome> {
    let _ = line;
    None
}

/// Called by `spawn` and `spawn_paused`: an error when a dry-run scope is
/// active, since a dry run cannot fake a live child.
pub(crate) fn refuse_spawn(line: &str) -> Result<(), Error> {
    let _ = line;
    Ok(())
}
