//! Landlock: the files and TCP ports the program keeps.

use std::path::PathBuf;

use clap::{ArgGroup, Args};
use safespawn::{Command, Landlock};

use crate::exit::Failure;

#[derive(Debug, Args)]
#[command(next_help_heading = "Landlock")]
#[command(group(
    ArgGroup::new("landlock_rules")
        .multiple(true)
        .args(["landlock_read", "landlock_write", "landlock_exec", "landlock_tcp_bind", "landlock_tcp_connect"])
))]
pub struct LandlockOptions {
    /// The program may read files and list directories beneath PATH; with
    /// any --landlock-read, -write or -exec, every other file access is
    /// denied. Repeatable.
    #[arg(long, value_name = "PATH")]
    landlock_read: Vec<PathBuf>,
    /// The program may read, write, create, remove and rename beneath
    /// PATH. Repeatable.
    #[arg(long, value_name = "PATH")]
    landlock_write: Vec<PathBuf>,
    /// The program may execute (and read) files beneath PATH: the program
    /// itself, its interpreter (ld.so) and its libraries need a rule.
    /// Repeatable.
    #[arg(long, value_name = "PATH")]
    landlock_exec: Vec<PathBuf>,
    /// The program may bind TCP sockets to PORT (Linux 6.7); with any TCP
    /// rule, every other port is denied. Repeatable.
    #[arg(long, value_name = "PORT")]
    landlock_tcp_bind: Vec<u16>,
    /// The program may connect TCP sockets to PORT (Linux 6.7).
    /// Repeatable.
    #[arg(long, value_name = "PORT")]
    landlock_tcp_connect: Vec<u16>,
    /// Accept a kernel that enforces only part of the rules (one that
    /// would enforce none is still refused).
    #[arg(long, requires = "landlock_rules")]
    landlock_best_effort: bool,
}

impl LandlockOptions {
    pub fn apply(self, cmd: Command) -> Result<Command, Failure> {
        let mut l = Landlock::new();
        let mut any = false;
        // Relative paths are the current directory's, as for any tool.
        let absolute = |p: &PathBuf| {
            std::path::absolute(p)
                .map_err(|e| Failure::setup(format!("landlock path {}: {e}", p.display())))
        };
        for p in &self.landlock_read {
            l = l.allow_read(absolute(p)?);
            any = true;
        }
        for p in &self.landlock_write {
            l = l.allow_write(absolute(p)?);
            any = true;
        }
        for p in &self.landlock_exec {
            l = l.allow_exec(absolute(p)?);
            any = true;
        }
        for &port in &self.landlock_tcp_bind {
            l = l.allow_tcp_bind(port);
            any = true;
        }
        for &port in &self.landlock_tcp_connect {
            l = l.allow_tcp_connect(port);
            any = true;
        }
        if self.landlock_best_effort {
            l = l.best_effort();
        }
        Ok(if any { cmd.landlock(l) } else { cmd })
    }
}
