//! Send buffers of `Direct` and `Daemon` children (`Buffered` mode writes
//! its own with the run's other streams): a pipe per buffer made at each
//! spawn, the child's read end handed to it as a slot fd, the parent's
//! write end written as far as it goes right after the spawn, and the rest
//! written while the caller waits.
//!
//! No allocation: up to [`INLINE`] buffers the per-spawn ends, the child's
//! slot list and the poll set live in arrays; only the buffers beyond
//! spill into vectors. The bytes are written straight from the plan's
//! [`Secret`](crate::secret::Secret)s, which a [`SendWriter`] keeps alive
//! (an `Arc` of the plan) only while something is left to write.
//!
//! SIGPIPE is blocked around every write, as in the buffered loop
//! (`buffered::poll::SigpipeGuard`): a child that stopped reading is
//! `EPIPE`, which ends that buffer's writing and is not an error.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::sync::Arc;
use std::time::Instant;

use rustix::event::{PollFd, PollFlags};
use rustix::io::Errno;
use rustix::pipe::PipeFlags;

use crate::buffered::poll::{earliest, poll_timeout, SigpipeGuard};
use crate::buffered::streams::{write_some, Serviced};
use crate::child::fds::SLOT_SEND_BUFFERS;
use crate::error::Error;
use crate::pidfd::{ChildPid, PID_POLL_FIRST, PID_POLL_MAX};
use crate::plan::Plan;
use crate::sys;

/// How many send buffers a spawn handles without allocating.
pub(crate) const INLINE: usize = 4;

/// The largest pipe asked for: the default `/proc/sys/fs/pipe-max-size`.
/// A privileged process may go past it, but a pipe's buffer is kernel
/// memory pinned until the child reads it: what does not fit is written
/// while waiting instead.
const PIPE_MAX: usize = 1 << 20;

/// The default pipe capacity (pipe(7)): no `F_SETPIPE_SZ` below it.
const PIPE_DEFAULT: usize = 64 * 1024;

/// Up to [`INLINE`] items in place, the rest on the heap (a `Vec` that
/// allocates only when pushed to).
struct Small<T> {
    inline: [Option<T>; INLINE],
    heap: Vec<T>,
}

impl<T> Small<T> {
    const fn new() -> Small<T> {
        Small {
            inline: [const { None }; INLINE],
            heap: Vec::new(),
        }
    }

    fn push(&mut self, item: T) {
        match self.inline.iter_mut().find(|s| s.is_none()) {
            Some(slot) => *slot = Some(item),
            None => self.heap.push(item),
        }
    }

    fn is_empty(&self) -> bool {
        self.inline.iter().all(Option::is_none) && self.heap.is_empty()
    }

    fn len(&self) -> usize {
        self.inline.iter().flatten().count() + self.heap.len()
    }

    fn iter(&self) -> impl Iterator<Item = &T> + Clone {
        self.inline.iter().flatten().chain(self.heap.iter())
    }

    /// Keeps the items for which `keep` says `Ok(true)`; stops at the
    /// first error (the items not yet seen are kept).
    fn retain(&mut self, mut keep: impl FnMut(&mut T) -> Result<bool, Error>) -> Result<(), Error> {
        for slot in self.inline.iter_mut() {
            if let Some(item) = slot {
                if !keep(item)? {
                    *slot = None;
                }
            }
        }
        let mut err = None;
        self.heap.retain_mut(|item| {
            if err.is_some() {
                return true;
            }
            keep(item).unwrap_or_else(|e| {
                err = Some(e);
                true
            })
        });
        err.map_or(Ok(()), Err)
    }

    fn clear(&mut self) {
        self.inline = [const { None }; INLINE];
        self.heap = Vec::new();
    }
}

/// A write end with bytes left to write.
struct Pending {
    /// The registration with a reactor (`wait_async`), once made: it then
    /// owns the fd, and `fd` is `None`. Boxed: registering allocates
    /// anyway, and a `Running` (which holds [`INLINE`] of these in place)
    /// stays small for the synchronous paths.
    #[cfg(any(feature = "tokio", feature = "async-io"))]
    registered: Option<Box<crate::runtime::Registered<OwnedFd>>>,
    fd: Option<OwnedFd>,
    /// Which of the plan's send buffers.
    buffer: usize,
    /// How much of it is written.
    done: usize,
}

impl Pending {
    /// The write end: `None` only after a failed re-registration (which
    /// returned its error); the buffer is then given up.
    fn fd(&self) -> Option<BorrowedFd<'_>> {
        #[cfg(any(feature = "tokio", feature = "async-io"))]
        if let Some(r) = &self.registered {
            return Some(r.as_fd());
        }
        self.fd.as_ref().map(AsFd::as_fd)
    }

    /// Writes what the pipe takes; `Ok(false)` when this buffer is done
    /// (all written, or the reader gone: noted in `guard`).
    fn write(&mut self, plan: &Plan, guard: &mut SigpipeGuard) -> Result<bool, Error> {
        // `buffer` indexes the plan it was made from: both are always there.
        let (Some((child_fd, data)), Some(fd)) = (plan.send_buffers.get(self.buffer), self.fd())
        else {
            return Ok(false);
        };
        let child_fd = *child_fd;
        let mut done = self.done;
        let written = write_some(fd, data, &mut done);
        self.done = done;
        match written {
            Ok(Serviced::Blocked | Serviced::More) => Ok(true),
            Ok(Serviced::Closed) => Ok(false),
            Ok(Serviced::Epipe) => {
                guard.saw_epipe = true;
                Ok(false)
            }
            Err(e) => Err(send_error(child_fd, e)),
        }
    }
}

/// The error of a failed write, naming the child fd.
fn send_error(child_fd: RawFd, e: Error) -> Error {
    match e {
        Error::Io(io) => Error::Io(std::io::Error::new(
            io.kind(),
            format!("writing the send buffer of child fd {child_fd}: {io}"),
        )),
        other => other,
    }
}

/// The fds a spawn hands to the child: the three stdio slots, then one per
/// send buffer. In place up to [`INLINE`] buffers.
pub(crate) enum Slots {
    Inline([RawFd; SLOT_SEND_BUFFERS + INLINE], usize),
    Heap(Vec<RawFd>),
}

impl Slots {
    pub(crate) fn as_slice(&self) -> &[RawFd] {
        match self {
            Slots::Inline(fds, n) => &fds[..*n],
            Slots::Heap(fds) => fds,
        }
    }
}

/// One spawn's send-buffer pipes, both ends, until the child has its
/// copies.
pub(crate) struct SendPipes {
    /// The read ends, buffer `i` at `i`; closed here once the child has
    /// them (so that a child gone is `EPIPE` for the writes).
    child: Small<OwnedFd>,
    parent: Small<Pending>,
}

impl SendPipes {
    /// A pipe per send buffer of `plan`; nothing (and no system call)
    /// without any.
    pub(crate) fn new(plan: &Plan) -> Result<SendPipes, Error> {
        let mut pipes = SendPipes {
            child: Small::new(),
            parent: Small::new(),
        };
        for (i, (_, data)) in plan.send_buffers.iter().enumerate() {
            let (read, write) = sys::fd::pipe(PipeFlags::empty())?;
            if data.len() > PIPE_DEFAULT {
                // Best effort (see pipe(7)): EPERM past pipe-max-size
                // without privilege, EBUSY past the user's pipe pages;
                // the writes that follow the spawn take care of the rest.
                let _ = rustix::pipe::fcntl_setpipe_size(&write, data.len().min(PIPE_MAX));
            }
            // Only the parent's end: the child's blocks as usual.
            rustix::io::ioctl_fionbio(&write, true)
                .map_err(|e| Error::io("making a send buffer's pipe non-blocking", e))?;
            pipes.child.push(read);
            if !data.is_empty() {
                pipes.parent.push(Pending {
                    #[cfg(any(feature = "tokio", feature = "async-io"))]
                    registered: None,
                    fd: Some(write),
                    buffer: i,
                    done: 0,
                });
            }
            // An empty buffer's write end is closed here: end-of-file.
        }
        Ok(pipes)
    }

    /// The slot fds of the spawn: `stdio`, then the read ends.
    pub(crate) fn slots(&self, stdio: [RawFd; 3]) -> Slots {
        let n = self.child.len();
        if n <= INLINE {
            let mut fds = [-1; SLOT_SEND_BUFFERS + INLINE];
            fds[..3].copy_from_slice(&stdio);
            for (slot, fd) in fds[SLOT_SEND_BUFFERS..].iter_mut().zip(self.child.iter()) {
                *slot = fd.as_raw_fd();
            }
            Slots::Inline(fds, SLOT_SEND_BUFFERS + n)
        } else {
            let mut fds = Vec::with_capacity(SLOT_SEND_BUFFERS + n);
            fds.extend_from_slice(&stdio);
            fds.extend(self.child.iter().map(AsRawFd::as_raw_fd));
            Slots::Heap(fds)
        }
    }

    /// After the spawn (the child has its copies): closes the read ends
    /// and writes what the pipes take. A buffer that went in whole is
    /// closed now; the rest is the writer's.
    pub(crate) fn start(self, plan: &Arc<Plan>) -> Result<SendWriter, Error> {
        let SendPipes { child, parent } = self;
        drop(child);
        let mut writer = SendWriter {
            plan: None,
            pending: parent,
        };
        if !writer.pending.is_empty() {
            writer.plan = Some(plan.clone());
            writer.write_now()?;
        }
        Ok(writer)
    }
}

/// What [`SendWriter::drive`] came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Until {
    /// Every buffer is written (or its reader gone).
    Written,
    /// The child exited (and is reaped); what was left is given up.
    Exited,
    /// The deadline came first; what is left stays pending.
    Deadline,
}

/// The write ends of one child with bytes left, and the plan whose buffers
/// they write (kept alive only while something is pending).
pub(crate) struct SendWriter {
    plan: Option<Arc<Plan>>,
    pending: Small<Pending>,
}

impl std::fmt::Debug for SendWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SendWriter")
            .field("pending", &self.pending.len())
            .finish()
    }
}

impl SendWriter {
    /// Nothing to write.
    pub(crate) const fn none() -> SendWriter {
        SendWriter {
            plan: None,
            pending: Small::new(),
        }
    }

    /// Whether nothing is left to write.
    pub(crate) fn is_done(&self) -> bool {
        self.plan.is_none()
    }

    /// Closes every write end (the child sees end-of-file) and lets go of
    /// the plan.
    pub(crate) fn close(&mut self) {
        self.pending.clear();
        self.plan = None;
    }

    /// Writes what the pipes take now, without waiting.
    pub(crate) fn write_now(&mut self) -> Result<(), Error> {
        let Some(plan) = self.plan.clone() else {
            return Ok(());
        };
        let mut guard = SigpipeGuard::new();
        self.write_ready(&plan, &mut guard)
    }

    /// One non-blocking round of writes; closes what is done.
    fn write_ready(&mut self, plan: &Plan, guard: &mut SigpipeGuard) -> Result<(), Error> {
        self.pending.retain(|p| p.write(plan, guard))?;
        if self.pending.is_empty() {
            self.plan = None;
        }
        Ok(())
    }

    /// Writes until every buffer is written, the `child` (when given) has
    /// exited (then reaped, the rest given up), or `deadline` (`None`:
    /// none) has passed. Polls the write ends with the child's pidfd;
    /// where that cannot be polled (Linux < 5.3) it also wakes every few
    /// milliseconds (1 ms, doubling up to 10 ms) to ask the child. Without
    /// a child (a daemon, not ours to wait for), a reader gone is seen as
    /// `EPIPE` on its pipe.
    pub(crate) fn drive(
        &mut self,
        mut child: Option<&mut ChildPid>,
        deadline: Option<Instant>,
    ) -> Result<Until, Error> {
        let Some(plan) = self.plan.clone() else {
            return Ok(Until::Written);
        };
        let mut guard = SigpipeGuard::new();
        let mut pid_poll = PID_POLL_FIRST;
        loop {
            self.write_ready(&plan, &mut guard)?;
            if self.is_done() {
                return Ok(Until::Written);
            }
            let now = Instant::now();
            if deadline.is_some_and(|d| now >= d) {
                return Ok(Until::Deadline);
            }
            let mut wake = deadline;
            let pidfd = child.as_deref().and_then(ChildPid::pollable_pidfd);
            let by_pid = child.is_some() && pidfd.is_none();
            if by_pid {
                wake = earliest(wake, now.checked_add(pid_poll));
                pid_poll = pid_poll.saturating_mul(2).min(PID_POLL_MAX);
            }
            let exit_seen = self.poll(pidfd, poll_timeout(wake, now))?;
            if exit_seen || by_pid {
                if let Some(child) = child.as_deref_mut() {
                    let exited = child
                        .try_wait()
                        .map_err(|e| Error::io("waiting for the child", e))?;
                    if exited.is_some() {
                        self.close();
                        return Ok(Until::Exited);
                    }
                }
            }
        }
    }

    /// One `poll` of the write ends (and `pidfd`); whether the pidfd was
    /// reported readable. `EINTR` is a wake-up like any other.
    fn poll(
        &self,
        pidfd: Option<BorrowedFd<'_>>,
        timeout: Option<rustix::event::Timespec>,
    ) -> Result<bool, Error> {
        let all = pidfd.map(|fd| (fd, PollFlags::IN)).into_iter().chain(
            self.pending
                .iter()
                .filter_map(Pending::fd)
                .map(|fd| (fd, PollFlags::OUT)),
        );
        let n = all.clone().count();
        let Some(first) = all.clone().next() else {
            return Ok(false);
        };
        let polled = if n <= INLINE + 1 {
            // In place: only the first `n` entries are polled (the rest
            // repeat the first only because a `PollFd` must name an fd).
            let mut set: [PollFd<'_>; INLINE + 1] =
                std::array::from_fn(|_| PollFd::from_borrowed_fd(first.0, first.1));
            for (entry, (fd, events)) in set.iter_mut().zip(all) {
                *entry = PollFd::from_borrowed_fd(fd, events);
            }
            let r = rustix::event::poll(&mut set[..n], timeout.as_ref());
            r.map(|_| pidfd.is_some() && !set[0].revents().is_empty())
        } else {
            // More than `INLINE` buffers pending: the documented
            // allocation.
            let mut set: Vec<PollFd<'_>> = all
                .map(|(fd, events)| PollFd::from_borrowed_fd(fd, events))
                .collect();
            let r = rustix::event::poll(&mut set, timeout.as_ref());
            r.map(|_| pidfd.is_some() && !set[0].revents().is_empty())
        };
        match polled {
            Ok(seen) => Ok(seen),
            Err(Errno::INTR) => Ok(false),
            Err(e) => Err(Error::io("polling the send buffers' pipes", e)),
        }
    }
}

#[cfg(any(feature = "tokio", feature = "async-io"))]
mod reactor {
    //! The same writes on the runtime's reactor, for `wait_async`.

    use std::task::{Context, Poll};

    use super::{Pending, SendWriter};
    use crate::buffered::poll::SigpipeGuard;
    use crate::error::Error;
    use crate::runtime::{self, Dir, Reactor, Registered};

    /// Tries per write end per poll: each follows a readiness.
    const TRIES: usize = 3;

    impl SendWriter {
        /// Writes what the pipes take and registers the task for the
        /// write ends that are full: `Ready` once everything is written,
        /// `Pending` otherwise. Never blocks.
        pub(crate) fn poll_write(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
            let Some(plan) = self.plan.clone() else {
                return Poll::Ready(Ok(()));
            };
            let reactor = match runtime::current() {
                Ok(r) => r,
                Err(e) => return Poll::Ready(Err(e)),
            };
            // Blocked for this poll's writes only: the thread that polls
            // may change between polls.
            let mut guard = SigpipeGuard::new();
            let mut more = false;
            let result = self.pending.retain(|p| {
                for _ in 0..TRIES {
                    if !p.write(&plan, &mut guard)? {
                        return Ok(false);
                    }
                    // Full: wait for room.
                    register(p, reactor)?;
                    let Some(r) = &p.registered else {
                        return Ok(true);
                    };
                    match r.poll_ready(Dir::Write, cx) {
                        Poll::Pending => return Ok(true),
                        Poll::Ready(Ok(())) => {}
                        Poll::Ready(Err(e)) => {
                            return Err(Error::Io(std::io::Error::new(
                                e.kind(),
                                format!("waiting for a send buffer's pipe: {e}"),
                            )))
                        }
                    }
                }
                // Readiness after every try: come back after the others.
                more = true;
                Ok(true)
            });
            drop(guard);
            if let Err(e) = result {
                return Poll::Ready(Err(e));
            }
            if self.pending.is_empty() {
                self.plan = None;
                return Poll::Ready(Ok(()));
            }
            if more {
                cx.waker().wake_by_ref();
            }
            Poll::Pending
        }
    }

    /// Registers `p`'s fd with `reactor` (once; again if it was registered
    /// with another, whose runtime may be gone).
    fn register(p: &mut Pending, reactor: Reactor) -> Result<(), Error> {
        if p.registered
            .as_ref()
            .is_some_and(|r| r.reactor() == reactor)
        {
            return Ok(());
        }
        let fd = match (p.registered.take(), p.fd.take()) {
            (Some(r), _) => (*r).into_inner(),
            (None, Some(fd)) => Ok(fd),
            (None, None) => return Err(Error::io("a send buffer's pipe", rustix::io::Errno::BADF)),
        };
        let registered = fd.and_then(|fd| Registered::owned(reactor, fd, Dir::Write));
        match registered {
            Ok(r) => {
                p.registered = Some(Box::new(r));
                Ok(())
            }
            Err(e) => Err(Error::Io(std::io::Error::new(
                e.kind(),
                format!("registering a send buffer's pipe with the reactor: {e}"),
            ))),
        }
    }
}
