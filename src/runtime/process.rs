//! Waiting for a child through the reactor: [`Running::wait_async`],
//! [`Running::abort_async`], and the async run methods of
//! `Prepared<Direct>` and `Command<Direct>`.

use std::future::poll_fn;
use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use rustix::process::Signal;

use super::{Dir, FdRef, Reactor, Registered, Sleep};
use crate::error::Error;
use crate::mode::Direct;
use crate::pidfd::{ChildPid, ABORT_GRACE, PID_POLL_FIRST, PID_POLL_MAX};
use crate::prepared::Prepared;
use crate::process::{Finished, Running};
use crate::Command;

/// What a `Running` keeps between polls of its exit: the pidfd's
/// registration (made when a second look still finds the child running,
/// kept until the `Running` is dropped: registering the same fd twice in
/// one epoll set is `EEXIST`), or, where the pidfd cannot be polled, the
/// backoff timer.
/// Everything lives here and not in a future, so a wait that is dropped
/// half-way loses nothing.
#[derive(Debug)]
pub(crate) struct Waiter {
    /// Names the pidfd the `Running`'s `ChildPid` owns; the `Running`
    /// declares this field before the child, so it is dropped (and the fd
    /// deregistered) before the pidfd is closed.
    pidfd: Option<Registered<FdRef>>,
    /// Without a pollable pidfd: the next look at the child.
    backoff: Option<Sleep>,
    /// Whether `backoff` is set for a look not yet taken.
    armed: bool,
    /// The next sleep of the backoff (1 ms, doubling up to 10 ms).
    step: Duration,
    /// Whether the child was found running once already (see `poll`).
    looked_twice: bool,
}

impl Waiter {
    pub(crate) fn new() -> Waiter {
        Waiter {
            pidfd: None,
            backoff: None,
            armed: false,
            step: PID_POLL_FIRST,
            looked_twice: false,
        }
    }

    /// Polls for `child`'s exit, reaping it once it has: a non-blocking
    /// `waitid` first, and only when the child still runs a wait for the
    /// pidfd's readiness (a hint: the next poll asks `waitid` again) or, with
    /// no pollable pidfd, for the backoff timer.
    pub(crate) fn poll(
        &mut self,
        child: &mut ChildPid,
        cx: &mut Context<'_>,
    ) -> Poll<Result<ExitStatus, Error>> {
        if child.reaped() {
            // The status kept: no reactor needed.
            return Poll::Ready(child.try_wait().map_or_else(
                |e| Err(Error::io("waiting for the child", e)),
                |s| Ok(s.unwrap_or_else(|| ExitStatus::from_raw(0))),
            ));
        }
        let reactor = match super::current() {
            Ok(r) => r,
            Err(e) => return Poll::Ready(Err(e)),
        };
        if self.pidfd.as_ref().is_some_and(|r| r.reactor() != reactor) {
            self.pidfd = None;
        }
        if self
            .backoff
            .as_ref()
            .is_some_and(|t| t.reactor() != reactor)
        {
            self.backoff = None;
            self.armed = false;
        }
        // Whether this poll has dropped a failing registration already.
        let mut renewed = false;
        loop {
            // A reason to ask the kernel: once registered (a `waitid` found
            // the child running before), an event seen by the reactor; its
            // readiness is cleared as it is handed out and `waitid` follows
            // in this same poll, so a cancelled wait cannot lose it. Without
            // a pollable pidfd, the backoff's timer.
            if !child.reaped() {
                if let Some(registered) = &self.pidfd {
                    match registered.poll_ready(Dir::Read, cx) {
                        Poll::Pending => return Poll::Pending,
                        Poll::Ready(Ok(())) => {}
                        // The reactor it was registered with is gone (a
                        // tokio runtime shut down, the `Running` now polled
                        // in another): register anew, once.
                        Poll::Ready(Err(_)) if !renewed => {
                            renewed = true;
                            self.pidfd = None;
                        }
                        Poll::Ready(Err(e)) => return Poll::Ready(Err(pidfd_error(e))),
                    }
                } else if self.armed && self.poll_backoff(reactor, cx).is_pending() {
                    return Poll::Pending;
                }
            }
            match child.try_wait() {
                Ok(Some(status)) => {
                    // Nothing more to wait for: deregister now.
                    self.pidfd = None;
                    self.backoff = None;
                    self.armed = false;
                    return Poll::Ready(Ok(status));
                }
                Ok(None) => {}
                Err(e) => return Poll::Ready(Err(Error::io("waiting for the child", e))),
            }
            if self.pidfd.is_some() {
                continue;
            }
            match child.pollable_pidfd() {
                // Still running at the first look: let the runtime run its
                // other tasks once and look again before registering. Most
                // short-lived children have exited by then, and one more
                // `waitid` is cheaper than a registration, its event and
                // its removal (two `epoll_ctl` and an `epoll_wait` wake-up).
                Some(_) if !self.looked_twice => {
                    self.looked_twice = true;
                    cx.waker().wake_by_ref();
                    return Poll::Pending;
                }
                Some(pidfd) => {
                    // SAFETY: the `ChildPid` owns the pidfd and closes it
                    // only when dropped; the registration lives in the
                    // `Waiter` of the same `Running`, which is declared
                    // before the child and so dropped first (`detach` moves
                    // the child out and drops the `Waiter` while the
                    // `Detached` still holds the pidfd).
                    match unsafe { Registered::pidfd(reactor, pidfd) } {
                        // A new registration reports an exit that came
                        // before it: waiting for its first event loses
                        // nothing.
                        Ok(r) => self.pidfd = Some(r),
                        Err(e) => return Poll::Ready(Err(register_error(e))),
                    }
                }
                // Sleep, then look again.
                None => {
                    if self.poll_backoff(reactor, cx).is_pending() {
                        return Poll::Pending;
                    }
                }
            }
        }
    }

    /// The backoff of a child that cannot be watched: `Ready` when it is
    /// time to ask `waitid` again.
    fn poll_backoff(&mut self, reactor: Reactor, cx: &mut Context<'_>) -> Poll<()> {
        if !self.armed {
            let at = Instant::now()
                .checked_add(self.step)
                .unwrap_or_else(Instant::now);
            Sleep::arm(&mut self.backoff, reactor, at);
            self.armed = true;
        }
        let Some(timer) = self.backoff.as_mut() else {
            return Poll::Ready(());
        };
        match timer.poll_fired(cx) {
            Poll::Ready(()) => {
                self.armed = false;
                self.step = self.step.saturating_mul(2).min(PID_POLL_MAX);
                Poll::Ready(())
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

fn pidfd_error(e: std::io::Error) -> Error {
    Error::Io(std::io::Error::new(
        e.kind(),
        format!("waiting for the child's pidfd: {e}"),
    ))
}

fn register_error(e: std::io::Error) -> Error {
    Error::Io(std::io::Error::new(
        e.kind(),
        format!("registering the child's pidfd with the reactor: {e}"),
    ))
}

impl Running {
    /// Waits for the child to exit and reaps it, without blocking the
    /// thread: the pidfd is registered with the runtime's reactor (once, when
    /// the child is still running at a second look, taken after the
    /// runtime's other tasks have had a turn; the registration is kept in
    /// the `Running`), and its readiness is taken as a hint: each wake-up asks
    /// `waitid(P_PIDFD, WEXITED | WNOHANG)`, and a child that has not exited
    /// yet is waited for again. No thread, no `SIGCHLD` handler, no global
    /// queue. A piped stdin not taken is closed first, as by
    /// [`wait`](Running::wait). Pending
    /// [send buffers](crate::Command::send_buffer) are written meanwhile,
    /// their pipes registered with the reactor for writability (never a
    /// blocking write), until the child has read them, closed its end or
    /// exited; a cancelled wait keeps what is left for the next one.
    ///
    /// Unlike `wait` it borrows the child, so it can be raced against a
    /// timer or a shutdown signal: it is **cancel-safe**. A `wait_async`
    /// dropped before it finishes loses nothing; the child can be waited
    /// again (sync or async), aborted, or dropped (killed and reaped). Once
    /// it has returned a status, it returns the same one again.
    ///
    /// Where the pidfd cannot be polled (Linux before 5.3, a seccomp filter
    /// refusing `pidfd_open`, no pidfd at all) it sleeps on the runtime's
    /// timer between non-blocking waits: 1 ms, doubling up to 10 ms, as
    /// [`wait_timeout`](Running::wait_timeout) does.
    ///
    /// The runtime: with the `tokio` feature, the tokio runtime the call is
    /// polled in (it needs its IO and time drivers: `enable_all`); with
    /// `async-io`, async-io's reactor; with both, tokio when polled inside a
    /// tokio runtime, async-io otherwise.
    ///
    /// # Errors
    ///
    /// * [`Error::Io`] when `waitid` fails, as for [`wait`](Running::wait)
    ///   (`ECHILD` when this process ignores `SIGCHLD`);
    /// * [`Error::Io`] when the reactor refuses the pidfd, or (with the
    ///   `tokio` feature only) when no tokio runtime is running.
    ///
    /// # References
    ///
    /// [`waitid(2)`](https://man7.org/linux/man-pages/man2/waitid.2.html) with
    /// `P_PIDFD` and `WNOHANG` (Linux 5.4), the pidfd in the reactor's
    /// [`epoll(7)`](https://man7.org/linux/man-pages/man7/epoll.7.html) set
    /// (readable at exit from Linux 5.3); without them as
    /// [`wait_timeout`](Running::wait_timeout).
    ///
    /// ```
    /// # #[cfg(feature = "tokio")]
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// use std::time::Duration;
    /// let mut child = safespawn::Command::new("sleep").arg("0.2").spawn()?;
    /// // Cancel-safe: a wait cut short by a timeout can be taken up again.
    /// let early = tokio::time::timeout(Duration::from_millis(10), child.wait_async()).await;
    /// assert!(early.is_err());
    /// assert!(child.wait_async().await?.success());
    /// # Ok::<(), safespawn::Error>(())
    /// # }).unwrap();
    /// ```
    pub async fn wait_async(&mut self) -> Result<ExitStatus, Error> {
        self.stdin = None;
        poll_fn(|cx| self.poll_exit(cx)).await
    }

    /// One poll of the child's exit (see [`Waiter::poll`]), writing the
    /// pending send buffers meanwhile; the exit closes what is left of
    /// them.
    pub(crate) fn poll_exit(&mut self, cx: &mut Context<'_>) -> Poll<Result<ExitStatus, Error>> {
        let Running {
            waiter,
            child,
            sends,
            ..
        } = self;
        if let Poll::Ready(Err(e)) = sends.poll_write(cx) {
            return Poll::Ready(Err(e));
        }
        let exit = waiter.poll(child, cx);
        if exit.is_ready() {
            sends.close();
        }
        exit
    }

    /// [`abort`](Running::abort) without blocking the thread: SIGTERM, a
    /// grace of 100 ms on the runtime's timer (ended early by the child's
    /// exit), SIGKILL, and the reap awaited. The signals are sent whatever
    /// happens.
    ///
    /// Dropping a `Running` inside a runtime also kills and reaps, but
    /// synchronously, on the runtime's thread: a child that ignores SIGTERM
    /// holds that thread for the 100 ms grace, and one in uninterruptible
    /// sleep (state `D`: a hung NFS read, a device) for as long as it stays
    /// there, since SIGKILL takes effect only when it wakes. Where that
    /// matters, end children with `abort_async` (or `wait_async`) before
    /// letting go of them. If this future is itself dropped before it
    /// finishes, the `Running` inside is dropped: the synchronous
    /// kill-and-reap.
    ///
    /// # Errors
    ///
    /// As [`abort`](Running::abort), and [`Error::Io`] as for
    /// [`wait_async`](Running::wait_async).
    ///
    /// # References
    ///
    /// As [`abort`](Running::abort) and [`wait_async`](Running::wait_async).
    ///
    /// ```
    /// # #[cfg(feature = "tokio")]
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let child = safespawn::Command::new("sleep").arg("5").spawn()?;
    /// assert_eq!(child.abort_async().await?.signal(), Some(15));
    /// # Ok::<(), safespawn::Error>(())
    /// # }).unwrap();
    /// ```
    pub async fn abort_async(mut self) -> Result<Finished, Error> {
        self.sends.close();
        if !self.child.reaped() {
            let _ = self.child.signal(Signal::TERM);
            let exited = self
                .wait_until_async(Instant::now().checked_add(ABORT_GRACE))
                .await;
            if !matches!(exited, Ok(Some(_))) {
                // A failed wait is no reason to leave it running.
                let _ = self.child.signal(Signal::KILL);
            }
        }
        let status = poll_fn(|cx| self.poll_exit(cx))
            .await
            .map_err(|e| match e {
                Error::Io(io) => Error::Io(std::io::Error::new(
                    io.kind(),
                    format!("aborting the child: {io}"),
                )),
                other => other,
            })?;
        Ok(Finished::new(status, self.line.clone()))
    }

    /// Waits for the exit until `deadline` (`None`: no deadline); `Ok(None)`
    /// when the time came first.
    pub(crate) async fn wait_until_async(
        &mut self,
        deadline: Option<Instant>,
    ) -> Result<Option<ExitStatus>, Error> {
        let Some(deadline) = deadline else {
            return poll_fn(|cx| self.poll_exit(cx)).await.map(Some);
        };
        let reactor = super::current()?;
        let mut timer = Sleep::new(reactor, deadline);
        poll_fn(|cx| {
            if let Poll::Ready(r) = self.poll_exit(cx) {
                return Poll::Ready(r.map(Some));
            }
            timer.poll_fired(cx).map(|()| Ok(None))
        })
        .await
    }
}

/// Waits for `child` without blocking, aborting it past `timeout`.
async fn wait_with_timeout_async(
    mut child: Running,
    timeout: Option<Duration>,
    line: &str,
) -> Result<Finished, Error> {
    let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
    if let Some(status) = child.wait_until_async(deadline).await? {
        return Ok(Finished::new(status, child.line.clone()));
    }
    child.abort_async().await?;
    Err(Error::Timeout {
        command: line.to_string(),
        timeout: timeout.unwrap_or_default(),
        stdout: Vec::new(),
        stderr: Vec::new(),
    })
}

impl Prepared<Direct> {
    /// [`status`](Prepared::status), awaiting the child through the reactor
    /// ([`Running::wait_async`]): spawns (which, like
    /// [`spawn`](Prepared::spawn), returns once the child has exec'd), closes
    /// the pipes, and waits; past the command's
    /// [`timeout`](crate::Command::timeout) the child is aborted
    /// ([`Running::abort_async`]) and the call returns [`Error::Timeout`].
    ///
    /// # Errors
    ///
    /// As [`status`](Prepared::status), and [`Error::Io`] as for
    /// [`wait_async`](Running::wait_async) (with the `tokio` feature only,
    /// outside a tokio runtime, before anything is spawned).
    ///
    /// # References
    ///
    /// As [`spawn`](Prepared::spawn) and [`Running::wait_async`].
    ///
    /// ```
    /// # #[cfg(feature = "tokio")]
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let p = safespawn::Command::new("false").build()?;
    /// assert_eq!(p.status_async().await?.code(), Some(1));
    /// # Ok::<(), safespawn::Error>(())
    /// # }).unwrap();
    /// ```
    pub async fn status_async(&self) -> Result<ExitStatus, Error> {
        Ok(self.wait_timed_async().await?.status())
    }

    /// [`run`](Prepared::run), awaiting the child through the reactor: a
    /// non-zero exit or a death by signal is [`Error::Exit`].
    ///
    /// # Errors
    ///
    /// As [`run`](Prepared::run), and as
    /// [`status_async`](Prepared::status_async).
    ///
    /// # References
    ///
    /// As [`status_async`](Prepared::status_async).
    ///
    /// ```
    /// # #[cfg(feature = "tokio")]
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// use std::time::Duration;
    /// let p = safespawn::Command::new("sleep").arg("10")
    ///     .timeout(Duration::from_millis(50)).build()?;
    /// let err = p.run_async().await.unwrap_err();
    /// assert!(matches!(err, safespawn::Error::Timeout { .. }));
    /// # Ok::<(), safespawn::Error>(())
    /// # }).unwrap();
    /// ```
    pub async fn run_async(&self) -> Result<Finished, Error> {
        let finished = self.wait_timed_async().await?;
        finished.check()?;
        Ok(finished)
    }

    async fn wait_timed_async(&self) -> Result<Finished, Error> {
        if let Some(outcome) = crate::dry_run::intercept(&self.plan) {
            return Ok(Finished::new(outcome.status, self.plan.line.clone()));
        }
        // Outside any runtime (tokio alone): fail before there is a child.
        super::current()?;
        let mut child = self.spawn()?;
        child.close_pipes();
        wait_with_timeout_async(child, self.plan.timeout, &self.plan.line).await
    }
}

impl Command<Direct> {
    /// `build()?` then [`Prepared::status_async`].
    ///
    /// # Errors
    ///
    /// As [`build`](Command::build) and [`Prepared::status_async`].
    ///
    /// # References
    ///
    /// As [`Prepared::status_async`].
    ///
    /// ```
    /// # #[cfg(feature = "tokio")]
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let status = safespawn::Command::new("sh").args(["-c", "exit 3"]).status_async().await?;
    /// assert_eq!(status.code(), Some(3));
    /// # Ok::<(), safespawn::Error>(())
    /// # }).unwrap();
    /// ```
    pub async fn status_async(self) -> Result<ExitStatus, Error> {
        let prepared = self.build()?;
        prepared.status_async().await
    }

    /// `build()?` then [`Prepared::run_async`].
    ///
    /// # Errors
    ///
    /// As [`build`](Command::build) and [`Prepared::run_async`].
    ///
    /// # References
    ///
    /// As [`Prepared::run_async`].
    ///
    /// ```
    /// # #[cfg(feature = "tokio")]
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// assert!(safespawn::Command::new("true").run_async().await?.success());
    /// # Ok::<(), safespawn::Error>(())
    /// # }).unwrap();
    /// ```
    pub async fn run_async(self) -> Result<Finished, Error> {
        let prepared = self.build()?;
        prepared.run_async().await
    }
}

impl Command<crate::Buffered> {
    /// `build()?` then [`Prepared::run_async`](crate::Prepared::run_async)
    /// in buffered mode.
    ///
    /// # Errors
    ///
    /// As [`build`](Command::build) and
    /// [`Prepared::run_async`](crate::Prepared::run_async) in buffered mode.
    ///
    /// # References
    ///
    /// As [`Prepared::output_async`](crate::Prepared::output_async).
    ///
    /// ```
    /// # #[cfg(feature = "tokio")]
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let out = safespawn::Command::new("echo").arg("hi").capture_stdout().run_async().await?;
    /// assert_eq!(out.stdout, b"hi\n");
    /// # Ok::<(), safespawn::Error>(())
    /// # }).unwrap();
    /// ```
    pub async fn run_async(self) -> Result<crate::Output, Error> {
        let prepared = self.build()?;
        prepared.run_async().await
    }

    /// `build()?` then
    /// [`Prepared::output_async`](crate::Prepared::output_async).
    ///
    /// # Errors
    ///
    /// As [`build`](Command::build) and
    /// [`Prepared::output_async`](crate::Prepared::output_async).
    ///
    /// # References
    ///
    /// As [`Prepared::output_async`](crate::Prepared::output_async).
    ///
    /// ```
    /// # #[cfg(feature = "tokio")]
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let out = safespawn::Command::new("false").capture_stdout().output_async().await?;
    /// assert_eq!(out.status.code(), Some(1));
    /// # Ok::<(), safespawn::Error>(())
    /// # }).unwrap();
    /// ```
    pub async fn output_async(self) -> Result<crate::Output, Error> {
        let prepared = self.build()?;
        prepared.output_async().await
    }
}

// The futures can move between a multi-threaded runtime's workers.
#[cfg(test)]
mod send {
    fn is_send<T: Send>(_: &T) {}

    #[test]
    fn the_futures_are_send() {
        let p = crate::Command::new("true").build().unwrap();
        is_send(&p.status_async());
        is_send(&p.run_async());
        let b = crate::Command::new("true")
            .capture_stdout()
            .build()
            .unwrap();
        is_send(&b.output_async());
        is_send(&b.run_async());
        is_send(&crate::Command::new("true").status_async());
        is_send(&crate::Command::new("true").capture_stdout().output_async());
        let mut running = crate::Command::new("true").spawn().unwrap();
        is_send(&running.wait_async());
        is_send(&running.abort_async());
    }
}
