//! File descriptors and stdio: what is open in the program. Every fd but
//! 0, 1, 2 and the --pass-fd ones is closed by the library.

use std::fs::{File, OpenOptions};
use std::os::fd::BorrowedFd;
use std::path::{Path, PathBuf};

use clap::Args;
use safespawn::{Command, Stdio};

use crate::exit::Failure;

#[derive(Debug, Args)]
#[command(next_help_heading = "File descriptors & stdio")]
pub struct Fds {
    /// Keep safespawn's open file descriptor N open in the program, under the
    /// same number. Repeatable.
    #[arg(long, value_name = "N")]
    pass_fd: Vec<i32>,
    #[command(flatten)]
    stdio: StdioFiles,
}

/// The files standard I/O is redirected to, not opened yet.
#[derive(Debug, Args)]
pub struct StdioFiles {
    /// Read standard input from FILE (default: inherited).
    #[arg(long, value_name = "FILE")]
    stdin: Option<PathBuf>,
    /// Write standard output to FILE, created or truncated (default: inherited).
    #[arg(long, value_name = "FILE")]
    stdout: Option<PathBuf>,
    /// Write standard error to FILE, created or truncated (default: inherited).
    #[arg(long, value_name = "FILE")]
    stderr: Option<PathBuf>,
}

impl Fds {
    /// Passes the --pass-fd descriptors. The stdio files come back unopened:
    /// a dry run must not create or truncate them, and what an unredirected
    /// stream is connected to depends on the mode (see `StdioFiles::apply`).
    pub fn apply(self, mut cmd: Command) -> Result<(Command, StdioFiles), Failure> {
        for &fd in &self.pass_fd {
            cmd = cmd.pass_fd_shared(open_fd(fd)?);
        }
        Ok((cmd, self.stdio))
    }
}

impl StdioFiles {
    /// Opens the files and connects them; a stream without one gets
    /// `unredirected()` (inherited to run in the foreground, /dev/null for a
    /// daemon, which must not hold the invoking terminal).
    pub fn apply(self, cmd: Command, unredirected: fn() -> Stdio) -> Result<Command, Failure> {
        let open = |path: Option<PathBuf>, option, write| match path {
            Some(path) => open_file(&path, option, write).map(Stdio::from),
            None => Ok(unredirected()),
        };
        Ok(cmd
            .stdin(open(self.stdin, "--stdin", false)?)
            .stdout(open(self.stdout, "--stdout", true)?)
            .stderr(open(self.stderr, "--stderr", true)?))
    }
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

fn open_file(path: &Path, option: &str, write: bool) -> Result<File, Failure> {
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
