//! One child of ours, owned through its pidfd (or, on kernels without
//! pidfds, through its pid): the core that `Running`, `Paused` and
//! `Detached` (and, later, the async wrappers) are thin layers over.
//!
//! A child is reaped exactly once; what dropping it does is the owner's
//! choice ([`OnDrop`]).
//!
//! # Kernels and fallbacks
//!
//! With a pidfd (`CLONE_PIDFD`, Linux 5.2; `pidfd_open`, 5.3) the child is
//! signalled through it (`pidfd_send_signal`, 5.1), reaped with
//! `waitid(P_PIDFD)` (5.4) and watched with `poll` (5.3). Where a piece is
//! missing the next best thing is used, each refusal probed once and cached
//! (a [`Probe`]), so a modern kernel pays nothing for the fallbacks:
//!
//! * `waitid(P_PIDFD)` refused (`EINVAL` on 5.3, `ENOSYS`/`EPERM` from a
//!   seccomp filter): `waitid(P_PID, pid)`, or `waitpid` where a filter
//!   refuses `waitid` itself;
//! * no pidfd at all (before 5.2 on the clone path, 5.3 on the fork path, or
//!   a filter): the child is owned by pid: `waitid(P_PID)` to wait, `kill(2)`
//!   to signal;
//! * `pidfd_send_signal` refused: `kill(2)`;
//! * a pidfd that cannot be polled (no `pidfd_open`, so Linux 5.2 or a
//!   filter) or none: waits with a timeout sleep briefly between
//!   non-blocking `waitid` calls (1 ms, doubling up to 10 ms).
//!
//! Signalling by pid is as safe as through a pidfd here: a child that we
//! have not reaped keeps its pid (it is at worst a zombie), and a child that
//! we have reaped is never signalled again. The one thing a pidfd protects
//! against that a pid does not is a child reaped behind our back (a
//! `waitpid(-1)` elsewhere in the process, or `SIGCHLD` set to `SIG_IGN`);
//! a process that does that cannot own children by pid safely.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;
use std::sync::atomic::AtomicU8;
use std::time::{Duration, Instant};

use rustix::event::{PollFd, PollFlags, Timespec};
use rustix::io::Errno;
use rustix::process::{Pid, Signal, WaitId, WaitIdOptions, WaitIdStatus, WaitOptions};

use crate::sys::compat;
use crate::sys::fd::Probe;

/// How long `abort` waits after SIGTERM before SIGKILL.
pub(crate) const ABORT_GRACE: Duration = Duration::from_millis(100);

/// The first sleep of a wait that cannot poll a pidfd; it doubles up to
/// [`PID_POLL_MAX`].
pub(crate) const PID_POLL_FIRST: Duration = Duration::from_millis(1);
/// The longest sleep of a wait that cannot poll a pidfd.
pub(crate) const PID_POLL_MAX: Duration = Duration::from_millis(10);

/// What dropping an unreaped [`ChildPid`] does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OnDrop {
    /// SIGTERM, a short grace, SIGKILL, reap (a `Running`).
    Abort,
    /// SIGKILL and reap (a child we gave up on: a `Paused`, a failed spawn).
    Kill,
    /// Nothing: the caller took the child over (a `Detached`).
    Leave,
}

/// A started child: its pid, its pidfd where the kernel gave one and, once
/// reaped, its status.
#[derive(Debug)]
pub(crate) struct ChildPid {
    pid: Pid,
    /// `None` on systems without pidfds: the child is owned by pid.
    pidfd: Option<OwnedFd>,
    /// `Some` once reaped.
    status: Option<ExitStatus>,
    on_drop: OnDrop,
}

impl ChildPid {
    /// A child just started, with its pidfd if there is one; killed and
    /// reaped if dropped before anything else is decided.
    pub(crate) fn new(pid: Pid, pidfd: Option<OwnedFd>) -> ChildPid {
        ChildPid {
            pid,
            pidfd,
            status: None,
            on_drop: OnDrop::Kill,
        }
    }

    /// A child just started by clone or fork, from the raw pid and the
    /// pidfd slot (-1 when the kernel gave none): takes ownership of the
    /// pidfd, moves it above the standard streams, and where none came
    /// back opens one with `pidfd_open` (or, without it, owns the child by
    /// pid). On an error the child is killed and reaped (by pid) before
    /// returning.
    pub(crate) fn adopt(raw_pid: i32, raw_pidfd: i32) -> Result<ChildPid, crate::Error> {
        let Some(pid) = Pid::from_raw(raw_pid) else {
            // Cannot happen: clone and fork return a positive pid. Close the
            // pidfd, if any; there is no pid to kill.
            if raw_pidfd >= 0 {
                // SAFETY: the kernel gave us this fd; nothing else owns it.
                drop(unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(raw_pidfd) });
            }
            return Err(crate::Error::io("starting the child", Errno::SRCH));
        };
        // Owned by pid from here, so any return below kills and reaps it.
        let mut child = ChildPid::new(pid, None);
        if raw_pidfd >= 0 {
            // SAFETY: with CLONE_PIDFD the kernel stored a new fd of ours in
            // the slot; nothing else owns it.
            let fd = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(raw_pidfd) };
            let fd = crate::sys::fd::above_stdio(fd)
                .map_err(|e| crate::Error::io("moving the child's pidfd above stdio", e))?;
            child.pidfd = Some(fd);
        } else {
            child.pidfd = crate::sys::fd::pidfd_open(pid)
                .map_err(|e| crate::Error::io("pidfd_open of the new child", e))?;
        }
        Ok(child)
    }

    /// The same child, with `on_drop` as what dropping it does.
    pub(crate) fn on_drop(mut self, on_drop: OnDrop) -> ChildPid {
        self.on_drop = on_drop;
        self
    }

    pub(crate) fn pid(&self) -> i32 {
        self.pid.as_raw_nonzero().get()
    }

    /// The pidfd, where this system gave one.
    pub(crate) fn pidfd(&self) -> Option<BorrowedFd<'_>> {
        self.pidfd.as_ref().map(|fd| fd.as_fd())
    }

    /// The pidfd, if `poll` on it reports the child's exit (Linux 5.3;
    /// see [`crate::sys::fd::have_pidfd_open`]).
    pub(crate) fn pollable_pidfd(&self) -> Option<BorrowedFd<'_>> {
        self.pidfd().filter(|_| crate::sys::fd::have_pidfd_open())
    }

    /// Whether the child has been reaped.
    pub(crate) fn reaped(&self) -> bool {
        self.status.is_some()
    }

    /// Waits for the child to end and reaps it (once; later calls return
    /// the same status).
    pub(crate) fn wait(&mut self) -> Result<ExitStatus, Errno> {
        if let Some(status) = self.status {
            return Ok(status);
        }
        let status = self.reap(WaitIdOptions::EXITED)?.unwrap_or_else(unknown);
        self.status = Some(status);
        Ok(status)
    }

    /// Reaps the child if it has ended, without blocking.
    pub(crate) fn try_wait(&mut self) -> Result<Option<ExitStatus>, Errno> {
        if self.status.is_none() {
            self.status = self.reap(WaitIdOptions::EXITED | WaitIdOptions::NOHANG)?;
        }
        Ok(self.status)
    }

    /// One `waitid` for this child: through the pidfd where the kernel
    /// takes `P_PIDFD`, else by pid (race-free: the child is not reaped, so
    /// its pid is still its own).
    fn reap(&self, options: WaitIdOptions) -> Result<Option<ExitStatus>, Errno> {
        if let Some(pidfd) = &self.pidfd {
            if Probe::load(&WAITID_PIDFD) != Probe::No {
                match waitid_pidfd(pidfd.as_fd(), options) {
                    Err(e) if waitid_pidfd_refused(e) => Probe::No.store(&WAITID_PIDFD),
                    other => return other,
                }
            }
        }
        wait_by_pid(self.pid, options)
    }

    /// Waits at most `timeout` for the child to end, reaping it if it has:
    /// by polling its pidfd, or, where that cannot be polled, by sleeping
    /// briefly between non-blocking waits (1 ms, doubling up to 10 ms). A
    /// `timeout` too large for a deadline waits for as long as it takes.
    pub(crate) fn wait_timeout(&mut self, timeout: Duration) -> Result<Option<ExitStatus>, Errno> {
        self.wait_until(Instant::now().checked_add(timeout))
    }

    /// [`wait_timeout`](Self::wait_timeout) up to `deadline` (`None`: no
    /// deadline).
    pub(crate) fn wait_until(
        &mut self,
        deadline: Option<Instant>,
    ) -> Result<Option<ExitStatus>, Errno> {
        if let Some(status) = self.status {
            return Ok(Some(status));
        }
        if let Some(pidfd) = self.pollable_pidfd() {
            wait_readable(pidfd, deadline)?;
            return self.try_wait();
        }
        let mut step = PID_POLL_FIRST;
        loop {
            if let Some(status) = self.try_wait()? {
                return Ok(Some(status));
            }
            let nap = match deadline {
                None => step,
                Some(d) => {
                    let left = d.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return Ok(None);
                    }
                    left.min(step)
                }
            };
            std::thread::sleep(nap);
            step = step.saturating_mul(2).min(PID_POLL_MAX);
        }
    }

    /// Sends `signal` to the child: through the pidfd, or by pid where
    /// there is none (or `pidfd_send_signal` is refused). `ESRCH` once
    /// reaped, never a signal to another process.
    pub(crate) fn signal(&self, signal: Signal) -> Result<(), Errno> {
        if self.status.is_some() {
            return Err(Errno::SRCH);
        }
        if let Some(pidfd) = &self.pidfd {
            if Probe::load(&PIDFD_SEND_SIGNAL) != Probe::No {
                match pidfd_send_signal(pidfd.as_fd(), signal) {
                    // ENOSYS: no such call (Linux < 5.1, a filter). EPERM: a
                    // filter, or really no permission, in which case kill(2)
                    // answers EPERM as well.
                    Err(e @ (Errno::NOSYS | Errno::PERM)) => {
                        let killed = rustix::process::kill_process(self.pid, signal);
                        if e == Errno::NOSYS || killed.is_ok() {
                            Probe::No.store(&PIDFD_SEND_SIGNAL);
                        }
                        return killed;
                    }
                    other => return other,
                }
            }
        }
        // Not reaped: the pid is still this child's.
        rustix::process::kill_process(self.pid, signal)
    }

    /// TERM, a short grace, KILL, reap (libvirt's virProcessAbort). The
    /// signals come first and a failed wait never stops the sequence: a
    /// child that cannot be waited for is still killed.
    pub(crate) fn abort(&mut self) -> Result<ExitStatus, Errno> {
        if let Some(status) = self.status {
            return Ok(status);
        }
        // A child that has exited already is a zombie: the signal is lost
        // on it, harmlessly, and the wait below returns its own status.
        let _ = self.signal(Signal::TERM);
        if let Ok(Some(status)) = self.wait_timeout(ABORT_GRACE) {
            return Ok(status);
        }
        self.kill()
    }

    /// KILL and reap. Errors but the reap's are ignored: SIGKILL cannot be
    /// caught, and the unreaped child keeps its pid meanwhile.
    pub(crate) fn kill(&mut self) -> Result<ExitStatus, Errno> {
        if self.status.is_none() {
            let _ = self.signal(Signal::KILL);
        }
        self.wait()
    }
}

/// [`ChildPid::abort`] for many children at once: TERM to all, one shared
/// grace, KILL to those still running, then every child reaped. Returns
/// each child's outcome, in order.
pub(crate) fn abort_all(children: &mut [&mut ChildPid]) -> Vec<Result<ExitStatus, Errno>> {
    for child in children.iter() {
        if !child.reaped() {
            let _ = child.signal(Signal::TERM);
        }
    }
    let deadline = Instant::now().checked_add(ABORT_GRACE);
    for child in children.iter_mut() {
        // A failed wait is no reason to skip the KILL below.
        let _ = child.wait_until(Some(deadline.unwrap_or_else(Instant::now)));
    }
    for child in children.iter() {
        if !child.reaped() {
            let _ = child.signal(Signal::KILL);
        }
    }
    children.iter_mut().map(|child| child.wait()).collect()
}

impl Drop for ChildPid {
    fn drop(&mut self) {
        if self.status.is_some() {
            return;
        }
        // Both signal before they wait, whatever the wait then says.
        let _ = match self.on_drop {
            OnDrop::Abort => self.abort(),
            OnDrop::Kill => self.kill(),
            OnDrop::Leave => return,
        };
    }
}

/// Whether `waitid(P_PIDFD)` may be used (a [`Probe`]): `No` once the
/// kernel or a filter refused it.
static WAITID_PIDFD: AtomicU8 = AtomicU8::new(Probe::Unknown as u8);

/// Whether `pidfd_send_signal` may be used (a [`Probe`]): `No` once a
/// filter refused it.
static PIDFD_SEND_SIGNAL: AtomicU8 = AtomicU8::new(Probe::Unknown as u8);

/// Whether `waitid(P_PIDFD)` failed because this system does not take it:
/// `EINVAL` (Linux 5.3, which has pidfds but not this id type; our options
/// and fd are valid), `ENOSYS` or `EPERM` (a seccomp filter). The child was
/// not reaped, so the caller waits by pid instead.
fn waitid_pidfd_refused(e: Errno) -> bool {
    e == Errno::INVAL || crate::sys::fd::refused(e)
}

/// Polls `fd` for readability until `deadline` (`None`: for as long as it
/// takes), EINTR-safe; a pollable pidfd is readable once its process has
/// exited.
pub(crate) fn wait_readable(fd: BorrowedFd<'_>, deadline: Option<Instant>) -> Result<bool, Errno> {
    loop {
        let ts = deadline.map(|d| timespec(d.saturating_duration_since(Instant::now())));
        let mut fds = [PollFd::from_borrowed_fd(fd, PollFlags::IN)];
        match rustix::event::poll(&mut fds, ts.as_ref()) {
            Ok(n) => return Ok(n > 0),
            Err(Errno::INTR) => continue,
            Err(e) => return Err(e),
        }
    }
}

/// `d` as a poll timeout, saturated at what a `Timespec` holds.
pub(crate) fn timespec(d: Duration) -> Timespec {
    Timespec {
        tv_sec: d.as_secs().min(i64::MAX as u64) as i64,
        tv_nsec: i64::from(d.subsec_nanos()),
    }
}

fn waitid_pidfd(
    pidfd: BorrowedFd<'_>,
    options: WaitIdOptions,
) -> Result<Option<ExitStatus>, Errno> {
    if compat::forced(compat::NO_WAITID_PIDFD) {
        return Err(compat::unknown_argument());
    }
    let status =
        rustix::io::retry_on_intr(|| rustix::process::waitid(WaitId::PidFd(pidfd), options))?;
    Ok(status.map(exit_status))
}

/// Waits for the child `pid` with `waitid(P_PID)`, or `waitpid` where a
/// filter refuses `waitid`.
fn wait_by_pid(pid: Pid, options: WaitIdOptions) -> Result<Option<ExitStatus>, Errno> {
    match rustix::io::retry_on_intr(|| rustix::process::waitid(WaitId::Pid(pid), options)) {
        Ok(status) => Ok(status.map(exit_status)),
        Err(e) if crate::sys::fd::refused(e) => {
            let nohang = options.contains(WaitIdOptions::NOHANG);
            let opts = if nohang {
                WaitOptions::NOHANG
            } else {
                WaitOptions::empty()
            };
            let got = rustix::io::retry_on_intr(|| rustix::process::waitpid(Some(pid), opts))?;
            Ok(got.map(|(_, status)| ExitStatus::from_raw(status.as_raw())))
        }
        Err(e) => Err(e),
    }
}

fn pidfd_send_signal(pidfd: BorrowedFd<'_>, signal: Signal) -> Result<(), Errno> {
    if compat::forced(compat::NO_PIDFD_SEND_SIGNAL) {
        return Err(compat::missing());
    }
    rustix::process::pidfd_send_signal(pidfd, signal)
}

fn exit_status(s: WaitIdStatus) -> ExitStatus {
    let raw = if let Some(code) = s.exit_status() {
        (code & 0xff) << 8
    } else if let Some(sig) = s.terminating_signal() {
        sig | if s.dumped() { 0x80 } else { 0 }
    } else {
        0
    };
    ExitStatus::from_raw(raw)
}

fn unknown() -> ExitStatus {
    ExitStatus::from_raw(0)
}
