//! The child's file descriptors: what its standard streams are connected
//! to ([`Stdio`]), the fds passed or mapped to it, and the fd plan
//! `build()` freezes from them (which fd lands where, collision-checked,
//! `/dev/null` opened once).

use std::fs::File;
use std::io::{PipeReader, PipeWriter};
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::sync::OnceLock;

use rustix::fs::Mode as FileMode;
use rustix::io::Errno;
use rustix::process::Resource;

use super::Command;
use crate::child::fds::{
    CloseFds, FdMap, Fds, Src, SLOT_SEND_BUFFERS, SLOT_STDERR, SLOT_STDIN, SLOT_STDOUT,
};
use crate::error::{BuildErrorKind, Error, Stage};
use crate::mode::{Direct, Mode};
use crate::sys;

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
    /// # Errors
    ///
    /// `build()` opens `/dev/null` once for every stream set to it; a failure
    /// to open it (`EMFILE`, say) is [`Error::Io`].
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
    /// # Errors
    ///
    /// Each spawn creates the pipe; a failure is [`Error::Io`]. A command
    /// later [`daemonize`](Command::daemonize)d cannot have one: `build()`
    /// fails with [`BuildErrorKind::Conflict`].
    ///
    /// # References
    ///
    /// [`pipe2(2)`](https://man7.org/linux/man-pages/man2/pipe2.2.html) with
    /// `O_CLOEXEC`; Linux 2.6.27.
    ///
    /// ```
    /// let child = safespawn::Command::new("true").stdin(safespawn::Stdio::piped()).spawn().unwrap();
    /// # child.wait().unwrap();
    /// ```
    pub fn piped() -> Stdio {
        Stdio(StdioKind::Piped)
    }

    /// A duplicate of `fd`, made now; the caller keeps `fd`.
    ///
    /// # Errors
    ///
    /// A failure to duplicate (for example `EMFILE`) is reported by
    /// `build()`, as [`BuildErrorKind::Invalid`] naming the stream and `fd`.
    ///
    /// # References
    ///
    /// `F_DUPFD_CLOEXEC` in
    /// [`fcntl(2)`](https://man7.org/linux/man-pages/man2/fcntl.2.html);
    /// Linux 2.6.24.
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

/// An fd the child gets besides stdio.
#[derive(Debug)]
pub(crate) enum FdRequest {
    /// `pass_fd`: same number, owned (closed in the parent with the `Prepared`).
    Pass(OwnedFd),
    /// `pass_fd_shared`: same number, the caller keeps it.
    Shared(RawFd),
    /// `map_fd`: owned, placed at the given child number.
    Map(OwnedFd, RawFd),
}

/// What a command records about its fds.
#[derive(Debug, Default)]
pub(crate) struct FdConfig {
    pub stdin: Stdio,
    pub stdout: Stdio,
    pub stderr: Stdio,
    pub stderr_to_stdout: bool,
    pub nonblocking_pipes: bool,
    pub extra: Vec<FdRequest>,
    /// A close method forced by a test (see the hidden builder methods).
    pub close: Option<CloseFds>,
}

impl Command<Direct> {
    /// The child's standard input (default: [`Stdio::null`]).
    ///
    /// # Errors
    ///
    /// As the [`Stdio`] given: [`Stdio::null`] and [`Stdio::dup`] fail at
    /// `build()`, [`Stdio::piped`] at the spawn. The child's failure to place
    /// the fd is [`Error::Spawn`] at stage
    /// [`Stage::Stdio`](crate::Stage::Stdio).
    ///
    /// # References
    ///
    /// [`dup3(2)`](https://man7.org/linux/man-pages/man2/dup3.2.html); Linux 2.6.27.
    ///
    /// ```
    /// use safespawn::{Command, Stdio};
    /// let st = Command::new("cat").stdin(Stdio::null()).status().unwrap();
    /// assert!(st.success());
    /// ```
    pub fn stdin(mut self, stdio: impl Into<Stdio>) -> Self {
        self.cfg.fds.stdin = stdio.into();
        self
    }

    /// The child's standard output (default: [`Stdio::null`]).
    ///
    /// # Errors
    ///
    /// As the [`Stdio`] given: [`Stdio::null`] and [`Stdio::dup`] fail at
    /// `build()`, [`Stdio::piped`] at the spawn. The child's failure to place
    /// the fd is [`Error::Spawn`] at stage
    /// [`Stage::Stdio`](crate::Stage::Stdio).
    ///
    /// # References
    ///
    /// [`dup3(2)`](https://man7.org/linux/man-pages/man2/dup3.2.html); Linux 2.6.27.
    ///
    /// ```
    /// use safespawn::{Command, Stdio};
    /// let child = Command::new("echo").stdout(Stdio::piped()).spawn().unwrap();
    /// # child.wait().unwrap();
    /// ```
    pub fn stdout(mut self, stdio: impl Into<Stdio>) -> Self {
        self.cfg.fds.stdout = stdio.into();
        self
    }

    /// The child's standard error (default: [`Stdio::null`]).
    ///
    /// # Errors
    ///
    /// As the [`Stdio`] given: [`Stdio::null`] and [`Stdio::dup`] fail at
    /// `build()`, [`Stdio::piped`] at the spawn. The child's failure to place
    /// the fd is [`Error::Spawn`] at stage
    /// [`Stage::Stdio`](crate::Stage::Stdio).
    ///
    /// # References
    ///
    /// [`dup3(2)`](https://man7.org/linux/man-pages/man2/dup3.2.html); Linux 2.6.27.
    ///
    /// ```
    /// use safespawn::{Command, Stdio};
    /// let st = Command::new("true").stderr(Stdio::inherit()).status().unwrap();
    /// # assert!(st.success());
    /// ```
    pub fn stderr(mut self, stdio: impl Into<Stdio>) -> Self {
        self.cfg.fds.stderr = stdio.into();
        self
    }

    /// Sends standard error wherever standard output goes (`2>&1`); with a
    /// piped stdout both share the one pipe. A [`stderr`](Command::stderr)
    /// set as well is not used.
    ///
    /// # References
    ///
    /// [`dup3(2)`](https://man7.org/linux/man-pages/man2/dup3.2.html); Linux 2.6.27.
    ///
    /// ```
    /// use safespawn::{Command, Stdio};
    /// use std::io::Read;
    /// let mut child = Command::new("sh").args(["-c", "echo out; echo err >&2"])
    ///     .stdout(Stdio::piped()).stderr_to_stdout().spawn().unwrap();
    /// let mut s = String::new();
    /// child.take_stdout().unwrap().read_to_string(&mut s).unwrap();
    /// assert_eq!(s, "out\nerr\n");
    /// # child.wait().unwrap();
    /// ```
    pub fn stderr_to_stdout(mut self) -> Self {
        self.cfg.fds.stderr_to_stdout = true;
        self
    }

    /// Makes the parent's ends of the pipes this command creates
    /// non-blocking (libvirt's virCommandNonblockingFDs).
    ///
    /// # Errors
    ///
    /// A failure to make a pipe non-blocking is [`Error::Io`] from the spawn.
    ///
    /// # References
    ///
    /// `FIONBIO` with
    /// [`ioctl(2)`](https://man7.org/linux/man-pages/man2/ioctl.2.html) (as
    /// `O_NONBLOCK`); any Linux.
    ///
    /// ```
    /// use safespawn::{Command, Stdio};
    /// let mut child = Command::new("sleep").arg("1").stdout(Stdio::piped())
    ///     .nonblocking_pipes().spawn().unwrap();
    /// let mut out = child.take_stdout().unwrap();
    /// let err = std::io::Read::read(&mut out, &mut [0u8; 8]).unwrap_err();
    /// assert_eq!(err.kind(), std::io::ErrorKind::WouldBlock);
    /// # child.abort().unwrap();
    /// ```
    pub fn nonblocking_pipes(mut self) -> Self {
        self.cfg.fds.nonblocking_pipes = true;
        self
    }
}

impl<M: Mode> Command<M> {
    /// Gives the child `fd` under the same number; the parent's copy is
    /// closed when the [`Prepared`](crate::Prepared) is dropped (libvirt's
    /// PassFD with CLOSE_PARENT).
    ///
    /// # Errors
    ///
    /// `build()` refuses numbers 0-2 (they collide with stdio) and a number
    /// another fd is planned at, with [`BuildErrorKind::Collision`]; a number
    /// not below the parent's `RLIMIT_NOFILE` with
    /// [`BuildErrorKind::Invalid`]. The child's failure to keep it open
    /// across exec is [`Error::Spawn`] at stage
    /// [`Fds`](crate::Stage::Fds).
    ///
    /// # References
    ///
    /// `F_SETFD` in
    /// [`fcntl(2)`](https://man7.org/linux/man-pages/man2/fcntl.2.html), to
    /// clear `FD_CLOEXEC`; any Linux.
    ///
    /// ```
    /// use std::os::fd::{AsRawFd, OwnedFd};
    /// let fd: OwnedFd = std::fs::File::open("/dev/null").unwrap().into();
    /// let n = fd.as_raw_fd();
    /// let st = safespawn::Command::new("sh").arg("-c").arg(format!("test -e /proc/self/fd/{n}"))
    ///     .pass_fd(fd).status().unwrap();
    /// assert!(st.success());
    /// ```
    pub fn pass_fd(mut self, fd: OwnedFd) -> Self {
        self.cfg.fds.extra.push(FdRequest::Pass(fd));
        self
    }

    /// Gives the child `fd` under the same number; the caller keeps its fd
    /// and must keep it open while the command is spawned (libvirt's PassFD
    /// without flags).
    ///
    /// # Errors
    ///
    /// `build()` refuses an fd that is not open
    /// ([`BuildErrorKind::Invalid`]) and collisions as for
    /// [`pass_fd`](Command::pass_fd). An fd closed after `build()` makes a
    /// spawn fail with [`Error::Spawn`] at stage [`Fds`](crate::Stage::Fds)
    /// (`EBADF`), unless its number has been reused meanwhile: the child then
    /// gets whatever is open there.
    ///
    /// # References
    ///
    /// As [`pass_fd`](Command::pass_fd).
    ///
    /// ```
    /// use std::os::fd::{AsFd, AsRawFd};
    /// let file = std::fs::File::open("/dev/null").unwrap();
    /// let n = file.as_raw_fd();
    /// let st = safespawn::Command::new("sh").arg("-c").arg(format!("test -e /proc/self/fd/{n}"))
    ///     .pass_fd_shared(file.as_fd()).status().unwrap();
    /// assert!(st.success());
    /// drop(file); // still ours
    /// ```
    pub fn pass_fd_shared(mut self, fd: BorrowedFd<'_>) -> Self {
        self.cfg.fds.extra.push(FdRequest::Shared(fd.as_raw_fd()));
        self
    }

    /// Places `fd` at number `child_fd` in the child (like
    /// `sd_listen_fds`'s fd 3). The parent's copy is closed when the
    /// [`Prepared`](crate::Prepared) is dropped.
    ///
    /// # Errors
    ///
    /// `build()` refuses two fds for one child number and numbers 0-2 (use
    /// [`stdin`](Command::stdin) and friends) with
    /// [`BuildErrorKind::Collision`]; a negative number, or one not below
    /// the parent's `RLIMIT_NOFILE`, with [`BuildErrorKind::Invalid`]. The
    /// child's failure to place it is [`Error::Spawn`] at stage
    /// [`Fds`](crate::Stage::Fds).
    ///
    /// # References
    ///
    /// [`dup3(2)`](https://man7.org/linux/man-pages/man2/dup3.2.html); Linux 2.6.27.
    ///
    /// ```
    /// let file = std::fs::File::open("/dev/null").unwrap();
    /// let st = safespawn::Command::new("sh").args(["-c", "test -e /proc/self/fd/7"])
    ///     .map_fd(file, 7).status().unwrap();
    /// assert!(st.success());
    /// ```
    pub fn map_fd(mut self, fd: impl Into<OwnedFd>, child_fd: RawFd) -> Self {
        self.cfg.fds.extra.push(FdRequest::Map(fd.into(), child_fd));
        self
    }

    /// Closes inherited fds by walking `/proc/self/fd`, as on kernels without
    /// `close_range`. For tests of that fallback.
    #[doc(hidden)]
    pub fn close_fds_by_proc_walk(mut self) -> Self {
        self.cfg.fds.close = Some(CloseFds::Walk);
        self
    }

    /// Closes inherited fds with plain `close_range` calls, as on kernels
    /// without `CLOSE_RANGE_CLOEXEC`. For tests of that path.
    #[doc(hidden)]
    pub fn close_fds_without_cloexec(mut self) -> Self {
        self.cfg.fds.close = Some(CloseFds::Close);
        self
    }

    /// Closes inherited fds by asking `poll(2)` which fd numbers below the
    /// soft `RLIMIT_NOFILE` are open, as where neither `close_range` nor
    /// `/proc` is available. For tests of that last fallback.
    ///
    /// ```
    /// let st = safespawn::Command::new("true").close_fds_by_polling().status().unwrap();
    /// assert!(st.success());
    /// ```
    #[doc(hidden)]
    pub fn close_fds_by_polling(mut self) -> Self {
        self.cfg.fds.close = Some(CloseFds::Poll);
        self
    }
}

impl CloseFds {
    /// The best method this kernel has, or `forced` (for tests) where the
    /// kernel has that one. (Without `/proc` the child falls through from
    /// the walk to polling itself.)
    fn choose(forced: Option<CloseFds>) -> CloseFds {
        if forced == Some(CloseFds::Poll) {
            return CloseFds::Poll;
        }
        let best = if !sys::fd::have_close_range() {
            CloseFds::Walk
        } else if sys::fd::have_close_range_cloexec() {
            CloseFds::Cloexec
        } else {
            CloseFds::Close
        };
        match (forced, best) {
            (Some(CloseFds::Walk), _) | (_, CloseFds::Walk) => CloseFds::Walk,
            (Some(CloseFds::Close), _) => CloseFds::Close,
            _ => best,
        }
    }
}

/// The fd plan as `build()` freezes it.
pub(crate) struct FrozenFds {
    pub fds: Fds,
    /// Which standard streams get a new pipe per spawn.
    pub pipes: [bool; 3],
    /// Fds the plan owns (closed when it is dropped).
    pub owned: Vec<OwnedFd>,
}

/// The plan being assembled.
#[derive(Default)]
struct Draft {
    maps: Vec<FdMap>,
    max_fd: RawFd,
    pipes: [bool; 3],
    owned: Vec<OwnedFd>,
    devnull: Option<RawFd>,
}

impl Draft {
    fn push(&mut self, src: Src, dst: RawFd, stage: Stage, optional: bool) {
        if let Src::Fd(fd) = src {
            self.max_fd = self.max_fd.max(fd);
        }
        self.max_fd = self.max_fd.max(dst);
        self.maps.push(FdMap {
            src,
            dst,
            stage,
            optional,
        });
    }

    /// `/dev/null`: one fd for the whole process, opened by the first plan
    /// that needs it (above the standard streams, close-on-exec) and kept,
    /// so a kept `Prepared` costs no fd for it.
    fn devnull(&mut self) -> Result<RawFd, Error> {
        if let Some(fd) = self.devnull {
            return Ok(fd);
        }
        static DEVNULL: OnceLock<OwnedFd> = OnceLock::new();
        let fd = match DEVNULL.get() {
            Some(fd) => fd.as_raw_fd(),
            None => {
                let f = rustix::fs::open(
                    c"/dev/null",
                    rustix::fs::OFlags::RDWR | rustix::fs::OFlags::CLOEXEC,
                    FileMode::empty(),
                )
                .and_then(sys::fd::above_stdio)
                .map_err(|e| Error::io("opening /dev/null", e))?;
                // Two threads may both open it: the loser's copy is closed.
                DEVNULL.get_or_init(|| f).as_raw_fd()
            }
        };
        self.devnull = Some(fd);
        Ok(fd)
    }
}

impl FdConfig {
    /// Plans which fd lands where: stdio, then passed and mapped fds, then
    /// the send buffers of buffered mode (`send_buffers` child numbers).
    pub(crate) fn freeze(self, send_buffers: &[RawFd]) -> Result<FrozenFds, Error> {
        let mut plan = Draft::default();
        let nofile = rustix::process::getrlimit(Resource::Nofile)
            .current
            .unwrap_or(u64::MAX);
        let FdConfig {
            stdin,
            stdout,
            stderr,
            stderr_to_stdout,
            nonblocking_pipes: _,
            extra,
            close,
        } = self;

        const SLOTS: [usize; 3] = [SLOT_STDIN, SLOT_STDOUT, SLOT_STDERR];
        let names = ["stdin", "stdout", "stderr"];
        let mut stdout_src = None;
        for (n, s) in [stdin, stdout, stderr].into_iter().enumerate() {
            let dst = n as RawFd;
            if n == 2 && stderr_to_stdout {
                if let Some((src, optional)) = stdout_src {
                    plan.push(src, dst, Stage::Stdio, optional);
                    continue;
                }
            }
            let (src, optional) = match s.0 {
                StdioKind::Null => (Src::Fd(plan.devnull()?), false),
                StdioKind::Inherit => (Src::Fd(dst), true),
                StdioKind::Piped => {
                    plan.pipes[n] = true;
                    (Src::Slot(SLOTS[n]), false)
                }
                StdioKind::Fd(fd) => {
                    let raw = fd.as_raw_fd();
                    plan.owned.push(fd);
                    (Src::Fd(raw), false)
                }
                StdioKind::DupFailed { fd, errno } => {
                    return Err(Error::build(
                        BuildErrorKind::Invalid,
                        format!("{} (Stdio::dup of fd {fd})", names[n]),
                        format!("could not duplicate it: {errno}"),
                    ))
                }
            };
            if n == 1 {
                stdout_src = Some((src, optional));
            }
            plan.push(src, dst, Stage::Stdio, optional);
        }

        for req in extra {
            let (src, dst, what) = match req {
                FdRequest::Pass(fd) => {
                    let raw = fd.as_raw_fd();
                    plan.owned.push(fd);
                    (raw, raw, "pass_fd")
                }
                FdRequest::Shared(raw) => {
                    // SAFETY: only queried: an fcntl on a closed number is EBADF.
                    let fd = unsafe { BorrowedFd::borrow_raw(raw) };
                    if let Err(e) = rustix::io::fcntl_getfd(fd) {
                        return Err(Error::build(
                            BuildErrorKind::Invalid,
                            format!("fd {raw} (pass_fd_shared)"),
                            format!("is not open: {e}"),
                        ));
                    }
                    (raw, raw, "pass_fd_shared")
                }
                FdRequest::Map(fd, child) => {
                    let raw = fd.as_raw_fd();
                    plan.owned.push(fd);
                    (raw, child, "map_fd")
                }
            };
            if dst < 0 {
                return Err(Error::build(
                    BuildErrorKind::Invalid,
                    format!("child fd {dst} ({what})"),
                    "is negative",
                ));
            }
            if dst as u64 >= nofile {
                return Err(Error::build(
                    BuildErrorKind::Invalid,
                    format!("child fd {dst} ({what})"),
                    format!("is not below RLIMIT_NOFILE ({nofile})"),
                ));
            }
            if let Some(prev) = plan.maps.iter().find(|m| m.dst == dst) {
                let used_by = match prev.dst {
                    0 => "the child's stdin; use .stdin(..) to set it".to_string(),
                    1 => "the child's stdout; use .stdout(..) to set it".to_string(),
                    2 => "the child's stderr; use .stderr(..) to set it".to_string(),
                    _ => "already planned by an earlier pass_fd/map_fd".to_string(),
                };
                return Err(Error::build(
                    BuildErrorKind::Collision,
                    format!("child fd {dst} ({what} of fd {src})"),
                    format!("collides: fd {dst} is {used_by}"),
                ));
            }
            plan.push(Src::Fd(src), dst, Stage::Fds, false);
        }

        for (i, &dst) in send_buffers.iter().enumerate() {
            if dst < 0 {
                return Err(Error::build(
                    BuildErrorKind::Invalid,
                    format!("child fd {dst} (send_buffer)"),
                    "is negative",
                ));
            }
            if dst as u64 >= nofile {
                return Err(Error::build(
                    BuildErrorKind::Invalid,
                    format!("child fd {dst} (send_buffer)"),
                    format!("is not below RLIMIT_NOFILE ({nofile})"),
                ));
            }
            if plan.maps.iter().any(|m| m.dst == dst) {
                return Err(Error::build(
                    BuildErrorKind::Collision,
                    format!("child fd {dst} (send_buffer)"),
                    "collides with another planned fd",
                ));
            }
            plan.push(Src::Slot(SLOT_SEND_BUFFERS + i), dst, Stage::Fds, false);
        }

        let mut targets: Vec<RawFd> = plan.maps.iter().map(|m| m.dst).collect();
        targets.sort_unstable();
        Ok(FrozenFds {
            fds: Fds {
                maps: plan.maps.into(),
                targets: targets.into(),
                max_static_fd: plan.max_fd,
                close: CloseFds::choose(close),
                nofile: RawFd::try_from(nofile).unwrap_or(RawFd::MAX),
            },
            pipes: plan.pipes,
            owned: plan.owned,
        })
    }
}
