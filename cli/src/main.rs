//! `safespawn`: run a program the way security-sensitive code must, from the
//! command line. A hardened exec wrapper over the safespawn library: what
//! `env -i`, `setpriv`, `prlimit`, `timeout` and `daemonize` do, in one tool.
//!
//! Exit status: the program's own; 124 when `--timeout` expired; 125 when
//! safespawn or the set-up before exec failed; 126 when the program cannot
//! be executed; 127 when it was not found; 128+N when it died by signal N.

mod exit;
mod forward;
mod parse;

mod daemon;

use std::ffi::OsString;
use std::fs::{File, OpenOptions};
use std::os::fd::BorrowedFd;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use safespawn::{dry_run, Capability, Command, Signal, Stdio};

use crate::exit::Failure;
use crate::parse::Rlimit;

const EXAMPLES: &str = "\
Examples:
  # A clean environment, no capabilities, no privilege gain through exec:
  safespawn --env-clear --clear-caps --no-new-privs -- /bin/sh -c 'env; grep Cap /proc/self/status'

  # Keep PATH, HOME, USER... and LC_ALL=C, add one variable, run in /tmp:
  safespawn --env-pass-common --env MODE=test --cwd /tmp -- make check

  # At most 64 open files, no core dumps, umask 077, killed after 5 seconds:
  safespawn --rlimit nofile=64 --rlimit core=0 --umask 077 --timeout 5s -- ./job

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
    /// Working directory of the program.
    #[arg(long, value_name = "DIR")]
    cwd: Option<PathBuf>,
    /// File mode creation mask, in octal (e.g. 077).
    #[arg(long, value_name = "MODE", value_parser = parse::umask)]
    umask: Option<u32>,
    /// Clear every capability set and the bounding set (except --allow-cap).
    #[arg(long)]
    clear_caps: bool,
    /// Keep capability NAME (e.g. net_bind_service) when clearing. Repeatable.
    #[arg(long, value_name = "NAME", requires = "clear_caps")]
    allow_cap: Vec<String>,
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
    /// Set a resource limit: NAME is as, core, cpu, data, fsize, locks,
    /// memlock, msgqueue, nice, nofile, nproc, rss, rtprio, rttime,
    /// sigpending or stack; values are numbers or 'unlimited'; without
    /// :HARD both limits are SOFT. Repeatable.
    #[arg(long, value_name = "NAME=SOFT[:HARD]", value_parser = parse::rlimit)]
    rlimit: Vec<Rlimit>,
    /// Set no_new_privs: exec can never grant privileges (setuid, file caps).
    #[arg(long)]
    no_new_privs: bool,
    /// Signal (name or number) the program gets when safespawn dies.
    #[arg(long, value_name = "SIG", value_parser = parse::signal)]
    pdeathsig: Option<Signal>,
    /// Start the program in a new session (setsid).
    #[arg(long)]
    new_session: bool,
    /// Keep safespawn's open file descriptor N open in the program, under the
    /// same number. Repeatable.
    #[arg(long, value_name = "N")]
    pass_fd: Vec<i32>,
    /// Read standard input from FILE (default: inherited).
    #[arg(long, value_name = "FILE")]
    stdin: Option<PathBuf>,
    /// Write standard output to FILE, created or truncated (default: inherited).
    #[arg(long, value_name = "FILE")]
    stdout: Option<PathBuf>,
    /// Write standard error to FILE, created or truncated (default: inherited).
    #[arg(long, value_name = "FILE")]
    stderr: Option<PathBuf>,
    /// Run the program as a daemon (double fork, new session, cwd /, stdio
    /// on /dev/null unless redirected); safespawn prints the daemon's pid and
    /// returns once it started.
    #[arg(long, conflicts_with_all = ["cwd", "timeout"])]
    daemonize: bool,
    /// With --daemonize: the daemon creates, locks and writes PATH with its
    /// pid before exec.
    #[arg(long, value_name = "PATH", requires = "daemonize")]
    pidfile: Option<PathBuf>,
    /// Kill the program (TERM, then KILL) after DURATION, e.g. 300ms, 5s, 2m;
    /// safespawn then exits with 124.
    #[arg(long, value_name = "DURATION", value_parser = parse::duration)]
    timeout: Option<Duration>,
    /// Print the shell-quoted command line on stdout and exit 0 without
    /// running anything.
    #[arg(long)]
    dry_run: bool,
    /// Print the shell-quoted command line on stderr before running it.
    #[arg(short, long)]
    verbose: bool,
    /// The program and its arguments (a bare name is searched in PATH: the
    /// program's PATH when the options set one, else safespawn's).
    #[arg(
        value_name = "PROGRAM [ARGS]...",
        required = true,
        trailing_var_arg = true
    )]
    command: Vec<OsString>,
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
            let text = e.render().to_string();
            let line = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
            let line = line.strip_prefix("error: ").unwrap_or(line);
            eprintln!("safespawn: {line} (see --help)");
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

fn run(cli: Cli) -> Result<u8, Failure> {
    let cmd = configure(&cli)?;
    if cli.dry_run {
        // Dogfooding the library's dry run: the line is exactly what `run`
        // would log, and build()'s checks (names, NUL bytes, fds) apply.
        let (lines, result) = dry_run::capture(|| cmd.status());
        result.map_err(Failure::from)?;
        for line in lines {
            println!("{line}");
        }
        return Ok(0);
    }
    if cli.verbose {
        eprintln!("{cmd}");
    }
    if cli.daemonize {
        return daemonize(cmd, &cli);
    }
    let prepared = with_stdio(cmd, &cli)?.build()?;
    forward::block();
    let mut child = prepared.spawn()?;
    if let Err(e) = forward::start(child.pidfd(), !cli.new_session) {
        return Err(Failure::setup(format!(
            "starting the signal forwarder: {e}"
        )));
    }
    let status = match cli.timeout {
        None => child.wait()?.status(),
        Some(timeout) => match child.wait_timeout(timeout)? {
            Some(status) => status,
            None => {
                child.abort()?;
                return Err(safespawn::Error::Timeout {
                    command: prepared.to_string(),
                    timeout,
                }
                .into());
            }
        },
    };
    Ok(exit::code_of(status))
}

/// Everything but standard I/O and the mode.
fn configure(cli: &Cli) -> Result<Command, Failure> {
    let mut cmd = Command::from_argv(&cli.command);
    if cli.env_clear {
        cmd = cmd.env_clear();
    }
    if cli.env_pass_common {
        cmd = cmd.env_pass_common();
    }
    for name in &cli.env_pass {
        cmd = cmd.env_pass(name);
    }
    for entry in &cli.env {
        cmd = cmd.env_string(entry);
    }
    if let Some(dir) = &cli.cwd {
        cmd = cmd.current_dir(dir);
    }
    if let Some(mode) = cli.umask {
        cmd = cmd.umask(mode);
    }
    if cli.clear_caps {
        cmd = cmd.clear_caps();
    }
    for name in &cli.allow_cap {
        let cap: Capability = name
            .parse()
            .map_err(|e| Failure::setup(format!("--allow-cap {name}: {e}")))?;
        cmd = cmd.allow_cap(cap);
    }
    if let Some(gid) = cli.gid {
        cmd = cmd.gid(gid);
    }
    if let Some(groups) = &cli.groups {
        cmd = cmd.groups(&groups.0);
    }
    if let Some(uid) = cli.uid {
        cmd = cmd.uid(uid);
    }
    for r in &cli.rlimit {
        cmd = cmd.rlimit(r.resource, r.soft, r.hard);
    }
    if cli.no_new_privs {
        cmd = cmd.no_new_privs();
    }
    if let Some(sig) = cli.pdeathsig {
        cmd = cmd.parent_death_signal(sig);
    }
    if cli.new_session {
        cmd = cmd.new_session();
    }
    for &fd in &cli.pass_fd {
        cmd = cmd.pass_fd_shared(open_fd(fd)?);
    }
    Ok(cmd)
}

/// Borrows safespawn's own fd `fd` after checking that it is open.
fn open_fd(fd: i32) -> Result<BorrowedFd<'static>, Failure> {
    if fd < 0 {
        return Err(Failure::setup(format!(
            "--pass-fd {fd}: not a file descriptor number"
        )));
    }
    // SAFETY: only used for the fcntl probe below, which fails cleanly (EBADF)
    // when nothing is open under that number.
    let probe = unsafe { BorrowedFd::borrow_raw(fd) };
    rustix::io::fcntl_getfd(probe)
        .map_err(|e| Failure::setup(format!("--pass-fd {fd}: not open in safespawn: {e}")))?;
    // SAFETY: `fd` is open (checked above) and safespawn never closes the
    // fds it inherited, so the borrow stays valid until the process exits.
    Ok(unsafe { BorrowedFd::borrow_raw(fd) })
}

/// Standard I/O: inherited, unless redirected to a file.
fn with_stdio(mut cmd: Command, cli: &Cli) -> Result<Command, Failure> {
    cmd = cmd.stdin(match &cli.stdin {
        Some(path) => Stdio::from(open_file(path, "--stdin", false)?),
        None => Stdio::inherit(),
    });
    cmd = cmd.stdout(match &cli.stdout {
        Some(path) => Stdio::from(open_file(path, "--stdout", true)?),
        None => Stdio::inherit(),
    });
    cmd = cmd.stderr(match &cli.stderr {
        Some(path) => Stdio::from(open_file(path, "--stderr", true)?),
        None => Stdio::inherit(),
    });
    Ok(cmd)
}

fn open_file(path: &std::path::Path, option: &str, write: bool) -> Result<File, Failure> {
    let result = if write {
        OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)
    } else {
        File::open(path)
    };
    result.map_err(|e| Failure::setup(format!("{option} {}: {e}", path.display())))
}

fn daemonize(cmd: Command, cli: &Cli) -> Result<u8, Failure> {
    daemon::run(
        cmd,
        cli.stdin.as_deref(),
        cli.stdout.as_deref(),
        cli.stderr.as_deref(),
        cli.pidfile.as_deref(),
    )
}
