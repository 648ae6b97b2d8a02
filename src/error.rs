//! The crate's one error type, and the stage names the child reports.

use std::fmt;
use std::io;
use std::path::PathBuf;
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
        /// What kind of problem it is, for callers that act on it (an exit
        /// code, a retry) without reading the message.
        kind: BuildErrorKind,
        /// The offending item: which argument, variable, file descriptor or option.
        item: String,
        /// What is wrong with it.
        problem: String,
    },
    /// The child failed before `exec`; nothing of the program ran.
    #[error(
        "could not start {program}: {stage}{} failed: {errno}",
        DisplayPath(path)
    )]
    Spawn {
        /// Where in the child's set-up the failure happened.
        stage: Stage,
        /// The error the failing system call returned.
        errno: Errno,
        /// The program that was to be started.
        program: String,
        /// The path the failing step worked on, where it has one: the
        /// working directory ([`Stage::Chdir`]), the pidfile
        /// ([`Stage::Pidfile`]), a mount's destination ([`Stage::Mount`]),
        /// the map file the parent could not write ([`Stage::IdMap`] of
        /// `uid_map` / `gid_map` ranges), the cgroup directory
        /// ([`Stage::Cgroup`]), the `/proc` file written
        /// ([`Stage::OomScoreAdj`], [`Stage::Label`]).
        path: Option<PathBuf>,
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
    /// A stage of a [`Pipeline`](crate::Pipeline) ran and failed
    /// (pipefail): the rightmost stage that exited non-zero or was killed
    /// by a signal, as bash's `pipefail` picks it, except that an upstream
    /// stage killed by `SIGPIPE` is not a failure unless the pipeline says
    /// [`sigpipe_is_failure`](crate::Pipeline::sigpipe_is_failure). Every
    /// stage's status is in [`PipelineStatus`](crate::PipelineStatus).
    #[error(
        "pipeline stage {stage} ({command}) {}{}",
        DisplayStatus(status),
        DisplayStderr(stderr)
    )]
    Pipeline {
        /// The stage's index, from 0 (the first command).
        stage: usize,
        /// The stage's program, as given.
        program: String,
        /// The stage's shell-quoted command line.
        command: String,
        /// How the stage ended.
        status: ExitStatus,
        /// The end of the stage's captured standard error (with its
        /// stderr [`Stdio::piped`](crate::Stdio::piped) in a synchronous
        /// run), empty if not captured.
        stderr: String,
    },
    /// The timeout set with `.timeout(..)` expired; the child was aborted and reaped.
    #[error("{command} timed out after {timeout:?} and was killed")]
    Timeout {
        /// The shell-quoted command line.
        command: String,
        /// The timeout that expired.
        timeout: Duration,
        /// What a buffered run had captured of stdout (or of the interleaved
        /// output) when the child was aborted, as CPython's and Go's
        /// timeouts carry it; empty when nothing was captured.
        stdout: Vec<u8>,
        /// What a buffered run had captured of stderr; empty otherwise.
        stderr: Vec<u8>,
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

struct DisplayPath<'a>(&'a Option<PathBuf>);

impl fmt::Display for DisplayPath<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(p) => write!(f, " {}", p.display()),
            None => Ok(()),
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

/// What kind of problem an [`Error::Build`] reports.
///
/// The message (`item` and `problem`) is for people; the kind is for code:
/// the `safespawn` tool maps [`NotFound`](BuildErrorKind::NotFound) of the
/// program to exit status 127 and [`NotExecutable`](BuildErrorKind::NotExecutable)
/// to 126, as env(1) does.
///
/// ```
/// use safespawn::{BuildErrorKind, Command};
///
/// let err = Command::new("no-such-program-anywhere").build().unwrap_err();
/// assert_eq!(err.build_kind(), Some(BuildErrorKind::NotFound));
/// let err = Command::new("echo").arg("a\0b").build().unwrap_err();
/// assert_eq!(err.build_kind(), Some(BuildErrorKind::Nul));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum BuildErrorKind {
    /// A program name is not on the PATH searched, or a file or directory
    /// the command names does not exist (a mount's source, a cgroup).
    NotFound,
    /// A program was found but cannot be executed by this user.
    NotExecutable,
    /// A string (argument, variable, path) contains a NUL byte.
    Nul,
    /// A string, or argv and envp together, is longer than execve accepts (`E2BIG`).
    TooLong,
    /// Two items want the same place (two fds for one child number).
    Collision,
    /// Two options that cannot be combined (a daemon with a working
    /// directory, a hook with `forbid_fork`), or an option that cannot be
    /// used here (a spawn inside a dry run, `spawn_paused` with
    /// `forbid_fork`).
    Conflict,
    /// A value out of range or malformed (a umask above 0o777, a soft limit
    /// above the hard one, an empty program name, an fd that is not open).
    Invalid,
}

impl fmt::Display for BuildErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BuildErrorKind::NotFound => "not found",
            BuildErrorKind::NotExecutable => "not executable",
            BuildErrorKind::Nul => "contains a NUL byte",
            BuildErrorKind::TooLong => "too long",
            BuildErrorKind::Collision => "collision",
            BuildErrorKind::Conflict => "conflicting options",
            BuildErrorKind::Invalid => "invalid value",
        })
    }
}

impl Error {
    pub(crate) fn build(
        kind: BuildErrorKind,
        item: impl Into<String>,
        problem: impl Into<String>,
    ) -> Self {
        Error::Build {
            kind,
            item: item.into(),
            problem: problem.into(),
        }
    }

    /// The kind of an [`Error::Build`]; `None` for every other variant.
    ///
    /// ```
    /// use safespawn::{BuildErrorKind, Command};
    /// let err = Command::new("true").umask(0o1000).build().unwrap_err();
    /// assert_eq!(err.build_kind(), Some(BuildErrorKind::Invalid));
    /// ```
    pub fn build_kind(&self) -> Option<BuildErrorKind> {
        match self {
            Error::Build { kind, .. } => Some(*kind),
            _ => None,
        }
    }

    /// The `io::Error` of a failed parent-side call, with what was being done.
    pub(crate) fn io(what: &str, errno: Errno) -> Self {
        let e = io::Error::from(errno);
        Error::Io(io::Error::new(e.kind(), format!("{what}: {e}")))
    }
}

impl Error {
    /// The OS error number behind this error, as
    /// [`io::Error::raw_os_error`] returns it: the child's `errno` for
    /// [`Error::Spawn`], the inner error's for [`Error::Io`], `None` for
    /// every other variant. Together with `Display` (which names the stage
    /// and the program) it gives what one `io::Error` cannot hold at once
    /// (see the `From<Error> for io::Error` conversion).
    ///
    /// ```
    /// use safespawn::Command;
    /// let err = Command::new("/nonexistent/program").status().unwrap_err();
    /// assert_eq!(err.raw_os_error(), Some(libc::ENOENT));
    /// assert!(err.to_string().contains("/nonexistent/program: exec failed"), "{err}");
    /// ```
    pub fn raw_os_error(&self) -> Option<i32> {
        match self {
            Error::Spawn { errno, .. } => Some(errno.raw_os_error()),
            Error::Io(e) => e.raw_os_error(),
            _ => None,
        }
    }

    /// The [`io::ErrorKind`] this error converts to: from the errno for
    /// [`Error::Spawn`] (`ENOENT` is `NotFound`, `EACCES`
    /// `PermissionDenied`, `E2BIG` `ArgumentListTooLong`), from the
    /// [`BuildErrorKind`] for [`Error::Build`], `TimedOut` for
    /// [`Error::Timeout`], the inner kind for [`Error::Io`], else `Other`.
    ///
    /// `io::Error::new(err.io_kind(), err)` is the conversion that keeps the
    /// message (stage, program) and the kind, giving up `raw_os_error()`.
    ///
    /// ```
    /// use safespawn::Command;
    /// let err = Command::new("/nonexistent/program").status().unwrap_err();
    /// assert_eq!(err.io_kind(), std::io::ErrorKind::NotFound);
    /// let io = std::io::Error::new(err.io_kind(), err);
    /// assert!(io.to_string().starts_with("could not start /nonexistent/program: exec failed"), "{io}");
    /// ```
    pub fn io_kind(&self) -> io::ErrorKind {
        match self {
            Error::Io(e) => e.kind(),
            Error::Spawn { errno, .. } => io::Error::from(*errno).kind(),
            Error::Build { kind, .. } => match kind {
                BuildErrorKind::NotFound => io::ErrorKind::NotFound,
                BuildErrorKind::NotExecutable => io::ErrorKind::PermissionDenied,
                BuildErrorKind::TooLong => io::ErrorKind::ArgumentListTooLong,
                _ => io::ErrorKind::InvalidInput,
            },
            Error::Timeout { .. } => io::ErrorKind::TimedOut,
            _ => io::ErrorKind::Other,
        }
    }
}

/// Every error converts to `std::io::Error`, classified as std's own
/// spawn errors are:
///
/// * [`Error::Spawn`] becomes the child's errno itself
///   ([`io::Error::from_raw_os_error`]): `raw_os_error()` returns it and the
///   kind follows from it (`ENOENT` → `NotFound`, `EACCES` →
///   `PermissionDenied`, `E2BIG` → `ArgumentListTooLong`), exactly as
///   `std::process::Command::spawn` reports a failed exec, so code moved
///   from std ([`Command::from_std`](crate::Command::from_std)) that looks
///   at `raw_os_error()` keeps working;
/// * [`Error::Build`] keeps its message (`get_ref()` downcasts to this
///   type) with the kind its [`BuildErrorKind`] stands for: `NotFound`,
///   `PermissionDenied` (not executable), `ArgumentListTooLong` (too long),
///   else `InvalidInput`;
/// * [`Error::Timeout`] is `TimedOut`, [`Error::Exit`] and the other
///   variants are `Other`, all with the message; [`Error::Io`] is the
///   `io::Error` it holds.
///
/// # The trade-off for `Spawn`
///
/// One `io::Error` cannot hold both an OS error code and a message:
/// `raw_os_error()` is `Some` only for the representation made by
/// `from_raw_os_error`, which stores the bare `i32` (its `Display` is
/// the system's text, "No such file or directory (os error 2)"), while
/// `io::Error::new(kind, err)`, the representation that carries a message
/// and a source, always answers `None`. std's spawn has the same limit
/// and keeps the code; so does this conversion, because code that checks
/// `raw_os_error() == Some(libc::ENOENT)` breaks silently when it turns
/// `None`, while a shorter message is visible. Where the stage and the
/// program matter, log the `safespawn::Error` before converting, or keep
/// it: [`Error::raw_os_error`] gives its code too, and
/// `io::Error::new(err.io_kind(), err)` converts with the message kept.
///
/// ```
/// use safespawn::Command;
/// let err = Command::new("/nonexistent/program").status().unwrap_err();
/// let io: std::io::Error = err.into();
/// assert_eq!(io.raw_os_error(), Some(libc::ENOENT));
/// assert_eq!(io.kind(), std::io::ErrorKind::NotFound);
///
/// let err = Command::new("no-such-program-anywhere").build().unwrap_err();
/// let io: std::io::Error = err.into();
/// assert_eq!(io.kind(), std::io::ErrorKind::NotFound);
/// assert!(io.get_ref().unwrap().downcast_ref::<safespawn::Error>().is_some());
/// ```
impl From<Error> for io::Error {
    fn from(err: Error) -> io::Error {
        match err {
            Error::Io(e) => e,
            Error::Spawn { errno, .. } => io::Error::from_raw_os_error(errno.raw_os_error()),
            other => io::Error::new(other.io_kind(), other),
        }
    }
}

/// Defines [`Stage`] from one list: the variants with their docs, in step
/// order, their wire codes (explicit discriminants), `Stage::ALL` and the
/// `Display` texts, so none of them can drift from the others.
macro_rules! stages {
    ($($(#[doc = $doc:literal])* $name:ident = $code:literal => $text:literal,)+) => {
        /// Where in the child's preparation a failure happened, as reported by
        /// [`Error::Spawn`].
        ///
        /// The stages are listed in the order the child runs them (the step
        /// list at the top of the child side names the same steps).
        ///
        /// ```
        /// use safespawn::Stage;
        /// assert_eq!(Stage::Chdir.to_string(), "changing the working directory");
        /// ```
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        #[repr(u32)]
        pub enum Stage {
            $($(#[doc = $doc])* $name = $code,)+
        }

        impl Stage {
            /// Every stage, in step order.
            pub(crate) const ALL: &'static [Stage] = &[$(Stage::$name,)+];
        }

        impl fmt::Display for Stage {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(match self {
                    $(Stage::$name => $text,)+
                })
            }
        }
    };
}

stages! {
    /// Resetting signal dispositions and the signal mask.
    Signals = 0 => "resetting signals",
    /// Placing the child in its cgroup: `CLONE_INTO_CGROUP` refused at the
    /// clone, or the child's own write to `cgroup.procs` where it cannot be
    /// used.
    Cgroup = 1 => "placing the child in its cgroup",
    /// Writing the id maps of a new user namespace: the child's own self
    /// maps ([`map_root`](crate::Command::map_root)), or the parent's
    /// writes of [`uid_map`](crate::Command::uid_map) /
    /// [`gid_map`](crate::Command::gid_map) ranges (then `path` names the
    /// refused `/proc/<pid>/` file).
    IdMap = 2 => "writing the user namespace's id maps",
    /// Creating new namespaces ([`unshare`](crate::Command::unshare), with
    /// the clone) or joining one ([`join_namespace`](crate::Command::join_namespace)).
    Namespace = 3 => "entering namespaces",
    /// Setting the hostname of a new UTS namespace.
    Hostname = 4 => "setting the hostname",
    /// Placing standard input, output and error.
    Stdio = 5 => "setting up stdio",
    /// Placing passed and mapped file descriptors.
    Fds = 6 => "setting up file descriptors",
    /// Closing every file descriptor that is not kept.
    CloseFds = 7 => "closing inherited file descriptors",
    /// Daemon mode: creating the session and the daemon process.
    Daemon = 8 => "daemonizing",
    /// Daemon mode: creating, locking and writing the pidfile.
    Pidfile = 9 => "acquiring the pidfile",
    /// Building the child's filesystem view: `/` made a recursive slave, a
    /// [`mount`](crate::Command::mount) (the error's `path` names its
    /// destination).
    Mount = 10 => "mounting",
    /// Changing the child's root ([`root`](crate::Command::root),
    /// [`root_tmpfs`](crate::Command::root_tmpfs)): the base tmpfs,
    /// `pivot_root`, detaching the old root.
    Root = 11 => "changing the root directory",
    /// Setting the umask. `umask(2)` cannot fail, so no child reports this
    /// stage; it names the step for completeness.
    Umask = 12 => "setting the umask",
    /// Setting a resource limit.
    Rlimit = 13 => "setting a resource limit",
    /// Setting the scheduling knobs: the nice value, the CPU affinity,
    /// core scheduling.
    Sched = 14 => "setting scheduling attributes",
    /// Writing `/proc/self/oom_score_adj`.
    OomScoreAdj = 15 => "setting the OOM score adjustment",
    /// Setting the execution domain (`personality(2)`).
    Personality = 16 => "setting the personality",
    /// Setting the security label the program will run with (SELinux
    /// exec context, AppArmor profile).
    Label = 17 => "setting the security label",
    /// Setting the securebits.
    Securebits = 18 => "setting the securebits",
    /// Setting the supplementary groups.
    Groups = 19 => "setting supplementary groups",
    /// Setting the group id.
    Gid = 20 => "setting the group id",
    /// Setting the user id.
    Uid = 21 => "setting the user id",
    /// Changing the capability sets.
    Caps = 22 => "changing capabilities",
    /// Setting `no_new_privs`.
    NoNewPrivs = 23 => "setting no_new_privs",
    /// Setting the parent-death signal, or finding the parent already gone.
    ParentDeathSignal = 24 => "setting the parent-death signal",
    /// Creating a new session.
    Session = 25 => "creating a new session",
    /// Making a terminal the new session's controlling terminal
    /// ([`controlling_tty`](crate::Command::controlling_tty)): `EPERM` when
    /// it is already another session's, or the fd is open for writing only.
    ControllingTty = 26 => "acquiring the controlling terminal",
    /// Joining or creating a process group.
    ProcessGroup = 27 => "setting the process group",
    /// Making the child's process group the terminal's foreground group
    /// ([`foreground`](crate::Command::foreground)): `ENOTTY` when the
    /// terminal is not the caller's controlling terminal (any more).
    Foreground = 28 => "placing the process group in the foreground",
    /// Changing the working directory.
    Chdir = 29 => "changing the working directory",
    /// A `pre_exec` or `pre_exec_privileged` hook returned an error (its
    /// errno), or panicked
    /// (`ENOTRECOVERABLE`: the panic was caught at the hook call, see
    /// [`Command::pre_exec`](crate::Command::pre_exec)).
    Hook = 30 => "a pre_exec hook",
    /// Enforcing the Landlock ruleset (`landlock_restrict_self`).
    Landlock = 31 => "enforcing the landlock ruleset",
    /// Waiting for `resume()` of a paused spawn.
    Handshake = 32 => "waiting to be resumed",
    /// Installing the seccomp filter, the last step before exec.
    Seccomp = 33 => "installing the seccomp filter",
    /// Executing the program.
    Exec = 34 => "exec",
}

impl Stage {
    /// The wire code sent by the child. Child-safe.
    pub(crate) const fn code(self) -> u32 {
        self as u32
    }

    /// Decodes a wire code; `None` for a value the child cannot have sent.
    pub(crate) fn from_code(code: u32) -> Option<Stage> {
        Stage::ALL.iter().copied().find(|s| s.code() == code)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stage_codes_round_trip() {
        for (i, s) in Stage::ALL.iter().enumerate() {
            assert_eq!(Stage::from_code(s.code()), Some(*s));
            // Codes are unique and rise in step order.
            if let Some(next) = Stage::ALL.get(i + 1) {
                assert!(
                    s.code() < next.code(),
                    "{s:?} and {next:?} are out of order"
                );
            }
        }
        assert_eq!(Stage::from_code(u32::MAX), None);
    }

    #[test]
    fn io_conversion_keeps_kind() {
        let e = Error::Spawn {
            stage: Stage::Exec,
            errno: Errno::ACCESS,
            program: "x".into(),
            path: None,
        };
        let io = io::Error::from(e);
        assert_eq!(io.kind(), io::ErrorKind::PermissionDenied);
        assert_eq!(io.raw_os_error(), Some(libc::EACCES));
        let e = Error::Spawn {
            stage: Stage::Exec,
            errno: Errno::TOOBIG,
            program: "x".into(),
            path: None,
        };
        assert_eq!(
            io::Error::from(e).kind(),
            io::ErrorKind::ArgumentListTooLong
        );
        let e = Error::build(BuildErrorKind::Nul, "argument 1", "contains a NUL byte");
        assert_eq!(io::Error::from(e).kind(), io::ErrorKind::InvalidInput);
        for (kind, io_kind) in [
            (BuildErrorKind::NotFound, io::ErrorKind::NotFound),
            (
                BuildErrorKind::NotExecutable,
                io::ErrorKind::PermissionDenied,
            ),
            (BuildErrorKind::TooLong, io::ErrorKind::ArgumentListTooLong),
            (BuildErrorKind::Collision, io::ErrorKind::InvalidInput),
        ] {
            let io = io::Error::from(Error::build(kind, "program \"x\"", "problem"));
            assert_eq!(io.kind(), io_kind, "{kind:?}");
            // The message and the original error stay readable.
            assert!(io.to_string().contains("program \"x\""), "{io}");
            let inner = io.get_ref().and_then(|e| e.downcast_ref::<Error>());
            assert_eq!(inner.and_then(Error::build_kind), Some(kind));
        }
        let e = Error::Timeout {
            command: "sleep 9".into(),
            timeout: std::time::Duration::from_secs(1),
            stdout: Vec::new(),
            stderr: Vec::new(),
        };
        assert_eq!(io::Error::from(e).kind(), io::ErrorKind::TimedOut);
    }
}
