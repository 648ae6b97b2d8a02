//! `safespawn`: run a program the way security-sensitive code must, from the
//! command line. A hardened exec wrapper over the safespawn library: what
//! `env -i`, `setpriv`, `prlimit`, `timeout` and `daemonize` do, in one tool.
//!
//! Exit status: the program's own; 124 when `--timeout` expired; 125 when
//! safespawn or the set-up before exec failed; 126 when the program cannot
//! be executed; 127 when it was not found; 128+N when it died by signal N.

mod exit;
mod forward;
mod options;
mod parse;

use std::ffi::OsString;
use std::process::ExitCode;

use clap::Parser;
use safespawn::{Command, Stdio};

use crate::exit::Failure;
use crate::options::{credentials, daemon, env, fds, process, run, seccomp, session};

const EXAMPLES: &str = "\
Examples:
  # A clean environment, no capabilities, no privilege gain through exec:
  safespawn --env-clear --clear-caps --no-new-privs -- /bin/sh -c 'env; grep Cap /proc/self/status'

  # Keep PATH, HOME, USER... and LC_ALL=C, add one variable, run in /tmp:
  safespawn --env-pass-common --env MODE=test --cwd /tmp -- make check

  # At most 64 open files, no core dumps, umask 077, killed after 5 seconds:
  safespawn --rlimit nofile=64 --rlimit core=0 --umask 077 --timeout 5s -- ./job

  # ptrace(2) and mount(2) fail with EPERM, bpf(2) with ENOSYS:
  safespawn --seccomp-deny ptrace,mount --seccomp-deny bpf:ENOSYS -- ./job

  # Show the exact command line (shell-quoted) without running it:
  safespawn --dry-run --env-clear --env 'GREETING=hello world' -- printf '%s\\n' x

Exit status: the program's; 124 on --timeout; 125 when set-up failed before
exec; 126 when the program cannot be executed; 127 when it is not found;
128+N when it was killed by signal N.

Signals: TERM, INT, HUP, QUIT, USR1, USR2, ALRM and WINCH sent to safespawn
are passed on to the program (as timeout(1) does).";

/// Run PROGRAM with a controlled environment, privileges, limits and file
/// descriptors. Every file descriptor but stdin, stdout, stderr and those
/// given with --pass-fd is closed in the program.
#[derive(Debug, Parser)]
#[command(name = "safespawn", version, after_help = EXAMPLES)]
struct Cli {
    // First: a flattened group's help heading stays in force for the
    // arguments declared after it.
    /// The program and its arguments (a bare name is searched in PATH: the
    /// program's PATH when the options set one, else safespawn's).
    #[arg(
        value_name = "PROGRAM [ARGS]...",
        required = true,
        trailing_var_arg = true
    )]
    command: Vec<OsString>,
    #[command(flatten)]
    env: env::Environment,
    #[command(flatten)]
    process: process::ProcessAttributes,
    #[command(flatten)]
    credentials: credentials::Credentials,
    #[command(flatten)]
    seccomp: seccomp::Filters,
    #[command(flatten)]
    session: session::Session,
    #[command(flatten)]
    fds: fds::Fds,
    #[command(flatten)]
    daemon: daemon::Daemon,
    #[command(flatten)]
    run: run::Running,
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() => {
            // --help, --version
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!(
                "safespawn: {} (see --help)",
                one_line(&e.render().to_string())
            );
            return ExitCode::from(exit::SETUP_FAILED);
        }
    };
    match run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(failure) => {
            eprintln!("safespawn: {}", failure.message);
            ExitCode::from(failure.code)
        }
    }
}

/// clap's error as one line: its first line, and when that ends with a
/// colon ("the following required arguments were not provided:"), the
/// indented lines naming the arguments after it; without the usage block.
fn one_line(text: &str) -> String {
    let mut lines = text.lines().skip_while(|l| l.trim().is_empty());
    let first = lines.next().unwrap_or("");
    let mut line = first.strip_prefix("error: ").unwrap_or(first).to_string();
    if line.ends_with(':') {
        let named: Vec<&str> = lines
            .take_while(|l| l.starts_with(' ') && !l.trim().is_empty())
            .map(str::trim)
            .collect();
        line.push(' ');
        line.push_str(&named.join(", "));
    }
    line
}

/// Applies the groups in turn, then runs the command in the mode asked for.
fn run(cli: Cli) -> Result<u8, Failure> {
    let Cli {
        env,
        process,
        credentials,
        seccomp,
        session,
        fds,
        daemon,
        run,
        command,
    } = cli;
    if let Some(flags) = run.force_compat {
        safespawn::__force_compat(flags);
    }
    let cmd = Command::from_argv(&command);
    let cmd = env.apply(cmd);
    let cmd = process.apply(cmd);
    let cmd = credentials.apply(cmd)?;
    let cmd = seccomp.apply(cmd)?;
    let cmd = session.apply(cmd);
    let (cmd, stdio) = fds.apply(cmd)?;
    if run.dry_run {
        return run::dry(cmd);
    }
    if run.verbose {
        eprintln!("{cmd}");
    }
    if daemon.daemonize {
        let cmd = stdio.apply(cmd, Stdio::null)?;
        return daemon::start(daemon.apply(cmd));
    }
    let cmd = stdio.apply(cmd, Stdio::inherit)?;
    run::foreground(cmd, run.timeout, !session.new_session)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// clap's own checks of the definition (ids named by requires and
    /// conflicts_with exist, no two options share a name, ...), which
    /// otherwise run only when an affected option is parsed.
    #[test]
    fn an_error_names_the_missing_arguments() {
        let err =
            Cli::try_parse_from(["safespawn", "--pidfile", "/tmp/x", "--", "true"]).unwrap_err();
        let line = one_line(&err.render().to_string());
        assert!(line.contains("--daemonize"), "{line}");
        assert!(!line.contains('\n'), "{line}");
        let err = Cli::try_parse_from(["safespawn"]).unwrap_err();
        let line = one_line(&err.render().to_string());
        assert!(line.contains("PROGRAM"), "{line}");
    }

    #[test]
    fn cli_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
