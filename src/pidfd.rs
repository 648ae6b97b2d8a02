//! One child of ours, owned through its pidfd: the core that `Running`,
//! `Paused` and `Detached` (and, later, the async wrappers) are thin
//! layers over.
//!
//! A child is reaped exactly once, through its pidfd (`waitid(P_PIDFD)`,
//! Linux 5.4), so a recycled pid can never be waited for or signalled; what
//! dropping it does is the owner's choice ([`OnDrop`]).

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;
use std::time::{Duration, Instant};

use rustix::event::{PollFd, PollFlags, Timespec};
use rustix::io::Errno;
use rustix::process::{Pid, Signal, WaitId, WaitIdOptions};

/// How long `abort` waits after SIGTERM before SIGKILL.
pub(crate) const ABORT_GRACE: Duration = Duration::from_millis(100);

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

/// A started child: its pid, its pidfd and, once reaped, its status.
#[derive(Debug)]
pub(crate) struct ChildPid {
    pid: i32,
    pidfd: OwnedFd,
    /// `Some` once reaped.
    status: Option<ExitStatus>,
    on_drop: OnDrop,
}

impl ChildPid {
    /// A child just started, killed and reaped if dropped before anything
    /// else is decided.
    pub(crate) fn new(pid: i32, pidfd: OwnedFd) -> ChildPid {
        ChildPid {
            pid,
            pidfd,
            status: None,
            on_drop: OnDrop::Kill,
        }
    }

    /// The same child, with `on_drop` as what dropping it does.
    pub(crate) fn on_drop(mut self, on_drop: OnDrop) -> ChildPid {
        self.on_drop = on_drop;
        self
    }

    pub(crate) fn pid(&self) -> i32 {
        self.pid
    }

    pub(crate) fn pidfd(&self) -> BorrowedFd<'_> {
        self.pidfd.as_fd()
    }

    /// Waits for the child to end and reaps it (once; later calls return
    /// the same status).
    pub(crate) fn wait(&mut self) -> Result<ExitStatus, Errno> {
        if let Some(status) = self.status {
            return Ok(status);
        }
        let status = wait_pidfd(&self.pidfd, WaitIdOptions::EXITED)?.unwrap_or_else(unknown);
        self.status = Some(status);
        Ok(status)
    }

    /// Reaps the child if it has ended, without blocking.
    pub(crate) fn try_wait(&mut self) -> Result<Option<ExitStatus>, Errno> {
        if self.status.is_none() {
            self.status = wait_pidfd(&self.pidfd, WaitIdOptions::EXITED | WaitIdOptions::NOHANG)?;
        }
        Ok(self.status)
    }

    /// Waits at most `timeout` for the child to end (polling its pidfd),
    /// reaping it if it has.
    pub(crate) fn wait_timeout(&mut self, timeout: Duration) -> Result<Option<ExitStatus>, Errno> {
        if self.status.is_none() {
            wait_readable(&self.pidfd, timeout)?;
        }
        self.try_wait()
    }

    /// Sends `signal` through the pidfd; `ESRCH` once reaped, never a
    /// signal to another process.
    pub(crate) fn signal(&self, signal: Signal) -> Result<(), Errno> {
        if self.status.is_some() {
            return Err(Errno::SRCH);
        }
        rustix::process::pidfd_send_signal(&self.pidfd, signal)
    }

    /// TERM, a short grace, KILL, reap (libvirt's virProcessAbort).
    pub(crate) fn abort(&mut self) -> Result<ExitStatus, Errno> {
        if let Some(status) = self.try_wait()? {
            return Ok(status);
        }
        let _ = rustix::process::pidfd_send_signal(&self.pidfd, Signal::TERM);
        if wait_readable(&self.pidfd, ABORT_GRACE)? {
            if let Some(status) = self.try_wait()? {
                return Ok(status);
            }
        }
        self.kill()
    }

    /// KILL and reap. Errors but the reap's are ignored: SIGKILL cannot be
    /// caught, and the pidfd keeps the pid from being reused meanwhile.
    pub(crate) fn kill(&mut self) -> Result<ExitStatus, Errno> {
        if self.status.is_none() {
            let _ = rustix::process::pidfd_send_signal(&self.pidfd, Signal::KILL);
        }
        self.wait()
    }
}

impl Drop for ChildPid {
    fn drop(&mut self) {
        if self.status.is_some() {
            return;
        }
        let _ = match self.on_drop {
            OnDrop::Abort => self.abort(),
            OnDrop::Kill => self.kill(),
            OnDrop::Leave => return,
        };
    }
}

/// `pid` as rustix's `Pid`. A pid from clone/fork is always positive; fall
/// back to init's pid rather than panic (it is never signalled: every
/// caller has a pidfd or checked the pid).
pub(crate) fn pid_of(pid: i32) -> Pid {
    Pid::from_raw(pid).unwrap_or(Pid::INIT)
}

/// Polls `fd` for readability for at most `timeout` (EINTR-safe); a pidfd
/// is readable once its process has exited.
pub(crate) fn wait_readable(fd: &OwnedFd, timeout: Duration) -> Result<bool, Errno> {
    let deadline = Instant::now().checked_add(timeout);
    loop {
        let left = match deadline {
            Some(d) => d.saturating_duration_since(Instant::now()),
            None => Duration::from_secs(i32::MAX as u64),
        };
        let ts = Timespec {
            tv_sec: left.as_secs().min(i64::MAX as u64) as i64,
            tv_nsec: i64::from(left.subsec_nanos()),
        };
        let mut fds = [PollFd::new(fd, PollFlags::IN)];
        match rustix::event::poll(&mut fds, Some(&ts)) {
            Ok(n) => return Ok(n > 0),
            Err(Errno::INTR) => continue,
            Err(e) => return Err(e),
        }
    }
}

fn wait_pidfd(pidfd: &OwnedFd, options: WaitIdOptions) -> Result<Option<ExitStatus>, Errno> {
    let status = rustix::io::retry_on_intr(|| {
        rustix::process::waitid(WaitId::PidFd(pidfd.as_fd()), options)
    })?;
    Ok(status.map(|s| {
        let raw = if let Some(code) = s.exit_status() {
            (code & 0xff) << 8
        } else if let Some(sig) = s.terminating_signal() {
            sig | if s.dumped() { 0x80 } else { 0 }
        } else {
            0
        };
        ExitStatus::from_raw(raw)
    }))
}

fn unknown() -> ExitStatus {
    ExitStatus::from_raw(0)
}
