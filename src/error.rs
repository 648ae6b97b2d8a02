//! The crate's one error type, and the stage names the child reports.

use std::fmt;
use std::io;
use std::process::ExitStatus;
use std::time::Duration;

use rustix::io::Errno;

/// Everything that can go wrong when building, spawning or running a command.
///
/// Each variant says *what* failed and *where*: `Build` names the offending
/// argument, variable or file descriptor; `Spawn` carries the child-side
/// [`Stage`] and the real `errno` sent back over a close-on-exec pipe; `Exit`
/// and `Timeout` carry the shell-quoted command line.
///
/// ```
/// use safespawn::{Command, Error, Stage};
///
/// let err = Command::new("/nonexistent/program").status().unwrap_err();
/// match &err {
///     Error::Spawn { stage, errno, .. } => {
///         assert_eq!(*stage, Stage::Exec);
///         assert_eq!(errno.raw_os_error(), libc::ENOENT);
///     }
///     other => panic!("unexpected error: {other}"),
/// }
/// // Every error converts to std::io::Error.
/// let io: std::io::Error = err.into();
/// assert_eq!(io.kind(), std::io::ErrorKind::NotFound);
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The configuration is invalid; nothing was started.
    #[error("invalid command: {item}: {problem}")]
    Build {
        /// The offending item: which argument, variable, file descriptor or option.
        item: String,
        /// What is wrong with it.
        problem: String,
    },
    /// The child failed before `exec`; nothing of the program ran.
    #[error("could not start {program}: {stage} failed: {errno}")]
    Spawn {
        /// Where in the child's set-up the failure happened.
        stage: Stage,
        /// The error the failing system call returned.
        errno: Errno,
        /// The program that was to be started.
        program: String,
    },
    /// The program ran and exited unsuccessfully (non-zero or killed by a signal).
    #[error("{command} {}{}", DisplayStatus(status), DisplayStderr(stderr))]
    Exit {
        /// How the program ended.
        status: ExitStatus,
        /// The shell-quoted command line.
        command: String,
        /// The captured standard error (a bounded tail), empty if not captured.
        stderr: String,
    },
    /// The timeout set with `.timeout(..)` expired; the child was aborted and reaped.
    #[error("{command} timed out after {timeout:?} and was killed")]
    Timeout {
        /// The shell-quoted command line.
        command: String,
        /// The timeout that expired.
        timeout: Duration,
    },
    /// A parent-side system call failed.
    #[error(transparent)]
    Io(#[from] io::Error),
}

struct DisplayStatus<'a>(&'a ExitStatus);

impl fmt::Display for DisplayStatus<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use std::os::unix::process::ExitStatusExt;
        match (self.0.code(), self.0.signal()) {
            (Some(code), _) => write!(f, "exited with status {code}"),
            (None, Some(sig)) => {
                write!(f, "was killed by signal {sig}")?;
                if self.0.core_dumped() {
                    f.write_str(" (core dumped)")?;
                }
                Ok(())
            }
            _ => write!(f, "ended with wait status {:#x}", self.0.into_raw()),
        }
    }
}

struct DisplayStderr<'a>(&'a str);

impl fmt::Display for DisplayStderr<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = self.0.trim_end();
        if text.is_empty() {
            Ok(())
        } else {
            write!(f, "; stderr:\n{text}")
        }
    }
}

impl Error {
    pub(crate) fn build(item: impl Into<String>, problem: impl Into<String>) -> Self {
        Error::Build {
            item: item.into(),
            problem: problem.into(),
        }
    }

    /// The `io::Error` of a failed parent-side call, with what was being done.
    pub(crate) fn io(what: &str, errno: Errno) -> Self {
        let e = io::Error::from(errno);
        Error::Io(io::Error::new(e.kind(), format!("{what}: {e}")))
    }
}

impl From<Error> for io::Error {
    fn from(err: Error) -> io::Error {
        let kind = match err {
            Error::Io(e) => return e,
            Error::Build { .. } => io::ErrorKind::InvalidInput,
            Error::Spawn { errno, .. } => io::Error::from(errno).kind(),
            Error::Exit { .. } => io::ErrorKind::Other,
            Error::Timeout { .. } => io::ErrorKind::TimedOut,
        };
        io::Error::new(kind, err)
    }
}

/// Where in the child's preparation a failure happened, as reported by
/// [`Error::Spawn`].
///
/// The stages are listed in the order the child runs them.
///
/// ```
/// use safespawn::Stage;
/// assert_eq!(Stage::Chdir.to_string(), "changing the working directory");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Stage {
    /// Resetting signal dispositions and the signal mask.
    Signals,
    /// Placing standard input, output and error.
    Stdio,
    /// Placing passed and mapped file descriptors.
    Fds,
    /// Closing every file descriptor that is not kept.
    CloseFds,
    /// Daemon mode: creating the session and the daemon process.
    Daemon,
    /// Daemon mode: creating, locking and writing the pidfile.
    Pidfile,
    /// Setting the umask.
    Umask,
    /// Setting a resource limit.
    Rlimit,
    /// Setting the supplementary groups.
    Groups,
    /// Setting the group id.
    Gid,
    /// Setting the user id.
    Uid,
    /// Changing the capability sets.
    Caps,
    /// Setting `no_new_privs`.
    NoNewPrivs,
    /// Setting the parent-death signal, or finding the parent already gone.
    ParentDeathSignal,
    /// Creating a new session.
    Session,
    /// Joining or creating a process group.
    ProcessGroup,
    /// Changing the working directory.
    Chdir,
    /// A `pre_exec` hook returned an error.
    Hook,
    /// Waiting for `resume()` of a paused spawn.
    Handshake,
    /// Executing the program.
    Exec,
}

impl Stage {
    pub(crate) const ALL: [Stage; 20] = [
        Stage::Signals,
        Stage::Stdio,
        Stage::Fds,
        Stage::CloseFds,
        Stage::Daemon,
        Stage::Pidfile,
        Stage::Umask,
        Stage::Rlimit,
        Stage::Groups,
        Stage::Gid,
        Stage::Uid,
        Stage::Caps,
        Stage::NoNewPrivs,
        Stage::ParentDeathSignal,
        Stage::Session,
        Stage::ProcessGroup,
        Stage::Chdir,
        Stage::Hook,
        Stage::Handshake,
        Stage::Exec,
    ];

    /// The wire code sent by the child.
    pub(crate) const fn code(self) -> u32 {
        self as u32
    }

    /// Decodes a wire code; `None` for a value the child cannot have sent.
    pub(crate) fn from_code(code: u32) -> Option<Stage> {
        Stage::ALL.get(code as usize).copied()
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Stage::Signals => "resetting signals",
            Stage::Stdio => "setting up stdio",
            Stage::Fds => "setting up file descriptors",
            Stage::CloseFds => "closing inherited file descriptors",
            Stage::Daemon => "daemonizing",
            Stage::Pidfile => "acquiring the pidfile",
            Stage::Umask => "setting the umask",
            Stage::Rlimit => "setting a resource limit",
            Stage::Groups => "setting supplementary groups",
            Stage::Gid => "setting the group id",
            Stage::Uid => "setting the user id",
            Stage::Caps => "changing capabilities",
            Stage::NoNewPrivs => "setting no_new_privs",
            Stage::ParentDeathSignal => "setting the parent-death signal",
            Stage::Session => "creating a new session",
            Stage::ProcessGroup => "setting the process group",
            Stage::Chdir => "changing the working directory",
            Stage::Hook => "a pre_exec hook",
            Stage::Handshake => "waiting to be resumed",
            Stage::Exec => "exec",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stage_codes_round_trip() {
        for (i, s) in Stage::ALL.iter().enumerate() {
            assert_eq!(s.code() as usize, i, "{s:?} is out of order in Stage::ALL");
            assert_eq!(Stage::from_code(s.code()), Some(*s));
        }
        assert_eq!(Stage::from_code(Stage::ALL.len() as u32), None);
    }

    #[test]
    fn io_conversion_keeps_kind() {
        let e = Error::Spawn {
            stage: Stage::Exec,
            errno: Errno::ACCESS,
            program: "x".into(),
        };
        assert_eq!(io::Error::from(e).kind(), io::ErrorKind::PermissionDenied);
        let e = Error::build("argument 1", "contains a NUL byte");
        assert_eq!(io::Error::from(e).kind(), io::ErrorKind::InvalidInput);
    }
}
