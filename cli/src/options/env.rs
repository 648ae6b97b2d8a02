//! Environment: what the program inherits, and what it is given.

use std::ffi::OsString;

use clap::Args;
use safespawn::Command;

use crate::parse;

#[derive(Debug, Args)]
#[command(next_help_heading = "Environment")]
pub struct Environment {
    /// Start from an empty environment (without any --env* option the
    /// program inherits safespawn's whole environment).
    #[arg(long)]
    env_clear: bool,
    /// Pass PATH, LD_PRELOAD, LD_LIBRARY_PATH, HOME, USER, LOGNAME, TMPDIR
    /// when set, and set LC_ALL=C; nothing else is inherited.
    #[arg(long)]
    env_pass_common: bool,
    /// Pass variable NAME from safespawn's environment, if set; nothing
    /// else is inherited. Repeatable.
    #[arg(long, value_name = "NAME")]
    env_pass: Vec<OsString>,
    /// Set variable K to V; nothing else is inherited. Repeatable.
    #[arg(long, value_name = "K=V", value_parser = parse::env_entry)]
    env: Vec<String>,
}

impl Environment {
    pub fn apply(self, mut cmd: Command) -> Command {
        // The order matters: env_clear empties the list, so it comes first,
        // and a later value for a name replaces an earlier one, so --env
        // wins over a variable passed by --env-pass or --env-pass-common.
        if self.env_clear {
            cmd = cmd.env_clear();
        }
        if self.env_pass_common {
            cmd = cmd.env_pass_common();
        }
        for name in &self.env_pass {
            cmd = cmd.env_pass(name);
        }
        for entry in &self.env {
            cmd = cmd.env_string(entry);
        }
        cmd
    }
}
