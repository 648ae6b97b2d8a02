//! Running: whether the program runs at all, what is shown of it, and how
//! long it may take.

use std::time::Duration;

use clap::Args;
use safespawn::{dry_run, Command};

use crate::exit::{self, Failure, Items};
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
    /// Test-only, hidden: talk to the kernel as on an older one (a
    /// `safespawn::__compat` profile: linux-5.1, linux-5.2, linux-5.3,
    /// old-container, clone-pidfd-refused), so the tests run the library's
    /// fallbacks through this tool.
    #[arg(long, hide = true, value_name = "PROFILE", value_parser = compat_profile)]
    pub force_compat: Option<u32>,
}

/// A `safespawn::__compat` profile by name.
fn compat_profile(s: &str) -> Result<u32, String> {
    use safespawn::__compat as c;
    Ok(match s {
        "linux-5.1" => c::LINUX_5_1,
        "linux-5.2" => c::LINUX_5_2,
        "linux-5.3" => c::LINUX_5_3,
        "old-container" => c::OLD_CONTAINER_PROFILE,
        "clone-pidfd-refused" => c::CLONE_PIDFD_REFUSED,
        _ => return Err(format!("unknown profile '{s}'")),
    })
}

/// Prints the command line `cmd` would run, and runs nothing. `items`:
/// the options behind the library's items, for its errors.
pub fn dry(cmd: Command, items: &Items) -> Result<u8, Failure> {
    // Dogfooding the library's dry run: the line is exactly what `run`
    // would log, and build()'s checks (names, NUL bytes, fds) apply.
    let (lines, result) = dry_run::capture(|| cmd.status());
    result.map_err(|e| items.failure(e))?;
    for line in lines {
        println!("{line}");
    }
    Ok(0)
}

/// Runs `cmd` in the foreground, passing on the signals safespawn gets, and
/// returns its exit status (or the timeout's). `same_group`: the program
/// stays in safespawn's process group (no --new-session). `items`: as for
/// [`dry`].
pub fn foreground(
    cmd: Command,
    items: &Items,
    timeout: Option<Duration>,
    same_group: bool,
) -> Result<u8, Failure> {
    let prepared = cmd.build().map_err(|e| items.failure(e))?;
    forward::block();
    // Everything that can fail is set up before the program is exec'd:
    // a program must never run only to be killed because its wrapper could
    // not start a thread.
    let forwarder = forward::start(same_group)
        .map_err(|e| Failure::setup(format!("starting the signal forwarder: {e}")))?;
    let mut child = prepared.spawn()?;
    if let Err(e) = forwarder.aim(child.pidfd(), child.pid()) {
        // Cannot happen short of the forwarder thread dying (a dup of the
        // pidfd failing: EMFILE); the program then runs without it.
        eprintln!("safespawn: signals will not be passed on: {e}");
    }
    let status = match timeout {
        None => child.wait().map(|f| f.status()),
        Some(timeout) => match child.wait_timeout(timeout) {
            Ok(Some(status)) => Ok(status),
            Ok(None) => {
                let aborted = child.abort();
                forwarder.program_reaped();
                aborted?;
                return Err(safespawn::Error::Timeout {
                    command: prepared.to_string(),
                    timeout,
                    stdout: Vec::new(),
                    stderr: Vec::new(),
                }
                .into());
            }
            Err(e) => Err(e),
        },
    };
    // Reaped (or, after an error, dropped, which kills and reaps it).
    forwarder.program_reaped();
    let status = status?;
    Ok(exit::code_of(status))
}
