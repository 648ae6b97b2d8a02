//! Session: the program's ties to safespawn and to the terminal.

use clap::Args;
use safespawn::{Command, Signal};

use crate::parse;

// Copy: the signal forwarder needs `new_session` after `apply`.
#[derive(Debug, Clone, Copy, Args)]
#[command(next_help_heading = "Session")]
pub struct Session {
    /// Signal (name or number) the program gets when safespawn dies.
    #[arg(long, value_name = "SIG", value_parser = parse::signal)]
    pdeathsig: Option<Signal>,
    /// Start the program in a new session (setsid).
    #[arg(long)]
    pub new_session: bool,
}

impl Session {
    pub fn apply(self, mut cmd: Command) -> Command {
        if let Some(sig) = self.pdeathsig {
            cmd = cmd.parent_death_signal(sig);
        }
        if self.new_session {
            cmd = cmd.new_session();
        }
        cmd
    }
}
