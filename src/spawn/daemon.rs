//! Daemon mode's parent side: start the intermediate, read what it and the
//! daemon report, reap the intermediate.

use std::ffi::c_int;
use std::os::fd::{AsFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

use rustix::io::Errno;
use rustix::process::{Pid, Signal, WaitId, WaitIdOptions};

use super::clone::{clone_on, fork_child, ChildStack};
use super::report::{read_message, spawn_error, Channel, ReportPipe};
use crate::child::report::{decode, Report};
use crate::child::DaemonSlots;
use crate::error::Error;
use crate::pidfd::{wait_readable, PID_POLL_MAX};
use crate::plan::Plan;

/// The pids of a started daemon: the intermediate (already reaped) and the
/// daemon itself.
#[derive(Debug, Clone, Copy)]
pub(crate) struct DaemonPids {
    pub intermediate: i32,
    pub daemon: i32,
}

/// Starts the intermediate, which starts the daemon, and returns once the
/// intermediate has exited (and is reaped) and the daemon has exec'd, its
/// pidfile written.
///
/// Both processes are `clone(CLONE_VM | CLONE_VFORK)` children on two stack
/// regions of this frame, so the cost stays flat in the parent's memory
/// size; only `pre_exec` hooks make the intermediate a `fork`.
pub(crate) fn spawn_daemon(plan: &Plan, slots: &[RawFd]) -> Result<DaemonPids, Error> {
    // Where the kernel records the daemon's pid (see `DaemonSlots::pid`).
    let mut daemon_pid: c_int = 0;
    let (mut intermediate, report) = if plan.needs_fork() {
        // The forked intermediate has its own copy of this frame, so the
        // daemon's stack can be a buffer here (and the pid lands in the copy).
        let mut daemon_stack = ChildStack::new();
        let slots_in_frame = DaemonSlots {
            stack: daemon_stack.top(),
            pid: &mut daemon_pid,
        };
        let forked = fork_child(plan, slots, false, slots_in_frame)?;
        (forked.child, forked.report)
    } else {
        let mut stacks = [ChildStack::new(), ChildStack::new()];
        let [first, second] = &mut stacks;
        let slots_in_frame = DaemonSlots {
            stack: second.top(),
            pid: &mut daemon_pid,
        };
        // A pipe of its own, read until nothing is left: both the
        // intermediate and the daemon report on it.
        let report = ReportPipe::new()?;
        let child = clone_on(
            plan,
            slots,
            first,
            slots_in_frame,
            &mut Channel::Pipe(&report.write),
        )?;
        drop(report.write);
        (child, report.read)
    };
    let mut daemon = None;
    let mut failure = None;
    let mut foreign = false;
    loop {
        match read_message(&report) {
            Ok(Some(msg)) => match decode(&msg) {
                Some(Report::Daemon(pid)) => daemon = Some(pid),
                Some(Report::Failed(f)) => {
                    failure.get_or_insert(f);
                }
                _ => foreign = true,
            },
            // End of file, or (clone path) nothing more: both processes
            // have exec'd or exited by now.
            Ok(None) | Err(Errno::AGAIN) => break,
            // Dropping the intermediate kills and reaps it.
            Err(e) => return Err(Error::io("reading the daemon's report", e)),
        }
    }
    let status = intermediate
        .wait()
        .map_err(|e| Error::io("waiting for the intermediate process", e))?;
    if let Some(signal) = std::os::unix::process::ExitStatusExt::signal(&status) {
        // Killed before it could see the daemon through (only SIGKILL can:
        // it blocks everything else). On the clone path the daemon may still
        // run on the second stack of this frame: stop it before returning.
        // SAFETY: the kernel wrote the slot, if at all, before the daemon
        // ran; nothing writes it any more (the intermediate is gone).
        let pid = unsafe { std::ptr::read_volatile(&daemon_pid) };
        if pid > 0 && !plan.needs_fork() {
            stop_stray_daemon(pid);
        }
        return Err(Error::io(
            &format!(
                "the intermediate process was killed by signal {signal} before the daemon started"
            ),
            Errno::CHILD,
        ));
    }
    if foreign {
        return Err(Error::io("reading the daemon's report", Errno::PROTO));
    }
    if let Some(failure) = failure {
        return Err(spawn_error(plan, failure));
    }
    match daemon {
        Some(daemon) if status.success() => Ok(DaemonPids {
            intermediate: intermediate.pid(),
            daemon,
        }),
        _ => Err(Error::io(
            "the intermediate process ended without starting the daemon",
            Errno::CHILD,
        )),
    }
}

/// A daemon stopped before exec, its intermediate reaped.
#[derive(Debug)]
pub(crate) struct PausedDaemonChild {
    pub pids: DaemonPids,
    /// The report pipe, which only the daemon still writes to.
    pub report: OwnedFd,
    /// The pipe the daemon waits on; `None` once resumed.
    pub resume: Option<OwnedFd>,
    /// The daemon's pidfd (`None` without `pidfd_open`, Linux < 5.3).
    pub pidfd: Option<OwnedFd>,
}

impl PausedDaemonChild {
    /// Kills the daemon if it is still there and waits until it has exited
    /// (so its pidfile lock is released); idempotent.
    pub(crate) fn kill(&mut self) {
        self.resume = None;
        match self.pidfd.take() {
            Some(pidfd) => {
                if let Err(Errno::NOSYS | Errno::PERM) =
                    rustix::process::pidfd_send_signal(&pidfd, Signal::KILL)
                {
                    // A filter refuses the call: by pid, while the pidfd
                    // says the daemon has not exited (the window left for
                    // pid reuse is between this poll and the kill).
                    if let Ok(false) = wait_readable(pidfd.as_fd(), Some(Instant::now())) {
                        if let Some(pid) = Pid::from_raw(self.pids.daemon) {
                            let _ = rustix::process::kill_process(pid, Signal::KILL);
                        }
                    }
                }
                // A pidfd becomes readable when the process has exited,
                // after its files (and with them its locks) are released.
                while let Ok(false) = wait_readable(
                    pidfd.as_fd(),
                    Instant::now().checked_add(Duration::from_secs(1)),
                ) {}
            }
            // By pid, only while the report pipe shows the daemon alive (it
            // holds the last write end): a dead daemon's pid may be reused.
            None if !hung_up(&self.report) => stop_stray_daemon(self.pids.daemon),
            None => {}
        }
    }
}

/// Whether every write end of `read`'s pipe is closed.
fn hung_up(read: &OwnedFd) -> bool {
    use rustix::event::{PollFd, PollFlags};
    let mut fds = [PollFd::new(read, PollFlags::IN)];
    let zero = rustix::event::Timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    match rustix::event::poll(&mut fds, Some(&zero)) {
        Ok(n) if n > 0 => fds[0].revents().contains(PollFlags::HUP),
        _ => false,
    }
}

/// Starts a daemon that stops before exec (the fork path, with a pause
/// pipe): returns once the intermediate is reaped and the daemon waits at
/// its pause, its pidfile written and locked.
pub(crate) fn spawn_daemon_paused(
    plan: &Plan,
    slots: &[RawFd],
) -> Result<PausedDaemonChild, Error> {
    // The forked intermediate starts the daemon with a fork-style clone:
    // the slots only have to be valid (a copy of this frame).
    let mut daemon_pid: c_int = 0;
    let mut daemon_stack = ChildStack::new();
    let slots_in_frame = DaemonSlots {
        stack: daemon_stack.top(),
        pid: &mut daemon_pid,
    };
    let forked = fork_child(plan, slots, true, slots_in_frame)?;
    let (mut intermediate, report, resume) = (forked.child, forked.report, forked.resume);
    // The intermediate never waits for this process: it starts the daemon,
    // reports its pid and exits. Reaped first, so that everything it wrote
    // is in the pipe and nothing below waits for a process that is gone.
    let status = intermediate
        .wait()
        .map_err(|e| Error::io("waiting for the intermediate process", e))?;
    if let Some(signal) = std::os::unix::process::ExitStatusExt::signal(&status) {
        // A daemon it may have started sees the resume pipe close (dropped
        // on return) and exits with ECANCELED.
        return Err(Error::io(
            &format!(
                "the intermediate process was killed by signal {signal} before the daemon started"
            ),
            Errno::CHILD,
        ));
    }
    let mut daemon = None;
    let mut paused = false;
    let mut failure = None;
    let mut foreign = false;
    // The daemon stops writing once paused; a failed one exits, and then
    // the pipe ends.
    while !(paused && daemon.is_some()) {
        match read_message(&report) {
            Ok(Some(msg)) => match decode(&msg) {
                Some(Report::Daemon(pid)) => daemon = Some(pid),
                Some(Report::Paused) => paused = true,
                Some(Report::Failed(f)) => {
                    failure.get_or_insert(f);
                }
                None => foreign = true,
            },
            Ok(None) => break,
            Err(e) => return Err(Error::io("reading the daemon's report", e)),
        }
    }
    if foreign {
        return Err(Error::io("reading the daemon's report", Errno::PROTO));
    }
    if let Some(failure) = failure {
        return Err(spawn_error(plan, failure));
    }
    let (Some(daemon), true, true) = (daemon, paused, status.success()) else {
        return Err(Error::io(
            "the intermediate process ended without starting the daemon",
            Errno::CHILD,
        ));
    };
    let pidfd = match Pid::from_raw(daemon) {
        Some(pid) => crate::sys::fd::pidfd_open(pid).unwrap_or(None),
        None => None,
    };
    let mut child = PausedDaemonChild {
        pids: DaemonPids {
            intermediate: intermediate.pid(),
            daemon,
        },
        report,
        resume,
        pidfd,
    };
    // The daemon holds the last write end of the report pipe while it
    // lives: if the pipe is still open now, after pidfd_open, the pidfd is
    // the daemon's and not that of a process that got its pid since.
    if hung_up(&child.report) {
        child.pidfd = None;
        return Err(Error::io(
            "the paused daemon ended before it could be resumed",
            Errno::CHILD,
        ));
    }
    Ok(child)
}

/// Lets a paused daemon exec; returns its pids once it has, or its failure.
/// On an error the daemon is left to the caller's `kill`.
pub(crate) fn resume_daemon(
    plan: &Plan,
    child: &mut PausedDaemonChild,
) -> Result<DaemonPids, Error> {
    let Some(resume) = child.resume.take() else {
        return Err(Error::io("resuming the daemon", Errno::INVAL));
    };
    let written = rustix::io::retry_on_intr(|| rustix::io::write(&resume, b"1"));
    drop(resume);
    if let Err(e) = written {
        return Err(Error::io("resuming the daemon", e));
    }
    match read_message(&child.report) {
        // The report pipe is close-on-exec: end of file is a daemon that
        // exec'd.
        Ok(None) => Ok(child.pids),
        Ok(Some(msg)) => match decode(&msg) {
            Some(Report::Failed(f)) => Err(spawn_error(plan, f)),
            _ => Err(Error::io("reading the daemon's report", Errno::PROTO)),
        },
        Err(e) => Err(Error::io("reading the daemon's report", e)),
    }
}

/// Kills a daemon whose intermediate was killed, and waits until it has
/// exited, so that the memory it may still run on can be reused. A pidfd
/// of a process that is not our child becomes readable when it exits.
///
/// Without `pidfd_open` (Linux < 5.3) the daemon is killed by pid and
/// watched with `kill(pid, 0)` until it is gone. That is exposed to pid
/// reuse as a pidfd is not: the daemon is not our child, so once it has
/// exited its parent (init or a subreaper) may reap it and the number may
/// be handed out again before we look. It would take the whole pid space
/// to wrap around within the few system calls between the intermediate's
/// death and these; the alternative, returning while the daemon may still
/// run on this frame's memory, would be worse.
fn stop_stray_daemon(pid: i32) {
    let Some(pid) = Pid::from_raw(pid) else {
        return;
    };
    match crate::sys::fd::pidfd_open(pid) {
        Ok(Some(pidfd)) => {
            if let Err(Errno::NOSYS | Errno::PERM) =
                rustix::process::pidfd_send_signal(&pidfd, Signal::KILL)
            {
                // A filter refuses the call: by pid, as below.
                let _ = rustix::process::kill_process(pid, Signal::KILL);
            }
            // SIGKILL cannot be caught or blocked: the wait ends, whatever
            // the daemon did (a Linux 5.3+ pidfd: pollable).
            while let Ok(false) = wait_readable(
                pidfd.as_fd(),
                Instant::now().checked_add(Duration::from_secs(1)),
            ) {}
        }
        // Gone already.
        Err(Errno::SRCH) => {}
        // No pidfd_open (or no fd left for one): by pid.
        Ok(None) | Err(_) => {
            if rustix::process::kill_process(pid, Signal::KILL).is_err() {
                return; // already gone
            }
            // Running until it is a zombie (or reaped): /proc shows when it
            // stopped running, kill(pid, 0) when it was reaped, and a
            // non-reaping waitid when it is a zombie child of ours (this
            // process a subreaper, and no /proc).
            while rustix::process::test_kill_process(pid).is_ok()
                && !is_zombie(pid)
                && !is_our_zombie(pid)
            {
                std::thread::sleep(PID_POLL_MAX);
            }
        }
    }
}

/// Whether `pid` is an exited child of ours, without reaping it.
fn is_our_zombie(pid: Pid) -> bool {
    let options = WaitIdOptions::EXITED | WaitIdOptions::NOHANG | WaitIdOptions::NOWAIT;
    matches!(
        rustix::process::waitid(WaitId::Pid(pid), options),
        Ok(Some(_))
    )
}

/// Whether `pid` is a zombie (or dead and not yet reaped), from
/// `/proc/PID/stat`; false when that cannot be read.
fn is_zombie(pid: Pid) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{}/stat", pid.as_raw_nonzero())) else {
        return false;
    };
    let state = stat
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().next());
    matches!(state, Some("Z" | "X"))
}
