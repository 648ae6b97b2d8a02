//! Credentials: who the program runs as, and what it may do.

use clap::Args;
use safespawn::{Capability, Command};

use crate::exit::Failure;
use crate::parse;

#[derive(Debug, Args)]
#[command(next_help_heading = "Credentials")]
pub struct Credentials {
    /// Run as user id UID (numeric); supplementary groups are dropped unless
    /// --groups is given.
    #[arg(long, value_name = "UID")]
    uid: Option<u32>,
    /// Run with group id GID (numeric).
    #[arg(long, value_name = "GID")]
    gid: Option<u32>,
    /// Supplementary groups: comma-separated numeric ids ('' for none).
    #[arg(long, value_name = "GID,...", value_parser = parse::groups)]
    groups: Option<parse::Groups>,
    /// Clear every capability set and the bounding set (except --allow-cap).
    #[arg(long)]
    clear_caps: bool,
    /// Keep capability NAME (e.g. net_bind_service) when clearing. Repeatable.
    #[arg(long, value_name = "NAME", requires = "clear_caps")]
    allow_cap: Vec<String>,
    /// Set no_new_privs: exec can never grant privileges (setuid, file caps).
    #[arg(long)]
    no_new_privs: bool,
}

impl Credentials {
    pub fn apply(self, mut cmd: Command) -> Result<Command, Failure> {
        if self.clear_caps {
            cmd = cmd.clear_caps();
        }
        // Parsed here rather than by clap so that the message reads
        // "--allow-cap NAME: ...", as the other set-up errors do.
        for name in &self.allow_cap {
            let cap: Capability = name
                .parse()
                .map_err(|e| Failure::setup(format!("--allow-cap {name}: {e}")))?;
            cmd = cmd.allow_cap(cap);
        }
        if let Some(gid) = self.gid {
            cmd = cmd.gid(gid);
        }
        if let Some(groups) = &self.groups {
            cmd = cmd.groups(&groups.0);
        }
        if let Some(uid) = self.uid {
            cmd = cmd.uid(uid);
        }
        if self.no_new_privs {
            cmd = cmd.no_new_privs();
        }
        Ok(cmd)
    }
}
