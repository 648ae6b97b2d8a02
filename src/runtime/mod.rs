//! The async side (features `tokio` and `async-io`): which reactor a call
//! uses, file descriptors registered with it, and its timers. The rest of
//! the crate sees one [`Registered`] and one [`Sleep`] whatever the runtime.
//!
//! # Which runtime
//!
//! With one feature, that runtime. With both, tokio when the call is made
//! inside a tokio runtime ([`tokio::runtime::Handle::try_current`]),
//! async-io otherwise. async-io needs no context (its reactor is global);
//! tokio's needs the runtime's IO and time drivers
//! ([`enable_all`](tokio::runtime::Builder::enable_all)).
//!
//! # Readiness is a hint
//!
//! A registration only says that something may have changed: the caller
//! tries the system call first (a non-blocking read, write or `waitid`),
//! and only when it would block asks [`Registered::poll_ready`]; `Ready`
//! means "try again", never "it will work". With tokio the readiness is
//! cleared each time it is handed out, so a stale or spurious event (a
//! pidfd reported readable before its child exits) costs one more try and
//! never a busy loop.

use std::fmt;
use std::future::Future;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use crate::error::Error;

pub(crate) mod process;

/// The reactor a call runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reactor {
    /// The current tokio runtime's.
    #[cfg(feature = "tokio")]
    Tokio,
    /// async-io's global one.
    #[cfg(feature = "async-io")]
    AsyncIo,
}

/// The reactor for a call made now (see the module docs).
///
/// # Errors
///
/// With the `tokio` feature alone, outside a tokio runtime: `Error::Io`
/// (`ErrorKind::Other`) saying so, where tokio itself would panic.
pub(crate) fn current() -> Result<Reactor, Error> {
    #[cfg(feature = "tokio")]
    if tokio::runtime::Handle::try_current().is_ok() {
        return Ok(Reactor::Tokio);
    }
    #[cfg(feature = "async-io")]
    {
        Ok(Reactor::AsyncIo)
    }
    #[cfg(not(feature = "async-io"))]
    {
        Err(Error::Io(io::Error::other(
            "an async safespawn call needs a tokio runtime (none is running on this thread)",
        )))
    }
}

/// Which way a registration waits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dir {
    Read,
    Write,
}

/// A pidfd the registration only names: the [`ChildPid`](crate::pidfd::ChildPid)
/// owns it, and its owner drops the registration before the pidfd is closed
/// (see `Running`'s field order).
#[derive(Debug)]
pub(crate) struct FdRef(RawFd);

impl AsRawFd for FdRef {
    fn as_raw_fd(&self) -> RawFd {
        self.0
    }
}

impl AsFd for FdRef {
    fn as_fd(&self) -> BorrowedFd<'_> {
        // SAFETY: an `FdRef` is only made by `Registered::pidfd`, whose
        // caller keeps the fd open for as long as the `FdRef` lives.
        unsafe { BorrowedFd::borrow_raw(self.0) }
    }
}

/// An fd registered with a reactor, for one direction. Dropping it
/// deregisters the fd, then drops `T` (closing it if `T` owns it).
pub(crate) enum Registered<T: AsFd + AsRawFd> {
    #[cfg(feature = "tokio")]
    Tokio(tokio::io::unix::AsyncFd<T>),
    #[cfg(feature = "async-io")]
    AsyncIo(async_io::Async<T>),
}

impl<T: AsFd + AsRawFd> fmt::Debug for Registered<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Registered")
            .field(&self.get().as_raw_fd())
            .field(&self.reactor())
            .finish()
    }
}

impl Registered<std::os::fd::OwnedFd> {
    /// Registers an fd this registration then owns (a pipe made
    /// non-blocking by its creator).
    pub(crate) fn owned(
        reactor: Reactor,
        fd: std::os::fd::OwnedFd,
        dir: Dir,
    ) -> io::Result<Registered<std::os::fd::OwnedFd>> {
        // SAFETY: the registration owns the fd, so it stays open (and the
        // same open file description) until the registration is dropped.
        unsafe { Registered::new(reactor, fd, dir) }
    }
}

impl Registered<FdRef> {
    /// Registers a pidfd for readability (its child's exit), by number.
    ///
    /// # Safety
    ///
    /// `pidfd` stays open, the same open file description, until the
    /// result is dropped.
    pub(crate) unsafe fn pidfd(reactor: Reactor, pidfd: BorrowedFd<'_>) -> io::Result<Self> {
        // SAFETY: passed on to our caller.
        unsafe { Registered::new(reactor, FdRef(pidfd.as_raw_fd()), Dir::Read) }
    }
}

impl<T: AsFd + AsRawFd> Registered<T> {
    /// # Safety
    ///
    /// The fd `io` names stays open, the same open file description, until
    /// the result is dropped.
    unsafe fn new(reactor: Reactor, io: T, dir: Dir) -> io::Result<Registered<T>> {
        match reactor {
            #[cfg(feature = "tokio")]
            Reactor::Tokio => {
                use tokio::io::Interest;
                let interest = match dir {
                    Dir::Read => Interest::READABLE,
                    Dir::Write => Interest::WRITABLE,
                };
                // SAFETY: the fd stays open for the registration's life
                // (our caller's promise).
                let fd = unsafe { tokio::io::unix::AsyncFd::register_with_interest(io, interest) };
                fd.map(Registered::Tokio).map_err(io::Error::from)
            }
            #[cfg(feature = "async-io")]
            Reactor::AsyncIo => {
                // Not `Async::new`: it would set O_NONBLOCK on the open file
                // description, which a pidfd shares with every later
                // blocking `waitid` (a non-blocking pidfd makes a blocking
                // wait fail with EAGAIN). Pipes are non-blocking already.
                let _ = dir;
                async_io::Async::new_nonblocking(io).map(Registered::AsyncIo)
            }
        }
    }

    /// The registered fd.
    pub(crate) fn get(&self) -> &T {
        match self {
            #[cfg(feature = "tokio")]
            Registered::Tokio(fd) => fd.get_ref(),
            #[cfg(feature = "async-io")]
            Registered::AsyncIo(fd) => fd.get_ref(),
        }
    }

    /// Deregisters the fd and hands it back (to register it with another
    /// reactor).
    pub(crate) fn into_inner(self) -> io::Result<T> {
        match self {
            #[cfg(feature = "tokio")]
            Registered::Tokio(fd) => Ok(fd.into_inner()),
            #[cfg(feature = "async-io")]
            Registered::AsyncIo(fd) => fd.into_inner(),
        }
    }

    /// Which reactor it is registered with.
    pub(crate) fn reactor(&self) -> Reactor {
        match self {
            #[cfg(feature = "tokio")]
            Registered::Tokio(_) => Reactor::Tokio,
            #[cfg(feature = "async-io")]
            Registered::AsyncIo(_) => Reactor::AsyncIo,
        }
    }

    /// After a system call on the fd would have blocked: `Pending` (the
    /// task is woken at the next event), or `Ready` when an event came
    /// since the last time it said `Ready`, so the call is worth trying
    /// again. Never a promise that the call works (see the module docs).
    pub(crate) fn poll_ready(&self, dir: Dir, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self {
            #[cfg(feature = "tokio")]
            Registered::Tokio(fd) => {
                let ready = match dir {
                    Dir::Read => fd.poll_read_ready(cx),
                    Dir::Write => fd.poll_write_ready(cx),
                };
                match ready {
                    Poll::Ready(Ok(mut guard)) => {
                        // The event is used up by the try it causes; one
                        // that arrives after this point sets it again.
                        guard.clear_ready();
                        Poll::Ready(Ok(()))
                    }
                    Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
                    Poll::Pending => Poll::Pending,
                }
            }
            #[cfg(feature = "async-io")]
            Registered::AsyncIo(fd) => match dir {
                Dir::Read => fd.poll_readable(cx),
                Dir::Write => fd.poll_writable(cx),
            },
        }
    }
}

impl<T: AsFd + AsRawFd> AsFd for Registered<T> {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.get().as_fd()
    }
}

/// A timer of the reactor, re-armed in place.
pub(crate) enum Sleep {
    #[cfg(feature = "tokio")]
    Tokio {
        /// tokio's `Sleep` is `!Unpin`: one allocation per timer, which is
        /// then reset, never re-made.
        sleep: Pin<Box<tokio::time::Sleep>>,
        at: Instant,
    },
    #[cfg(feature = "async-io")]
    AsyncIo { timer: async_io::Timer, at: Instant },
}

impl fmt::Debug for Sleep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sleep").field("at", &self.at()).finish()
    }
}

impl Sleep {
    /// A timer that fires at `at`.
    pub(crate) fn new(reactor: Reactor, at: Instant) -> Sleep {
        match reactor {
            #[cfg(feature = "tokio")]
            Reactor::Tokio => Sleep::Tokio {
                sleep: Box::pin(tokio::time::sleep_until(at.into())),
                at,
            },
            #[cfg(feature = "async-io")]
            Reactor::AsyncIo => Sleep::AsyncIo {
                timer: async_io::Timer::at(at),
                at,
            },
        }
    }

    /// When it fires.
    pub(crate) fn at(&self) -> Instant {
        match self {
            #[cfg(feature = "tokio")]
            Sleep::Tokio { at, .. } => *at,
            #[cfg(feature = "async-io")]
            Sleep::AsyncIo { at, .. } => *at,
        }
    }

    /// Moves it to `at` (nothing when it is there already).
    pub(crate) fn reset(&mut self, new: Instant) {
        match self {
            #[cfg(feature = "tokio")]
            Sleep::Tokio { sleep, at } => {
                if *at != new {
                    sleep.as_mut().reset(new.into());
                    *at = new;
                }
            }
            #[cfg(feature = "async-io")]
            Sleep::AsyncIo { timer, at } => {
                if *at != new {
                    timer.set_at(new);
                    *at = new;
                }
            }
        }
    }

    /// `Ready` once the time has come.
    pub(crate) fn poll_fired(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        match self {
            #[cfg(feature = "tokio")]
            Sleep::Tokio { sleep, .. } => sleep.as_mut().poll(cx),
            #[cfg(feature = "async-io")]
            Sleep::AsyncIo { timer, .. } => Pin::new(timer).poll(cx).map(|_| ()),
        }
    }

    /// The timer in `slot` set to `at`, made on first use (and made anew
    /// for another reactor).
    pub(crate) fn arm(slot: &mut Option<Sleep>, reactor: Reactor, at: Instant) -> &mut Sleep {
        if slot.as_ref().is_some_and(|s| s.reactor() != reactor) {
            *slot = None;
        }
        let sleep = slot.get_or_insert_with(|| Sleep::new(reactor, at));
        sleep.reset(at);
        sleep
    }

    /// Which reactor's timer it is.
    pub(crate) fn reactor(&self) -> Reactor {
        match self {
            #[cfg(feature = "tokio")]
            Sleep::Tokio { .. } => Reactor::Tokio,
            #[cfg(feature = "async-io")]
            Sleep::AsyncIo { .. } => Reactor::AsyncIo,
        }
    }
}
