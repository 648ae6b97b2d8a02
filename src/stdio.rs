//! What the child's standard input, output and error are connected to.

use std::fs::File;
use std::io::{PipeReader, PipeWriter};
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd, RawFd};

use rustix::io::Errno;

/// Where one of the child's standard streams goes.
///
/// The default for all three is [`Stdio::null()`]: a child sees nothing of
/// the parent's terminal unless asked. Files, owned fds and pipe ends convert
/// with `From`; [`Stdio::dup`] duplicates a borrowed fd so the caller keeps
/// its own.
///
/// ```
/// use safespawn::{Command, Stdio};
/// use std::io::Read;
///
/// let mut child = Command::new("echo").arg("hi").stdout(Stdio::piped()).spawn().unwrap();
/// let mut out = String::new();
/// child.take_stdout().unwrap().read_to_string(&mut out).unwrap();
/// assert_eq!(out, "hi\n");
/// assert!(child.wait().unwrap().success());
/// ```
#[derive(Debug)]
pub struct Stdio(pub(crate) StdioKind);

#[derive(Debug)]
pub(crate) enum StdioKind {
    /// `/dev/null`, opened once per `Prepared`.
    Null,
    /// The parent's own stream of the same number.
    Inherit,
    /// A new pipe per spawn; the parent's end is in `Running`.
    Piped,
    /// This fd, owned by the command (closed when the `Prepared` is dropped).
    Fd(OwnedFd),
    /// `Stdio::dup` failed; reported by `build()`.
    DupFailed { fd: RawFd, errno: Errno },
}

impl Stdio {
    /// `/dev/null` (the default): reads see end-of-file, writes vanish.
    ///
    /// ```
    /// let ok = safespawn::Command::new("cat").stdin(safespawn::Stdio::null()).status().unwrap();
    /// assert!(ok.success());
    /// ```
    pub fn null() -> Stdio {
        Stdio(StdioKind::Null)
    }

    /// The parent's own stream of the same number.
    ///
    /// ```
    /// let st = safespawn::Command::new("true").stderr(safespawn::Stdio::inherit()).status().unwrap();
    /// assert!(st.success());
    /// ```
    pub fn inherit() -> Stdio {
        Stdio(StdioKind::Inherit)
    }

    /// A new pipe for every spawn; take the parent's end with
    /// [`Running::take_stdin`](crate::Running::take_stdin) and friends.
    ///
    /// ```
    /// let child = safespawn::Command::new("true").stdin(safespawn::Stdio::piped()).spawn().unwrap();
    /// # child.wait().unwrap();
    /// ```
    pub fn piped() -> Stdio {
        Stdio(StdioKind::Piped)
    }

    /// A duplicate of `fd`, made now; the caller keeps `fd`. A failure to
    /// duplicate (for example `EMFILE`) is reported by `build()`.
    ///
    /// ```
    /// use std::os::fd::AsFd;
    /// let file = std::fs::File::open("/dev/null").unwrap();
    /// let cmd = safespawn::Command::new("cat").stdin(safespawn::Stdio::dup(file.as_fd()));
    /// assert!(cmd.status().unwrap().success());
    /// ```
    pub fn dup(fd: BorrowedFd<'_>) -> Stdio {
        match rustix::io::fcntl_dupfd_cloexec(fd, 3) {
            Ok(owned) => Stdio(StdioKind::Fd(owned)),
            Err(errno) => Stdio(StdioKind::DupFailed {
                fd: fd.as_raw_fd(),
                errno,
            }),
        }
    }
}

impl Default for Stdio {
    fn default() -> Stdio {
        Stdio::null()
    }
}

impl From<OwnedFd> for Stdio {
    fn from(fd: OwnedFd) -> Stdio {
        Stdio(StdioKind::Fd(fd))
    }
}

impl From<File> for Stdio {
    fn from(file: File) -> Stdio {
        Stdio(StdioKind::Fd(file.into()))
    }
}

impl From<PipeReader> for Stdio {
    fn from(pipe: PipeReader) -> Stdio {
        Stdio(StdioKind::Fd(pipe.into()))
    }
}

impl From<PipeWriter> for Stdio {
    fn from(pipe: PipeWriter) -> Stdio {
        Stdio(StdioKind::Fd(pipe.into()))
    }
}
