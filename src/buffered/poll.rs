//! The poll loop of a buffered run and its SIGPIPE guard.

use std::time::Instant;

use rustix::event::{PollFd, PollFlags, Timespec};
use rustix::io::Errno;

use super::streams::{Role, Stream};
use super::Output;
use crate::child::fds::SLOT_STDOUT;
use crate::error::Error;
use crate::pidfd::{timespec, PID_POLL_FIRST, PID_POLL_MAX};
use crate::plan::Plan;
use crate::process::Running;
use crate::sys;

/// Blocks SIGPIPE in this thread while the loop writes, and on drop takes
/// off the SIGPIPE a failed write raised (see the module docs).
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
    let writes = streams
        .iter()
        .any(|s| s.fd.is_some() && matches!(s.role, Role::Write { .. }));
    let mut sigpipe = writes.then(SigpipeGuard::new);

    let start = Instant::now();
    let timeout_at = plan.timeout.and_then(|t| start.checked_add(t));
    let wait_delay = plan.buffered.wait_delay;
    // Once the child has exited: the end of the drain (`None`: no end, a
    // `wait_delay` past what an Instant holds).
    let mut exited = false;
    let mut drain_until: Option<Instant> = None;
    // Without a pollable pidfd: how long until the next look at the child.
    let mut pid_poll = PID_POLL_FIRST;

    const PIDFD: usize = usize::MAX;
    let mut spare: Vec<PollFd<'static>> = Vec::with_capacity(streams.len() + 1);
    let mut ready: Vec<(usize, PollFlags)> = Vec::with_capacity(streams.len() + 1);

    loop {
        let now = Instant::now();
        let open = streams.iter().any(|s| s.fd.is_some());
        if exited {
            if !open {
                break;
            }
            if drain_until.is_some_and(|until| now >= until) {
                // What is already in the pipes is kept; only what a
                // grandchild might still write is given up.
                for s in streams.iter_mut() {
                    if matches!(s.role, Role::Read { .. }) {
                        s.service()?;
                    }
                }
                break;
            }
        } else if timeout_at.is_some_and(|at| now >= at) {
            // What the pipes hold already is kept: the caller gets the
            // output up to the timeout with the error.
            for s in streams.iter_mut() {
                if matches!(s.role, Role::Read { .. }) {
                    s.service()?;
                }
            }
            let (stdout, stderr) = collect(streams);
            drop(sigpipe);
            running.abort()?;
            return Err(Error::Timeout {
                command: plan.line.to_string(),
                timeout: plan.timeout.unwrap_or_default(),
                stdout,
                stderr,
            });
        }
        let mut wake = if exited { drain_until } else { timeout_at };

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
        if !exited {
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
            let stream = &mut streams[i];
            let epipe = stream.service()?;
            if epipe {
                if let Some(g) = sigpipe.as_mut() {
                    g.saw_epipe = true;
                }
            }
        }
        if check_exit && running.try_wait()?.is_some() {
            exited = true;
            drain_until = Instant::now().checked_add(wait_delay);
        }
    }

    let status = running.wait()?.status();
    // Close what a grandchild may still hold, then restore the signal mask.
    let (stdout, stderr) = collect(streams);
    drop(sigpipe);
    Ok(Output {
        status,
        stdout,
        stderr,
    })
}

/// What the read streams captured, as (stdout, stderr); closes every stream.
fn collect(streams: Vec<Stream<'_>>) -> (Vec<u8>, Vec<u8>) {
    let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
    for s in streams {
        if let Role::Read { buf, slot } = s.role {
            if slot == SLOT_STDOUT {
                stdout = buf;
            } else {
                stderr = buf;
            }
        }
    }
    (stdout, stderr)
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
