//! Seccomp filters: the system calls the program may make.

use std::path::PathBuf;

use clap::Args;
use safespawn::{Command, Seccomp};

use crate::exit::Failure;
use crate::parse;

#[derive(Debug, Args)]
#[command(next_help_heading = "Seccomp filters")]
pub struct Filters {
    /// These system calls fail with ERRNO (a name such as EACCES, or a
    /// number; default EPERM); all others are allowed. Repeatable.
    #[arg(long, value_name = "SYSCALL,...[:ERRNO]", value_parser = parse::syscall_list)]
    seccomp_deny: Vec<parse::SyscallList>,
    /// Only these system calls (and exec and exit) succeed; all others fail
    /// with ERRNO (default EPERM). Repeatable.
    #[arg(long, value_name = "SYSCALL,...[:ERRNO]", value_parser = parse::syscall_list)]
    seccomp_allow: Vec<parse::SyscallList>,
    /// Install the compiled classic BPF program in FILE (struct sock_filter
    /// instructions, native byte order) as given; it must allow exec.
    /// Repeatable. Filters are installed in this order: every --seccomp-deny,
    /// every --seccomp-allow, then every --seccomp-bpf.
    #[arg(long, value_name = "FILE")]
    seccomp_bpf: Vec<PathBuf>,
}

impl Filters {
    pub fn apply(self, mut cmd: Command) -> Result<Command, Failure> {
        for list in self.seccomp_deny {
            cmd = cmd.seccomp(Seccomp::deny(list.names, list.errno));
        }
        for list in self.seccomp_allow {
            cmd = cmd.seccomp(Seccomp::allow(list.names, list.errno));
        }
        for file in &self.seccomp_bpf {
            let program = std::fs::read(file)
                .map_err(|e| Failure::setup(format!("--seccomp-bpf {}: {e}", file.display())))?;
            cmd = cmd.seccomp(Seccomp::from_bpf(program));
        }
        Ok(cmd)
    }
}
