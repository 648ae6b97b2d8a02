//! `--daemonize [--pidfile PATH]`: the library's daemon mode.

use std::path::Path;

use safespawn::{Command, Stdio};

use crate::exit::Failure;

/// Starts the daemon and returns once it runs (or failed to exec): stdio on
/// /dev/null unless redirected to files, the pidfile written by the daemon
/// itself before exec. Prints the daemon's pid on stdout.
pub fn run(
    mut cmd: Command,
    stdin: Option<&Path>,
    stdout: Option<&Path>,
    stderr: Option<&Path>,
    pidfile: Option<&Path>,
) -> Result<u8, Failure> {
    // A daemon must not hold the invoking terminal: anything not redirected
    // to a file is /dev/null (the library's default).
    if let Some(path) = stdin {
        cmd = cmd.stdin(Stdio::from(crate::open_file(path, "--stdin", false)?));
    }
    if let Some(path) = stdout {
        cmd = cmd.stdout(Stdio::from(crate::open_file(path, "--stdout", true)?));
    }
    if let Some(path) = stderr {
        cmd = cmd.stderr(Stdio::from(crate::open_file(path, "--stderr", true)?));
    }
    let mut cmd = cmd.daemonize();
    if let Some(path) = pidfile {
        cmd = cmd.pidfile(path);
    }
    let started = cmd.build()?.run()?;
    println!("{}", started.daemon);
    Ok(0)
}
