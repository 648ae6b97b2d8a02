//! Running: whether the program runs at all, what is shown of it, and how
//! long it may take.

use std::time::Duration;

use clap::Args;
use safespawn::{dry_run, Command};

use crate::exit::{self, Failure};
use crate::forward;
use crate::parse;

#[derive(Debug, Args)]
#[command(next_help_heading = "Running")]
pub struct Running {
    /// Kill the program (TERM, then KILL) after DURATION, e.g. 300ms, 5s, 2m;
    /// safespawn then exits with 124.
    #[arg(long, value_name = "DURATION", value_parser = parse::duration)]
    pub timeout: Option<Duration>,
    /// Print the shell-quoted command line on stdout and exit 0 without
    /// running anything.
    #[arg(long)]
    pub dry_run: bool,
    /// Print the shell-quoted command line on stderr before running it.
    #[arg(short, long)]
    pub verbose: bool,
}

/// Prints the command line `cmd` would run, and runs nothing.
pub fn dry(cmd: Command) -> Result<u8, Failure> {
    // Dogfooding the library's dry run: the line is exactly what `run`
    // would log, and build()'s checks (names, NUL bytes, fds) apply.
    let (lines, result) = dry_run::capture(|| cmd.status());
    result.map_err(Failure::from)?;
    for line in lines {
        println!("{line}");
    }
    Ok(0)
}

/// Runs `cmd` in the foreground, passing on the signals safespawn gets, and
/// returns its exit status (or the timeout's). `same_group`: the program
/// stays in safespawn's process group (no --new-session).
pub fn foreground(
    cmd: Command,
    timeout: Option<Duration>,
    same_group: bool,
) -> Result<u8, Failure> {
    let prepared = cmd.build()?;
    forward::block();
    let mut child = prepared.spawn()?;
    if let Err(e) = forward::start(child.pidfd(), same_group) {
        return Err(Failure::setup(format!(
            "starting the signal forwarder: {e}"
        )));
    }
    let status = match timeout {
        None => child.wait()?.status(),
        Some(timeout) => match child.wait_timeout(timeout)? {
            Some(status) => status,
            None => {
                child.abort()?;
                return Err(safespawn::Error::Timeout {
                    command: prepared.to_string(),
                    timeout,
                    stdout: Vec::new(),
                    stderr: Vec::new(),
                }
                .into());
            }
        },
    };
    Ok(exit::code_of(status))
}
