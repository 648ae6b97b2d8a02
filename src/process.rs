//! Live and finished children: `Running`, `Paused`, `Detached`, `Finished`,
//! each a thin layer over one [`ChildPid`].
//!
//! A child is reaped exactly once, through its pidfd (or, on kernels without
//! pidfds, by its pid, which stays its own until it is reaped), so a
//! recycled pid can never be waited for or signalled. Dropping a `Running`
//! or `Paused` kills and reaps the child: no zombie, ever.

use std::io::{PipeReader, PipeWriter};
use std::os::fd::{BorrowedFd, OwnedFd};
use std::process::ExitStatus;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustix::process::Signal;

use crate::error::Error;
use crate::pidfd::{ChildPid, OnDrop};
use crate::plan::Plan;
use crate::send::{SendWriter, Until};
use crate::spawn;

/// A running child (libvirt's RunAsync). Dropping it aborts the child.
///
/// ```
/// use safespawn::Command;
/// let child = Command::new("sleep").arg("0.01").spawn()?;
/// assert!(child.pid() > 0);
/// let finished = child.wait()?;
/// assert!(finished.success());
/// # Ok::<(), safespawn::Error>(())
/// ```
///
/// A child cannot be waited twice: `wait` consumes it.
///
/// ```compile_fail
/// let child = safespawn::Command::new("true").spawn().unwrap();
/// let _ = child.wait();
/// let _ = child.wait(); // error: use of moved value
/// ```
#[derive(Debug)]
pub struct Running {
    /// The async waits' state (the pidfd's registration with a reactor).
    /// Declared before `child`: fields are dropped in order, and the
    /// registration must go before the pidfd it names is closed.
    #[cfg(any(feature = "tokio", feature = "async-io"))]
    pub(crate) waiter: crate::runtime::process::Waiter,
    /// The send buffers still to write (`Command::send_buffer`); closed
    /// before the child is aborted on drop.
    pub(crate) sends: SendWriter,
    /// Aborted (TERM, grace, KILL, reap) when dropped unreaped.
    pub(crate) child: ChildPid,
    pub(crate) stdin: Option<OwnedFd>,
    stdout: Option<OwnedFd>,
    stderr: Option<OwnedFd>,
    pub(crate) line: Arc<str>,
}

// A child can move between threads, and the async waits keep it so (a
// registration with a reactor is `Send + Sync` too).
static_assertions::assert_impl_all!(Running: Send, Sync);

impl Running {
    pub(crate) fn new(child: ChildPid, pipes: [Option<OwnedFd>; 3], line: Arc<str>) -> Running {
        let [stdin, stdout, stderr] = pipes;
        Running {
            #[cfg(any(feature = "tokio", feature = "async-io"))]
            waiter: crate::runtime::process::Waiter::new(),
            sends: SendWriter::none(),
            child: child.on_drop(OnDrop::Abort),
            stdin,
            stdout,
            stderr,
            line,
        }
    }

    /// The same child, with the send buffers `sends` still to write.
    pub(crate) fn with_sends(mut self, sends: SendWriter) -> Running {
        self.sends = sends;
        self
    }

    /// The child's pid.
    ///
    /// ```
    /// let child = safespawn::Command::new("true").spawn().unwrap();
    /// assert!(child.pid() > 0);
    /// # child.wait().unwrap();
    /// ```
    pub fn pid(&self) -> i32 {
        self.child.pid()
    }

    /// The child's pidfd, for `poll` or `pidfd_send_signal`: `None` only on
    /// kernels without pidfds (`CLONE_PIDFD` is Linux 5.2, `pidfd_open`,
    /// which the fork path of `pre_exec` hooks, paused spawns and id ranges
    /// needs, is
    /// 5.3) or where a seccomp filter refuses them; the child is then owned
    /// by its pid, which stays its own until it is reaped. `poll` reports a
    /// pidfd readable at the child's exit from Linux 5.3 on (a 5.2 pidfd
    /// cannot be polled).
    ///
    /// The fd belongs to the `Running`: it is closed when the child is
    /// waited for, aborted or dropped. Signalling through it is safe even
    /// after the child is reaped (`ESRCH`); use [`signal`](Running::signal)
    /// for the same without kernel conditions.
    ///
    /// ```
    /// use std::os::fd::AsRawFd;
    /// let child = safespawn::Command::new("true").spawn().unwrap();
    /// if let Some(pidfd) = child.pidfd() {
    ///     assert!(pidfd.as_raw_fd() > 2); // never a standard stream
    /// }
    /// # child.wait().unwrap();
    /// ```
    pub fn pidfd(&self) -> Option<BorrowedFd<'_>> {
        self.child.pidfd()
    }

    /// The pidfd, if `poll` reports the child's exit on it (for the
    /// buffered loop).
    pub(crate) fn pollable_pidfd(&self) -> Option<BorrowedFd<'_>> {
        self.child.pollable_pidfd()
    }

    /// The parent's end of a piped stdin, once.
    ///
    /// ```
    /// use safespawn::{Command, Stdio};
    /// use std::io::Write;
    /// let mut child = Command::new("cat").stdin(Stdio::piped()).spawn().unwrap();
    /// child.take_stdin().unwrap().write_all(b"x").unwrap();
    /// assert!(child.take_stdin().is_none());
    /// # child.wait().unwrap();
    /// ```
    pub fn take_stdin(&mut self) -> Option<PipeWriter> {
        self.stdin.take().map(PipeWriter::from)
    }

    /// The parent's end of a piped stdout, once. With the `tokio` or
    /// `async-io` feature it becomes the runtime's pipe type (see the
    /// crate's [Async](crate#async) section; make the pipes non-blocking
    /// with [`nonblocking_pipes`](crate::Command::nonblocking_pipes)).
    ///
    /// ```
    /// use safespawn::{Command, Stdio};
    /// let mut child = Command::new("true").stdout(Stdio::piped()).spawn().unwrap();
    /// assert!(child.take_stdout().is_some());
    /// # child.wait().unwrap();
    /// ```
    pub fn take_stdout(&mut self) -> Option<PipeReader> {
        self.stdout.take().map(PipeReader::from)
    }

    /// The parent's end of a piped stderr, once.
    ///
    /// ```
    /// use safespawn::{Command, Stdio};
    /// let mut child = Command::new("true").stderr(Stdio::piped()).spawn().unwrap();
    /// assert!(child.take_stderr().is_some());
    /// # child.wait().unwrap();
    /// ```
    pub fn take_stderr(&mut self) -> Option<PipeReader> {
        self.stderr.take().map(PipeReader::from)
    }

    /// Waits for the child to exit and reaps it. A piped stdin not taken is
    /// closed first, so a child reading it sees end-of-file. What is left
    /// of the [send buffers](crate::Command::send_buffer) is written
    /// meanwhile, until the child has read it, closed its end or exited.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] when `waitid` fails (`EINTR` is retried): `ECHILD`
    /// when this process ignores `SIGCHLD` (`SIG_IGN` or `SA_NOCLDWAIT`,
    /// with which the kernel reaps children itself), `EINVAL` on a kernel
    /// without `P_PIDFD`; when writing a send buffer fails otherwise than
    /// by the child's end being closed, naming the child fd.
    ///
    /// # References
    ///
    /// [`waitid(2)`](https://man7.org/linux/man-pages/man2/waitid.2.html) with
    /// `P_PIDFD`; Linux 5.4. With send buffers pending,
    /// [`poll(2)`](https://man7.org/linux/man-pages/man2/poll.2.html) on
    /// their pipes and the pidfd (Linux 5.3) and
    /// [`write(2)`](https://man7.org/linux/man-pages/man2/write.2.html).
    ///
    /// ```
    /// let child = safespawn::Command::new("sh").args(["-c", "exit 7"]).spawn().unwrap();
    /// assert_eq!(child.wait().unwrap().code(), Some(7));
    /// ```
    pub fn wait(mut self) -> Result<Finished, Error> {
        self.stdin = None;
        // Reaps the child if it exits first: the wait below returns the
        // status kept.
        self.sends.drive(Some(&mut self.child), None)?;
        let status = self
            .child
            .wait()
            .map_err(|e| Error::io("waiting for the child", e))?;
        Ok(Finished::new(status, self.line.clone()))
    }

    /// The exit status if the child has ended (reaping it), without blocking.
    /// Once it has returned a status, it returns the same one again. What
    /// the pipes of pending [send buffers](crate::Command::send_buffer)
    /// take is written first, without waiting.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] when `waitid` fails (`EINTR` is retried): `ECHILD`
    /// when this process ignores `SIGCHLD` (`SIG_IGN` or `SA_NOCLDWAIT`,
    /// with which the kernel reaps children itself), `EINVAL` on a kernel
    /// without `P_PIDFD`.
    ///
    /// # References
    ///
    /// [`waitid(2)`](https://man7.org/linux/man-pages/man2/waitid.2.html) with
    /// `P_PIDFD` and `WNOHANG`; Linux 5.4.
    ///
    /// ```
    /// let mut child = safespawn::Command::new("sleep").arg("5").spawn().unwrap();
    /// assert!(child.try_wait().unwrap().is_none());
    /// # child.abort().unwrap();
    /// ```
    pub fn try_wait(&mut self) -> Result<Option<ExitStatus>, Error> {
        self.sends.write_now()?;
        let status = self
            .child
            .try_wait()
            .map_err(|e| Error::io("waiting for the child", e))?;
        if status.is_some() {
            self.sends.close();
        }
        Ok(status)
    }

    /// Waits at most `timeout` for the child to end, reaping it if it has
    /// (polling its pidfd; where the kernel cannot poll pidfds, before Linux
    /// 5.3, sleeping briefly between non-blocking waits: 1 ms, doubling up
    /// to 10 ms). A `timeout` too large for a deadline (`Duration::MAX`)
    /// waits for as long as the child runs. Pending
    /// [send buffers](crate::Command::send_buffer) are written meanwhile,
    /// as by [`wait`](Running::wait); what is left at the timeout stays
    /// for the next wait.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] when the wait fails (the child was reaped elsewhere:
    /// `ECHILD`), or a send buffer's write, as for [`wait`](Running::wait).
    ///
    /// # References
    ///
    /// [`poll(2)`](https://man7.org/linux/man-pages/man2/poll.2.html) on the
    /// pidfd (Linux 5.3), then
    /// [`waitid(2)`](https://man7.org/linux/man-pages/man2/waitid.2.html) with
    /// `P_PIDFD` (Linux 5.4) or `P_PID` and `WNOHANG`; any Linux from 4.18.
    ///
    /// ```
    /// use std::time::Duration;
    /// let mut child = safespawn::Command::new("sleep").arg("5").spawn().unwrap();
    /// assert!(child.wait_timeout(Duration::from_millis(20)).unwrap().is_none());
    /// child.signal(safespawn::Signal::KILL).unwrap();
    /// let st = child.wait_timeout(Duration::from_secs(5)).unwrap().unwrap();
    /// assert_eq!(std::os::unix::process::ExitStatusExt::signal(&st), Some(9));
    /// ```
    pub fn wait_timeout(&mut self, timeout: Duration) -> Result<Option<ExitStatus>, Error> {
        let deadline = Instant::now().checked_add(timeout);
        if self.sends.drive(Some(&mut self.child), deadline)? == Until::Deadline {
            return Ok(None);
        }
        self.child
            .wait_until(deadline)
            .map_err(|e| Error::io("waiting for the child", e))
    }

    /// Sends `signal` to the child through its pidfd (by pid on kernels
    /// without pidfds: the child is not reaped, so the pid is still its
    /// own). After the child has been reaped this is an error (`ESRCH`),
    /// never a signal to another process.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] with `ESRCH` once the child has been reaped, or what
    /// the kernel answered (`EPERM` for a child that changed its uid, say).
    ///
    /// # Errors
    ///
    /// [`Error::Io`]: `ESRCH` once the child has been reaped (by
    /// [`try_wait`](Running::try_wait) or
    /// [`wait_timeout`](Running::wait_timeout)), or the kernel's refusal
    /// (`EPERM` for a child running as another user, when the caller lacks
    /// `CAP_KILL`).
    ///
    /// # References
    ///
    /// [`pidfd_send_signal(2)`](https://man7.org/linux/man-pages/man2/pidfd_send_signal.2.html);
    /// Linux 5.1.
    ///
    /// ```
    /// use safespawn::{Command, Signal};
    /// let child = Command::new("sleep").arg("5").spawn().unwrap();
    /// child.signal(Signal::TERM).unwrap();
    /// assert_eq!(child.wait().unwrap().signal(), Some(15));
    /// ```
    pub fn signal(&self, signal: Signal) -> Result<(), Error> {
        self.child
            .signal(signal)
            .map_err(|e| Error::io("signalling the child", e))
    }

    /// Ends the child: SIGTERM, a short grace, SIGKILL, reap (libvirt's
    /// virCommandAbort). The signals are sent whatever happens: a failing
    /// wait never leaves the child running. For many children at once see
    /// [`abort_all`](Running::abort_all).
    ///
    /// # Errors
    ///
    /// [`Error::Io`] when the child, signalled, cannot be reaped (it was
    /// reaped elsewhere: `ECHILD`).
    ///
    /// # References
    ///
    /// [`pidfd_send_signal(2)`](https://man7.org/linux/man-pages/man2/pidfd_send_signal.2.html)
    /// (Linux 5.1) or [`kill(2)`](https://man7.org/linux/man-pages/man2/kill.2.html),
    /// [`poll(2)`](https://man7.org/linux/man-pages/man2/poll.2.html) on the
    /// pidfd for the grace (Linux 5.3),
    /// [`waitid(2)`](https://man7.org/linux/man-pages/man2/waitid.2.html) with
    /// `P_PIDFD` (Linux 5.4) or `P_PID`; any Linux from 4.18.
    ///
    /// ```
    /// let child = safespawn::Command::new("sleep").arg("5").spawn().unwrap();
    /// let finished = child.abort().unwrap();
    /// assert_eq!(finished.signal(), Some(15));
    /// ```
    pub fn abort(mut self) -> Result<Finished, Error> {
        self.sends.close();
        let status = self
            .child
            .abort()
            .map_err(|e| Error::io("aborting the child", e))?;
        Ok(Finished::new(status, self.line.clone()))
    }

    /// Ends many children at once: SIGTERM to all, one shared grace (the
    /// 100 ms of [`abort`](Running::abort)), SIGKILL to those still
    /// running, then every child reaped. Dropping or aborting them one by
    /// one would take a grace each for children that ignore SIGTERM.
    /// Returns each child's outcome, in the order given; a child that had
    /// exited already gets its own status.
    ///
    /// # Errors
    ///
    /// An element is [`Error::Io`] when that child could not be reaped
    /// (every child is signalled regardless).
    ///
    /// ```
    /// use safespawn::{Command, Running};
    /// let children: Vec<Running> = (0..3)
    ///     .map(|_| Command::new("sleep").arg("5").spawn())
    ///     .collect::<Result<_, _>>()?;
    /// for finished in Running::abort_all(children) {
    ///     assert_eq!(finished?.signal(), Some(15));
    /// }
    /// # Ok::<(), safespawn::Error>(())
    /// ```
    pub fn abort_all(children: impl IntoIterator<Item = Running>) -> Vec<Result<Finished, Error>> {
        let mut children: Vec<Running> = children.into_iter().collect();
        let mut cores: Vec<&mut ChildPid> = children.iter_mut().map(|c| &mut c.child).collect();
        let statuses = crate::pidfd::abort_all(&mut cores);
        children
            .iter()
            .zip(statuses)
            .map(|(child, status)| {
                status
                    .map(|s| Finished::new(s, child.line.clone()))
                    .map_err(|e| Error::io("aborting the child", e))
            })
            .collect()
    }

    /// Gives up ownership: the child is no longer aborted on drop, and the
    /// caller waits for or aborts it through [`Detached`]. Pipes not taken
    /// are closed, and so are those of
    /// [send buffers](crate::Command::send_buffer) not yet written whole
    /// (the child sees end-of-file early: [`wait`](Running::wait) first
    /// where that matters).
    ///
    /// ```
    /// let detached = safespawn::Command::new("true").spawn().unwrap().detach();
    /// assert!(detached.wait().unwrap().success());
    /// ```
    pub fn detach(self) -> Detached {
        Detached {
            child: self.child.on_drop(OnDrop::Leave),
            line: self.line,
        }
    }

    /// Closes the parent's ends of any pipes not taken.
    pub(crate) fn close_pipes(&mut self) {
        self.stdin = None;
        self.stdout = None;
        self.stderr = None;
    }
}

/// A child the caller took over with [`Running::detach`] (libvirt's
/// virProcessWait / virProcessAbort). Dropping it leaves the child alone.
///
/// ```
/// let d = safespawn::Command::new("sleep").arg("5").spawn().unwrap().detach();
/// assert!(d.pid() > 0);
/// assert_eq!(d.abort().unwrap().signal(), Some(15));
/// ```
#[derive(Debug)]
pub struct Detached {
    /// Left alone when dropped.
    child: ChildPid,
    line: Arc<str>,
}

impl Detached {
    /// The child's pid.
    ///
    /// ```
    /// let d = safespawn::Command::new("true").spawn().unwrap().detach();
    /// assert!(d.pid() > 0);
    /// # d.wait().unwrap();
    /// ```
    pub fn pid(&self) -> i32 {
        self.child.pid()
    }

    /// Waits for the child to exit and reaps it.
    ///
    /// # Errors
    ///
    /// As [`Running::wait`].
    ///
    /// # References
    ///
    /// As [`Running::wait`].
    ///
    /// ```
    /// let d = safespawn::Command::new("true").spawn().unwrap().detach();
    /// assert!(d.wait().unwrap().success());
    /// ```
    pub fn wait(mut self) -> Result<Finished, Error> {
        let status = self
            .child
            .wait()
            .map_err(|e| Error::io("waiting for the child", e))?;
        Ok(Finished::new(status, self.line))
    }

    /// TERM, a short grace, KILL, reap.
    ///
    /// # Errors
    ///
    /// As [`Running::abort`].
    ///
    /// # References
    ///
    /// As [`Running::abort`].
    ///
    /// ```
    /// let d = safespawn::Command::new("sleep").arg("5").spawn().unwrap().detach();
    /// assert!(!d.abort().unwrap().success());
    /// ```
    pub fn abort(mut self) -> Result<Finished, Error> {
        let status = self
            .child
            .abort()
            .map_err(|e| Error::io("aborting the child", e))?;
        Ok(Finished::new(status, self.line))
    }
}

/// A child stopped just before exec by
/// [`spawn_paused`](crate::Prepared::spawn_paused) (libvirt's handshake), so
/// the caller can, for example, move it into a cgroup. Dropping it kills and
/// reaps the child.
///
/// ```
/// let prepared = safespawn::Command::new("true").build().unwrap();
/// let paused = prepared.spawn_paused().unwrap();
/// assert!(paused.pid() > 0);
/// let running = paused.resume().unwrap();
/// assert!(running.wait().unwrap().success());
/// ```
#[derive(Debug)]
pub struct Paused {
    /// Killed and reaped when dropped unresumed (the `ChildPid` inside).
    pub(crate) child: spawn::PausedChild,
    pub(crate) plan: Arc<Plan>,
    pub(crate) pipes: [Option<OwnedFd>; 3],
    /// The send buffers not yet written whole.
    pub(crate) sends: SendWriter,
}

impl Paused {
    /// The paused child's pid.
    ///
    /// ```
    /// let p = safespawn::Command::new("true").build().unwrap();
    /// let paused = p.spawn_paused().unwrap();
    /// assert!(paused.pid() > 0);
    /// ```
    pub fn pid(&self) -> i32 {
        self.child.child.pid()
    }

    /// Lets the child exec; returns once it has. What the pipes of pending
    /// [send buffers](crate::Command::send_buffer) take is written then;
    /// the rest by the [`Running`]'s waits.
    ///
    /// # Errors
    ///
    /// * [`Error::Spawn`] at stage [`Exec`](crate::Stage::Exec) when the
    ///   exec fails (or [`Handshake`](crate::Stage::Handshake) when the
    ///   child cannot read the go-ahead); the child has been reaped;
    /// * [`Error::Io`] when writing the go-ahead or reading the child's
    ///   report fails; the child is then killed and reaped.
    ///
    /// # References
    ///
    /// [`write(2)`](https://man7.org/linux/man-pages/man2/write.2.html) on the
    /// pipe the child waits on, then its
    /// [`execve(2)`](https://man7.org/linux/man-pages/man2/execve.2.html); the
    /// child was made by
    /// [`Prepared::spawn_paused`](crate::Prepared::spawn_paused).
    ///
    /// ```
    /// let p = safespawn::Command::new("true").build().unwrap();
    /// let running = p.spawn_paused().unwrap().resume().unwrap();
    /// assert!(running.wait().unwrap().success());
    /// ```
    pub fn resume(self) -> Result<Running, Error> {
        let Paused {
            child,
            plan,
            pipes,
            sends,
        } = self;
        let spawned = spawn::resume(&plan, child)?;
        let mut running = Running::new(spawned, pipes, plan.line.clone()).with_sends(sends);
        running.sends.write_now()?;
        Ok(running)
    }
}

/// A reaped child: its exit status, and the command line for messages.
///
/// ```
/// let f = safespawn::Command::new("sh").args(["-c", "exit 3"]).spawn().unwrap().wait().unwrap();
/// assert_eq!(f.code(), Some(3));
/// assert!(!f.success());
/// assert!(f.check().unwrap_err().to_string().contains("exited with status 3"));
/// ```
#[derive(Debug, Clone)]
pub struct Finished {
    status: ExitStatus,
    line: Arc<str>,
}

impl Finished {
    pub(crate) fn new(status: ExitStatus, line: Arc<str>) -> Finished {
        Finished { status, line }
    }

    /// The shell-quoted command line of the child.
    pub(crate) fn line(&self) -> &str {
        &self.line
    }

    /// The exit status.
    ///
    /// ```
    /// let f = safespawn::Command::new("true").run().unwrap();
    /// assert!(f.status().success());
    /// ```
    pub fn status(&self) -> ExitStatus {
        self.status
    }

    /// Whether the child exited with status 0.
    ///
    /// ```
    /// assert!(safespawn::Command::new("true").run().unwrap().success());
    /// ```
    pub fn success(&self) -> bool {
        self.status.success()
    }

    /// The exit code, or `None` after a death by signal.
    ///
    /// ```
    /// let f = safespawn::Command::new("true").run().unwrap();
    /// assert_eq!(f.code(), Some(0));
    /// ```
    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }

    /// The signal that killed the child, if one did.
    ///
    /// ```
    /// let f = safespawn::Command::new("sh").args(["-c", "kill -9 $$"]).spawn().unwrap().wait().unwrap();
    /// assert_eq!(f.signal(), Some(9));
    /// ```
    pub fn signal(&self) -> Option<i32> {
        std::os::unix::process::ExitStatusExt::signal(&self.status)
    }

    /// `Ok` on success, else [`Error::Exit`] with the quoted command line.
    ///
    /// # Errors
    ///
    /// [`Error::Exit`] with this status, the quoted command line and an empty
    /// `stderr` when the child did not exit with status 0 (a non-zero code
    /// or a death by signal).
    ///
    /// ```
    /// let f = safespawn::Command::new("false").spawn().unwrap().wait().unwrap();
    /// let e = f.check().unwrap_err();
    /// assert_eq!(e.to_string(), "false exited with status 1");
    /// ```
    pub fn check(&self) -> Result<(), Error> {
        if self.success() {
            Ok(())
        } else {
            Err(Error::Exit {
                status: self.status,
                command: self.line.to_string(),
                stderr: String::new(),
            })
        }
    }
}
