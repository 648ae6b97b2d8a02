//! Working directory and process attributes: what the program's process
//! starts with besides its credentials.

use std::path::PathBuf;

use clap::Args;
use safespawn::Command;

use crate::parse::{self, Rlimit};

#[derive(Debug, Args)]
#[command(next_help_heading = "Working directory & process attributes")]
pub struct ProcessAttributes {
    /// Working directory of the program.
    #[arg(long, value_name = "DIR")]
    cwd: Option<PathBuf>,
    /// File mode creation mask, in octal (e.g. 077).
    #[arg(long, value_name = "MODE", value_parser = parse::umask)]
    umask: Option<u32>,
    /// Set a resource limit: NAME is as, core, cpu, data, fsize, locks,
    /// memlock, msgqueue, nice, nofile, nproc, rss, rtprio, rttime,
    /// sigpending or stack; values are numbers or 'unlimited'; without
    /// :HARD both limits are SOFT. Repeatable.
    #[arg(long, value_name = "NAME=SOFT[:HARD]", value_parser = parse::rlimit)]
    rlimit: Vec<Rlimit>,
}

impl ProcessAttributes {
    pub fn apply(self, mut cmd: Command) -> Command {
        if let Some(dir) = self.cwd {
            cmd = cmd.current_dir(dir);
        }
        if let Some(mode) = self.umask {
            cmd = cmd.umask(mode);
        }
        for r in &self.rlimit {
            cmd = cmd.rlimit(r.resource, r.soft, r.hard);
        }
        cmd
    }
}
