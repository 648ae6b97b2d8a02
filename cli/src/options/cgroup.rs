//! The cgroup the program starts in.

use std::path::PathBuf;

use clap::Args;
use safespawn::Command;

#[derive(Debug, Args)]
#[command(next_help_heading = "Cgroup")]
pub struct Cgroup {
    /// Start the program inside this cgroup v2 directory (it never runs in
    /// safespawn's cgroup; the directory must exist, e.g. made with mkdir
    /// under /sys/fs/cgroup).
    #[arg(long, value_name = "DIR")]
    cgroup: Option<PathBuf>,
}

impl Cgroup {
    pub fn apply(self, cmd: Command) -> Command {
        match self.cgroup {
            Some(dir) => cmd.cgroup(dir),
            None => cmd,
        }
    }
}
