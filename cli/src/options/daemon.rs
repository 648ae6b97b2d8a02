//! Daemon: `--daemonize [--pidfile PATH]`, the library's daemon mode.

use std::path::PathBuf;

use clap::Args;
use safespawn::Command;

use crate::exit::{Failure, Items};

#[derive(Debug, Args)]
#[command(next_help_heading = "Daemon")]
pub struct Daemon {
    /// Run the program as a daemon (double fork, new session, cwd /, stdio
    /// on /dev/null unless redirected); safespawn prints the daemon's pid and
    /// returns once it started.
    // A daemon's cwd is always /, and safespawn does not wait for it.
    #[arg(long, conflicts_with_all = ["cwd", "timeout"])]
    pub daemonize: bool,
    /// With --daemonize: the daemon creates, locks and writes PATH with its
    /// pid before exec.
    #[arg(long, value_name = "PATH", requires = "daemonize")]
    pidfile: Option<PathBuf>,
}

impl Daemon {
    /// The command in daemon mode; its stdio must be set before (the
    /// library allows that only in direct mode).
    pub fn apply(self, cmd: Command) -> Command<safespawn::Daemon> {
        let mut cmd = cmd.daemonize();
        if let Some(path) = self.pidfile {
            cmd = cmd.pidfile(path);
        }
        cmd
    }
}

/// Starts the daemon and returns once it runs (or failed to exec), the
/// pidfile written by the daemon itself before exec. Prints the daemon's pid
/// on stdout. `items`: the options behind the library's items, for its
/// errors.
pub fn start(cmd: Command<safespawn::Daemon>, items: &Items) -> Result<u8, Failure> {
    let started = cmd.build().map_err(|e| items.failure(e))?.run()?;
    println!("{}", started.daemon);
    Ok(0)
}
