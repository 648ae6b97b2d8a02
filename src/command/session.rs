//! The child's place among processes: parent-death signal, session,
//! controlling terminal, process group and the terminal's foreground.

use std::os::fd::{BorrowedFd, RawFd};

use rustix::process::Signal;

use super::Command;
use crate::child::fds::{FdMap, Src};
use crate::child::session::Session;
use crate::error::{BuildErrorKind, Error};
use crate::mode::Mode;

/// What a command records about its session.
#[derive(Debug, Default)]
pub(crate) struct SessionConfig {
    pub parent_death_signal: Option<Signal>,
    pub new_session: bool,
    pub process_group: Option<i32>,
    /// `controlling_tty`: the child fd.
    pub controlling_tty: Option<RawFd>,
    pub foreground: bool,
}

impl<M: Mode> Command<M> {
    /// The signal the child gets when the parent dies. The kernel sends it
    /// when the spawning *thread* exits, so spawn from a long-lived thread.
    ///
    /// # Errors
    ///
    /// A parent that is already gone when the child arms the signal is
    /// [`Error::Spawn`] at stage
    /// [`ParentDeathSignal`](crate::Stage::ParentDeathSignal) with `ESRCH`;
    /// with [`daemonize`](Command::daemonize) it is a build error
    /// ([`BuildErrorKind::Conflict`]).
    ///
    /// # References
    ///
    /// `PR_SET_PDEATHSIG` in [`prctl(2)`](https://man7.org/linux/man-pages/man2/prctl.2.html);
    /// Linux 2.1.57.
    ///
    /// ```
    /// use safespawn::{Command, Signal};
    /// let cmd = Command::new("true").parent_death_signal(Signal::KILL);
    /// assert!(cmd.status().unwrap().success());
    /// ```
    pub fn parent_death_signal(mut self, signal: Signal) -> Self {
        self.cfg.session.parent_death_signal = Some(signal);
        self
    }

    /// Starts the child in a new session (`setsid`), detached from the
    /// controlling terminal.
    ///
    /// # Errors
    ///
    /// A kernel refusal is [`Error::Spawn`] at stage
    /// [`Session`](crate::Stage::Session); `build()` refuses it together
    /// with [`foreground`](Command::foreground)
    /// ([`BuildErrorKind::Conflict`]). With
    /// [`controlling_tty`](Command::controlling_tty) it is implied, and
    /// allowed (Go's `Setctty` needs `Setsid` set, so code written after it
    /// sets both).
    ///
    /// # References
    ///
    /// [`setsid(2)`](https://man7.org/linux/man-pages/man2/setsid.2.html); any Linux.
    ///
    /// ```
    /// let cmd = safespawn::Command::new("true").new_session();
    /// assert!(cmd.status().unwrap().success());
    /// ```
    pub fn new_session(mut self) -> Self {
        self.cfg.session.new_session = true;
        self
    }

    /// Puts the child in process group `pgid`; 0 makes a new group led by
    /// the child (as std's `process_group`).
    ///
    /// # Errors
    ///
    /// `build()` refuses a negative `pgid` ([`BuildErrorKind::Invalid`]) and
    /// the combination with [`new_session`](Command::new_session)
    /// ([`BuildErrorKind::Conflict`]); the kernel's refusal (a group in
    /// another session) is [`Error::Spawn`] at stage
    /// [`ProcessGroup`](crate::Stage::ProcessGroup).
    ///
    /// # References
    ///
    /// [`setpgid(2)`](https://man7.org/linux/man-pages/man2/setpgid.2.html); any Linux.
    ///
    /// ```
    /// let cmd = safespawn::Command::new("true").process_group(0);
    /// assert!(cmd.status().unwrap().success());
    /// ```
    pub fn process_group(mut self, pgid: i32) -> Self {
        self.cfg.session.process_group = Some(pgid);
        self
    }

    /// Makes the terminal at `child_fd` the child's controlling terminal,
    /// in a session of its own (Go's `Setsid` with `Setctty`): the child
    /// calls `setsid`, then `ioctl(child_fd, TIOCSCTTY, 0)`, and the kernel
    /// makes the child's process group the terminal's foreground group. It
    /// is how a program runs interactively under a pseudo-terminal the
    /// caller opened (a terminal emulator, `script(1)`, an expect-like
    /// test): job control, `^C` and `/dev/tty` work in it as on a real
    /// terminal.
    ///
    /// `child_fd` is a number **in the child**, after the fd steps: usually
    /// 0, with the pseudo-terminal's slave as [`stdin`](Command::stdin)
    /// (and stdout and stderr), or the number given to
    /// [`map_fd`](Command::map_fd) or [`pass_fd`](Command::pass_fd).
    /// Open the slave with `O_NOCTTY` in the caller, or it may become the
    /// caller's own controlling terminal.
    ///
    /// When the child exits, the kernel sends `SIGHUP` to the terminal's
    /// foreground group and the terminal has no session any more: the next
    /// child may take it. A terminal that is another session's controlling
    /// terminal is never taken from it: the argument of `TIOCSCTTY` is 0,
    /// where Go passes 1, with which a caller that has `CAP_SYS_ADMIN`
    /// detaches the terminal from its session without a word to it.
    ///
    /// # Errors
    ///
    /// `build()` refuses ([`BuildErrorKind::Invalid`]) a negative number, a
    /// number the fd plan does not give the child, and an fd that is not a
    /// terminal (a pipe of [`Stdio::piped`](crate::Stdio::piped),
    /// `/dev/null`), is open for writing only (the kernel takes a
    /// controlling terminal only through an fd open for reading) or is the
    /// caller's own controlling terminal (a new session cannot take it from
    /// the caller's; [`foreground`](Command::foreground) shares it
    /// instead). It refuses ([`BuildErrorKind::Conflict`]) the combination
    /// with [`process_group`](Command::process_group) (a session leader
    /// cannot change its group), with [`foreground`](Command::foreground)
    /// (which keeps the caller's session) and with
    /// [`daemonize`](Command::daemonize) (a daemon must never acquire a
    /// terminal). In a [dry run](crate::dry_run) only what the fds are is
    /// not checked. The kernel's refusal is [`Error::Spawn`] at stage
    /// [`ControllingTty`](crate::Stage::ControllingTty): `EPERM` when the
    /// terminal is already another session's controlling terminal.
    ///
    /// # References
    ///
    /// [`setsid(2)`](https://man7.org/linux/man-pages/man2/setsid.2.html),
    /// `TIOCSCTTY` in
    /// [`ioctl_tty(2)`](https://man7.org/linux/man-pages/man2/ioctl_tty.2.html)
    /// and [`tty_ioctl(4)`](https://man7.org/linux/man-pages/man4/tty_ioctl.4.html);
    /// any Linux.
    ///
    /// ```
    /// use rustix::pty::{grantpt, openpt, ptsname, unlockpt, OpenptFlags};
    /// use std::os::unix::fs::OpenOptionsExt;
    ///
    /// // A pseudo-terminal: the master stays here, the slave goes to the child.
    /// let master = openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY | OpenptFlags::CLOEXEC)?;
    /// grantpt(&master)?;
    /// unlockpt(&master)?;
    /// let slave = std::fs::OpenOptions::new()
    ///     .read(true)
    ///     .write(true)
    ///     .custom_flags(libc::O_NOCTTY)
    ///     .open(ptsname(&master, Vec::new())?.to_str()?)?;
    /// // /dev/tty opens only in a process that has a controlling terminal.
    /// let status = safespawn::Command::new("sh")
    ///     .args(["-c", "exec </dev/tty"])
    ///     .stdin(slave)
    ///     .controlling_tty(0)
    ///     .status()?;
    /// assert!(status.success());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn controlling_tty(mut self, child_fd: RawFd) -> Self {
        self.cfg.session.controlling_tty = Some(child_fd);
        self
    }

    /// Puts the child in a process group of its own, in the caller's
    /// session, and makes that group the foreground group of the caller's
    /// controlling terminal (Go's `Foreground`), as a shell starts a
    /// foreground job: the terminal's signals (`^C`, `^Z`) go to the
    /// child's group, and the child may read the terminal.
    ///
    /// The group is a new one led by the child, or the one
    /// [`process_group`](Command::process_group) names (the group of a
    /// job's first process, for the others). The terminal is the first of
    /// the child's standard streams, stdin, then stdout, then stderr, that
    /// is the caller's controlling terminal when `build()` runs: the
    /// streams a foreground program is given, whichever of them a
    /// redirection has taken away (`less < file` still has the terminal on
    /// stdout).
    ///
    /// The child is in a background group when it makes the call, which
    /// the kernel answers with `SIGTTOU`: the child blocks `SIGTTOU` for
    /// it and puts its mask back after, so the program starts with the
    /// signal mask it would have without this option.
    ///
    /// The caller is then in the background (reading the terminal stops it
    /// with `SIGTTIN`), and stays there after the child exits: it takes the
    /// terminal back with `tcsetpgrp` on the terminal with its own group
    /// (`rustix::termios::tcsetpgrp(tty, rustix::process::getpgrp())`),
    /// with `SIGTTOU` ignored or blocked, as a shell has it, since a
    /// background `tcsetpgrp` is itself sent `SIGTTOU`.
    ///
    /// # Errors
    ///
    /// `build()` refuses ([`BuildErrorKind::Conflict`]) a command none of
    /// whose standard streams is the caller's controlling terminal (the
    /// default `/dev/null`, or a caller without one), and the combination
    /// with [`new_session`](Command::new_session) or
    /// [`controlling_tty`](Command::controlling_tty) (a new session has no
    /// part in the caller's terminal; `controlling_tty` already makes the
    /// child's group the foreground of its own) and with
    /// [`daemonize`](Command::daemonize). In a [dry run](crate::dry_run)
    /// the streams are not checked. The kernel's refusals are
    /// [`Error::Spawn`] at stage [`ProcessGroup`](crate::Stage::ProcessGroup)
    /// (a `process_group` in another session: `EPERM`) or
    /// [`Foreground`](crate::Stage::Foreground) (`ENOTTY` when the terminal
    /// is no longer the caller's controlling terminal).
    ///
    /// # References
    ///
    /// [`setpgid(2)`](https://man7.org/linux/man-pages/man2/setpgid.2.html),
    /// [`tcsetpgrp(3)`](https://man7.org/linux/man-pages/man3/tcsetpgrp.3.html)
    /// (`TIOCSPGRP` in
    /// [`ioctl_tty(2)`](https://man7.org/linux/man-pages/man2/ioctl_tty.2.html));
    /// any Linux.
    ///
    /// Without a terminal among the streams (the default), nothing could
    /// be brought to the foreground:
    ///
    /// ```
    /// use safespawn::{BuildErrorKind, Command};
    /// let err = Command::new("true").foreground().build().unwrap_err();
    /// assert_eq!(err.build_kind(), Some(BuildErrorKind::Conflict));
    /// ```
    ///
    /// A shell's foreground job, and the terminal taken back after it (not
    /// run here: it needs a caller with a controlling terminal):
    ///
    /// ```no_run
    /// use safespawn::{Command, Stdio};
    /// use std::os::fd::AsFd;
    ///
    /// // As a shell does, once: the caller is about to be in the
    /// // background, where tcsetpgrp would stop it.
    /// // SAFETY: SIG_IGN runs no code of ours; children get SIGTTOU reset.
    /// unsafe { libc::signal(libc::SIGTTOU, libc::SIG_IGN) };
    /// let job = Command::new("vi")
    ///     .stdin(Stdio::inherit())
    ///     .stdout(Stdio::inherit())
    ///     .stderr(Stdio::inherit())
    ///     .foreground()
    ///     .spawn()?;
    /// let finished = job.wait()?;
    /// rustix::termios::tcsetpgrp(std::io::stdin().as_fd(), rustix::process::getpgrp())?;
    /// println!("vi: {:?}", finished.status());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn foreground(mut self) -> Self {
        self.cfg.session.foreground = true;
        self
    }
}

impl SessionConfig {
    /// The checks that need only the options; the terminals are checked
    /// against the fd plan by [`SessionConfig::check_terminals`].
    pub(crate) fn freeze(&self, daemon: bool) -> Result<Session, Error> {
        let conflict = |item: String, problem: &str| {
            Err(Error::build(BuildErrorKind::Conflict, item, problem))
        };
        match self.process_group {
            Some(pgid) if pgid < 0 => {
                return Err(Error::build(
                    BuildErrorKind::Invalid,
                    format!("process_group {pgid}"),
                    "is negative; use 0 for a new group led by the child",
                ))
            }
            Some(pgid) if self.new_session => {
                return conflict(
                    format!("process_group {pgid}"),
                    "new_session already makes the child lead a new process group; a session leader cannot change it",
                )
            }
            _ => {}
        }
        if let Some(fd) = self.controlling_tty {
            let item = format!("controlling_tty({fd})");
            if fd < 0 {
                return Err(Error::build(BuildErrorKind::Invalid, item, "is negative"));
            }
            if let Some(pgid) = self.process_group {
                return conflict(
                    item,
                    &format!("makes the child lead a new session and its process group; process_group {pgid} cannot move a session leader"),
                );
            }
            if self.foreground {
                return conflict(
                    item,
                    "already makes the child's group the foreground group of its terminal, in a new session; foreground() is for a group in the caller's session",
                );
            }
            if daemon {
                return conflict(
                    item,
                    "a daemon is kept from ever acquiring a terminal; daemonize cannot be combined with it",
                );
            }
        }
        if self.foreground {
            let item = "foreground()".to_string();
            if self.new_session {
                return conflict(
                    item,
                    "new_session leaves the caller's session, and with it the terminal the child would be brought to the foreground of",
                );
            }
            if daemon {
                return conflict(item, "a daemon is detached from every terminal on purpose");
            }
        }
        Ok(Session {
            parent_death_signal: self.parent_death_signal,
            // A controlling terminal is acquired by a session leader only.
            new_session: self.new_session || self.controlling_tty.is_some(),
            controlling_tty: None,
            // Foreground: a new group unless one is named.
            process_group: self.process_group.or(self.foreground.then_some(0)),
            foreground: None,
        })
    }

    /// Checks the terminals of `controlling_tty` and `foreground` against
    /// the frozen fd plan (`maps`) and puts their child fds in `session`.
    /// What an fd is (a terminal, the caller's controlling terminal) is
    /// asked of the kernel here, at `build()`, except in a dry run, which
    /// must not depend on the streams of the process running it.
    pub(crate) fn check_terminals(
        &self,
        session: &mut Session,
        maps: &[FdMap],
    ) -> Result<(), Error> {
        let dry_run = crate::dry_run::active();
        let source = |n: RawFd| maps.iter().find(|m| m.dst == n).map(|m| m.src);
        if let Some(n) = self.controlling_tty {
            let item = || format!("controlling_tty({n})");
            let invalid =
                |problem: String| Err(Error::build(BuildErrorKind::Invalid, item(), problem));
            match source(n) {
                None => {
                    return invalid(format!(
                        "fd {n} is not planned for the child: give it the terminal with map_fd or pass_fd (or as stdin, stdout or stderr)"
                    ))
                }
                Some(Src::Slot(_)) => {
                    return invalid(format!(
                        "fd {n} is a pipe made for each spawn, not a terminal"
                    ))
                }
                Some(Src::Fd(fd)) if !dry_run => {
                    // SAFETY: only queried; a closed number answers EBADF.
                    let tty = unsafe { BorrowedFd::borrow_raw(fd) };
                    if !rustix::termios::isatty(tty) {
                        return invalid(format!(
                            "fd {n} of the child (fd {fd} here) is not a terminal"
                        ));
                    }
                    let mode = rustix::fs::fcntl_getfl(tty)
                        .map(|f| f & rustix::fs::OFlags::RWMODE)
                        .map_err(|e| Error::io("reading the flags of a terminal", e))?;
                    if mode == rustix::fs::OFlags::WRONLY {
                        return invalid(format!(
                            "fd {n} of the child (fd {fd} here) is open for writing only; the kernel makes a terminal the controlling one only through an fd open for reading"
                        ));
                    }
                    if is_own_controlling_terminal(tty) {
                        return invalid(format!(
                            "fd {n} of the child (fd {fd} here) is this process's own controlling terminal, which a new session cannot take; foreground() gives the child a share of it"
                        ));
                    }
                }
                Some(Src::Fd(_)) => {}
            }
            session.controlling_tty = Some(n);
        }
        if self.foreground {
            let terminal = (0..3).find(|&n| match source(n) {
                Some(Src::Fd(_)) if dry_run => true,
                Some(Src::Fd(fd)) => {
                    // SAFETY: only queried; a closed number answers EBADF.
                    let stream = unsafe { BorrowedFd::borrow_raw(fd) };
                    is_own_controlling_terminal(stream)
                }
                _ => false,
            });
            let Some(n) = terminal.or(dry_run.then_some(0)) else {
                return Err(Error::build(
                    BuildErrorKind::Conflict,
                    "foreground()",
                    "none of the child's stdin, stdout and stderr is this process's controlling terminal (or it has none): there is no terminal to bring the child to the foreground of",
                ));
            };
            session.foreground = Some(n);
        }
        Ok(())
    }
}

/// Whether `fd` is the calling process's controlling terminal: the
/// kernel tells a terminal's session (`TIOCGSID`) only to the processes it
/// is the controlling terminal of, and to whoever holds a pseudo-terminal's
/// master.
///
/// Session ids are numbers in our pid namespace, and 0 when the leader is
/// outside it (a container's or CI runner's processes; `unshare --pid`).
/// Two 0s may be two sessions, so then only the kernel's rule decides: a
/// terminal's own end answers only to its session, a master to anyone.
fn is_own_controlling_terminal(fd: BorrowedFd<'_>) -> bool {
    let Ok(tty) = crate::sys::tty::session_of(fd) else {
        return false;
    };
    match crate::sys::tty::own_session() {
        0 => tty == 0 && !crate::sys::tty::is_pty_master(fd),
        own => tty == own,
    }
}
