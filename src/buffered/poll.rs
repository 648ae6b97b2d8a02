//! The poll loop of a buffered run and its SIGPIPE guard.

use std::time::Instant;

use rustix::event::{PollFd, PollFlags, Timespec};
use rustix::io::Errno;

use super::state::{self, Next, Schedule};
use super::streams::{Role, Serviced, Stream};
use super::Output;
use crate::error::Error;
use crate::pidfd::{timespec, PID_POLL_FIRST, PID_POLL_MAX};
use crate::plan::Plan;
use crate::process::Running;
use crate::sys;

/// Blocks SIGPIPE in this thread while the loop writes (or, in the async
/// driver, around each write), and on drop takes off the SIGPIPE a failed
/// write raised (see the module docs).
pub(crate) struct SigpipeGuard {
    old_mask: sys::signal::SigSet,
    pending_before: bool,
    pub(crate) saw_epipe: bool,
}

impl SigpipeGuard {
    pub(crate) fn new() -> SigpipeGuard {
        let old_mask = sys::signal::block_signal(libc::SIGPIPE);
        SigpipeGuard {
            old_mask,
            pending_before: sys::signal::signal_pending(libc::SIGPIPE),
            saw_epipe: false,
        }
    }
}

impl Drop for SigpipeGuard {
    fn drop(&mut self) {
        if self.saw_epipe && !self.pending_before {
            sys::signal::discard_pending_signal(libc::SIGPIPE);
        }
        // Restoring a mask obtained from pthread_sigmask cannot fail.
        let _ = sys::signal::set_signal_mask(&self.old_mask);
    }
}

/// A `Vec` of poll entries emptied and given a new lifetime, so one
/// allocation serves every round of the loop while the streams it borrows
/// are closed in between.
fn recycle<'a, 'b>(v: Vec<PollFd<'a>>) -> Vec<PollFd<'b>> {
    let mut v = std::mem::ManuallyDrop::new(v);
    v.clear();
    let (ptr, cap) = (v.as_mut_ptr(), v.capacity());
    // SAFETY: the vector is empty, so no value with the old lifetime
    // survives; `PollFd<'a>` and `PollFd<'b>` differ only in a lifetime, so
    // they have the same layout, and the allocation (pointer, capacity) is
    // handed over whole from the forgotten vector.
    unsafe { Vec::from_raw_parts(ptr.cast::<PollFd<'b>>(), 0, cap) }
}

/// `Timespec` for a poll timeout; `None` = wait for ever.
pub(crate) fn poll_timeout(wake: Option<Instant>, now: Instant) -> Option<Timespec> {
    wake.map(|at| timespec(at.saturating_duration_since(now)))
}

/// The earlier of two optional deadlines (`None` = never).
pub(crate) fn earliest(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, None) => a,
        (None, b) => b,
    }
}

/// The poll loop: services `streams` until the child has exited and every
/// stream is closed (or the post-exit `wait_delay` has passed), then reaps.
/// The decisions are [`Schedule`]'s and [`Stream::service`]'s; this only
/// waits, with `poll(2)`.
///
/// The child's exit is seen through its pidfd, polled with the streams.
/// Where the pidfd cannot be polled (no pidfds, Linux < 5.3) the loop wakes
/// at least every few milliseconds (1 ms, doubling up to 10 ms) and asks
/// with a non-blocking wait instead. A `timeout` or `wait_delay` too large
/// for a deadline means no deadline, never an immediate one.
pub(super) fn drive(
    plan: &Plan,
    mut running: Running,
    mut streams: Vec<Stream<'_>>,
) -> Result<Output, Error> {
    let writes = streams.iter().any(|s| s.is_open() && !s.is_reader());
    let mut sigpipe = writes.then(SigpipeGuard::new);

    let mut schedule = Schedule::new(plan, Instant::now());
    // Without a pollable pidfd: how long until the next look at the child.
    let mut pid_poll = PID_POLL_FIRST;

    const PIDFD: usize = usize::MAX;
    let mut spare: Vec<PollFd<'static>> = Vec::with_capacity(streams.len() + 1);
    let mut ready: Vec<(usize, PollFlags)> = Vec::with_capacity(streams.len() + 1);

    loop {
        let now = Instant::now();
        let mut wake = match schedule.next(now, &streams) {
            Next::Wait { wake } => wake,
            Next::Done => break,
            Next::DrainOver => {
                state::last_reads(&mut streams)?;
                break;
            }
            Next::TimedOut => {
                state::last_reads(&mut streams)?;
                drop(sigpipe);
                running.abort()?;
                return Err(schedule.timeout_error(plan, streams));
            }
        };

        let mut fds = recycle(std::mem::take(&mut spare));
        ready.clear();
        for (i, s) in streams.iter().enumerate() {
            if let Some(fd) = &s.fd {
                let events = match s.role {
                    Role::Write { .. } => PollFlags::OUT,
                    Role::Read { .. } => PollFlags::IN,
                };
                fds.push(PollFd::new(fd, events));
                ready.push((i, PollFlags::empty()));
            }
        }
        let mut watch_by_pid = false;
        if !schedule.exited() {
            match running.pollable_pidfd() {
                Some(pidfd) => {
                    fds.push(PollFd::from_borrowed_fd(pidfd, PollFlags::IN));
                    ready.push((PIDFD, PollFlags::empty()));
                }
                None => {
                    watch_by_pid = true;
                    wake = earliest(wake, now.checked_add(pid_poll));
                    pid_poll = pid_poll.saturating_mul(2).min(PID_POLL_MAX);
                }
            }
        }
        let polled = rustix::event::poll(&mut fds, poll_timeout(wake, now).as_ref());
        for (r, fd) in ready.iter_mut().zip(fds.iter()) {
            r.1 = fd.revents();
        }
        spare = recycle(fds);
        match polled {
            Ok(_) => {}
            Err(Errno::INTR) => continue,
            Err(e) => return Err(Error::io("polling the child's pipes", e)),
        }

        let mut check_exit = watch_by_pid;
        for &(i, revents) in &ready {
            if revents.is_empty() {
                continue;
            }
            if i == PIDFD {
                check_exit = true;
                continue;
            }
            // POLLHUP and POLLERR too: the read or write reports them.
            if streams[i].service()? == Serviced::Epipe {
                if let Some(g) = sigpipe.as_mut() {
                    g.saw_epipe = true;
                }
            }
        }
        if check_exit && running.try_wait()?.is_some() {
            schedule.child_exited(Instant::now());
        }
    }

    let status = running.wait()?.status();
    // Close what a grandchild may still hold, then restore the signal mask.
    let out = state::output(status, streams);
    drop(sigpipe);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recycle_keeps_the_allocation() {
        let null = std::fs::File::open("/dev/null").unwrap();
        let mut v: Vec<PollFd<'_>> = Vec::with_capacity(4);
        v.push(PollFd::new(&null, PollFlags::IN));
        let cap = v.capacity();
        let ptr = v.as_ptr() as usize;
        let w: Vec<PollFd<'static>> = recycle(v);
        assert!(w.is_empty());
        assert_eq!(w.capacity(), cap);
        assert_eq!(w.as_ptr() as usize, ptr);
    }
}
