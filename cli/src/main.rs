//! `safespawn`: run a program the way security-sensitive code must, from the
//! command line. A hardened exec wrapper over the safespawn library: what
//! `env -i`, `setpriv`, `prlimit`, `timeout` and `daemonize` do, in one tool,
//! and confinement in namespaces and a filesystem view of its own with
//! bubblewrap's option names.
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

use clap::{ArgMatches, CommandFactory, FromArgMatches, Parser};
use safespawn::{Command, Stdio};

use crate::exit::{Failure, Items};
use crate::options::{
    cgroup, credentials, daemon, env, fds, knobs, landlock, mounts, namespaces, process, run,
    session,
};

const EXAMPLES: &str = "\
Examples:
  # A clean environment, no capabilities, no privilege gain through exec:
  safespawn --env-clear --clear-caps --no-new-privs -- /bin/sh -c 'env; grep Cap /proc/self/status'

  # Keep PATH, HOME, USER... and LC_ALL=C, add one variable, run in /tmp:
  safespawn --env-pass-common --env MODE=test --cwd /tmp -- make check

  # At most 64 open files, no core dumps, umask 077, killed after 5 seconds:
  safespawn --rlimit nofile=64 --rlimit core=0 --umask 077 --timeout 5s -- ./job

  # A sandbox as bubblewrap makes it, for any user: / is a new tmpfs with /usr
  # and /lib* read-only, a new /proc, /dev and /tmp; no network; pid 1:
  safespawn --unshare-all --map-root --root-tmpfs --ro-bind /usr /usr --ro-bind-try /lib /lib --ro-bind-try /lib64 /lib64 --ro-bind-try /bin /bin --proc /proc --dev /dev --tmpfs /tmp --hostname box -- /bin/sh

  # Show the exact command line (shell-quoted) without running it:
  safespawn --dry-run --env-clear --env 'GREETING=hello world' -- printf '%s\\n' x

Exit status: the program's; 124 on --timeout; 125 when set-up failed before
exec; 126 when the program cannot be executed; 127 when it is not found;
128+N when it was killed by signal N.

Mounts are applied in the order given, across option kinds (a --bind below
a --tmpfs needs the --tmpfs first), and every option under Mounts gives the
program a mount namespace of its own, as bubblewrap does (the library's
Command::mount needs unshare(MOUNT) explicitly). Without privilege, add
--unshare-user --map-root.

Signals: TERM, INT, HUP, QUIT, USR1, USR2, ALRM and WINCH sent to safespawn
are passed on to the program (as timeout(1) does).";

/// Run PROGRAM with a controlled environment, privileges, limits, file
/// descriptors, namespaces and filesystem view. Every file descriptor but
/// stdin, stdout, stderr and those given with --pass-fd is closed in the
/// program.
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
    knobs: knobs::Knobs,
    #[command(flatten)]
    credentials: credentials::Credentials,
    #[command(flatten)]
    namespaces: namespaces::Namespaces,
    #[command(flatten)]
    mounts: mounts::Mounts,
    #[command(flatten)]
    landlock: landlock::LandlockOptions,
    #[command(flatten)]
    session: session::Session,
    #[command(flatten)]
    cgroup: cgroup::Cgroup,
    #[command(flatten)]
    fds: fds::Fds,
    #[command(flatten)]
    daemon: daemon::Daemon,
    #[command(flatten)]
    run: run::Running,
}

fn main() -> ExitCode {
    // The matches are kept: the mounts' order is read from them.
    let parsed = Cli::command()
        .try_get_matches()
        .and_then(|matches| Ok((Cli::from_arg_matches(&matches)?, matches)));
    let (cli, matches) = match parsed {
        Ok(parsed) => parsed,
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
    match run(cli, &matches) {
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
/// `matches`: what `cli` was parsed from.
fn run(cli: Cli, matches: &ArgMatches) -> Result<u8, Failure> {
    let Cli {
        env,
        process,
        knobs,
        credentials,
        namespaces,
        mounts,
        landlock,
        session,
        cgroup,
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
    let cmd = knobs.apply(cmd);
    let cmd = credentials.apply(cmd)?;
    let mut items = Items::default();
    let cmd = namespaces.apply(cmd, &mut items)?;
    let cmd = mounts.apply(cmd, matches, &mut items)?;
    let cmd = landlock.apply(cmd)?;
    let cmd = session.apply(cmd);
    let cmd = cgroup.apply(cmd);
    let (cmd, stdio) = fds.apply(cmd)?;
    if run.dry_run {
        return run::dry(cmd, &items);
    }
    if run.verbose {
        eprintln!("{cmd}");
    }
    if daemon.daemonize {
        let cmd = stdio.apply(cmd, Stdio::null)?;
        return daemon::start(daemon.apply(cmd), &items);
    }
    let cmd = stdio.apply(cmd, Stdio::inherit)?;
    run::foreground(cmd, &items, run.timeout, !session.new_session)
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
        Cli::command().debug_assert();
    }
}
