//! `Prepared<M>`: a frozen, reusable command, and the run methods.

use std::fmt;
use std::marker::PhantomData;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::process::ExitStatus;
use std::sync::Arc;
use std::time::Duration;

use crate::error::Error;
use crate::mode::{Direct, Mode};
use crate::plan::Plan;
use crate::process::{Finished, Paused, Running};
use crate::send::SendPipes;
use crate::spawn;
use crate::sys;

/// A built command: checked, serialised, reusable, `Send + Sync`.
///
/// Spawning a `Prepared` allocates nothing: argv, envp, the program path and
/// the fd plan were all prepared by [`Command::build`](crate::Command::build). One `Prepared` can be
/// spawned any number of times, from many threads at once.
///
/// ```
/// use safespawn::Command;
/// let prepared = std::sync::Arc::new(Command::new("true").build()?);
/// let threads: Vec<_> = (0..4).map(|_| {
///     let p = prepared.clone();
///     std::thread::spawn(move || p.status().map(|s| s.success()))
/// }).collect();
/// for t in threads {
///     assert!(t.join().unwrap()?);
/// }
/// # Ok::<(), safespawn::Error>(())
/// ```
pub struct Prepared<M: Mode = Direct> {
    pub(crate) plan: Arc<Plan>,
    mode: PhantomData<M>,
}

static_assertions::assert_impl_all!(Prepared<Direct>: Send, Sync);
static_assertions::assert_impl_all!(Prepared<crate::Buffered>: Send, Sync);
static_assertions::assert_impl_all!(Prepared<crate::Daemon>: Send, Sync);
static_assertions::assert_impl_all!(Error: Send, Sync);

impl<M: Mode> Prepared<M> {
    pub(crate) fn from_plan(plan: Plan) -> Prepared<M> {
        Prepared {
            plan: Arc::new(plan),
            mode: PhantomData,
        }
    }
}

/// Per-spawn stdio pipes: the parent's ends, and the child's ends (closed in
/// the parent once the child has them).
struct StdioPipes {
    parent: [Option<OwnedFd>; 3],
    child: [Option<OwnedFd>; 3],
}

impl StdioPipes {
    fn new(plan: &Plan) -> Result<StdioPipes, Error> {
        let mut pipes = StdioPipes {
            parent: [None, None, None],
            child: [None, None, None],
        };
        for n in 0..3 {
            if !plan.stdio_pipes[n] {
                continue;
            }
            let (r, w) = sys::fd::pipe(rustix::pipe::PipeFlags::empty())?;
            let (parent, child) = if n == 0 { (w, r) } else { (r, w) };
            if plan.nonblocking_pipes {
                rustix::io::ioctl_fionbio(&parent, true)
                    .map_err(|e| Error::io("making a pipe non-blocking", e))?;
            }
            pipes.parent[n] = Some(parent);
            pipes.child[n] = Some(child);
        }
        Ok(pipes)
    }

    fn child_fds(&self) -> [RawFd; 3] {
        let raw = |fd: &Option<OwnedFd>| fd.as_ref().map_or(-1, |f| f.as_raw_fd());
        [
            raw(&self.child[0]),
            raw(&self.child[1]),
            raw(&self.child[2]),
        ]
    }
}

impl Prepared<Direct> {
    /// Starts the child and returns at once (libvirt's RunAsync). Allocates
    /// nothing (with more than 4 [send buffers](crate::Command::send_buffer),
    /// two small allocations). The send buffers are written as far as their
    /// pipes take before it returns; the rest is written by the
    /// [`Running`]'s waits.
    ///
    /// # Errors
    ///
    /// * [`Error::Spawn`] when the child fails before exec, with the stage
    ///   and the `errno` of the failing call; the child has been reaped. The
    ///   stage is one of [`Signals`](crate::Stage::Signals),
    ///   [`IdMap`](crate::Stage::IdMap),
    ///   [`Namespace`](crate::Stage::Namespace) (also the kernel's refusal
    ///   of the clone that creates the new namespaces, reported the same
    ///   way though no child ran), [`Hostname`](crate::Stage::Hostname),
    ///   [`Stdio`](crate::Stage::Stdio), [`Fds`](crate::Stage::Fds),
    ///   [`CloseFds`](crate::Stage::CloseFds) (without `close_range`, the
    ///   `/proc/self/fd` walk needs `/proc`),
    ///   [`Rlimit`](crate::Stage::Rlimit), [`Hook`](crate::Stage::Hook) (a
    ///   [`pre_exec_privileged`](crate::Command::pre_exec_privileged)
    ///   hook), [`Groups`](crate::Stage::Groups),
    ///   [`Gid`](crate::Stage::Gid), [`Uid`](crate::Stage::Uid),
    ///   [`Caps`](crate::Stage::Caps),
    ///   [`NoNewPrivs`](crate::Stage::NoNewPrivs),
    ///   [`ParentDeathSignal`](crate::Stage::ParentDeathSignal),
    ///   [`Session`](crate::Stage::Session),
    ///   [`ControllingTty`](crate::Stage::ControllingTty),
    ///   [`ProcessGroup`](crate::Stage::ProcessGroup),
    ///   [`Foreground`](crate::Stage::Foreground),
    ///   [`Chdir`](crate::Stage::Chdir), [`Hook`](crate::Stage::Hook),
    ///   [`Landlock`](crate::Stage::Landlock) and
    ///   [`Exec`](crate::Stage::Exec), in the order the child runs them; the
    ///   builder method that asks for a step says how it fails;
    /// * [`Error::Io`] when a call in the parent fails: creating the stdio
    ///   pipes, a send buffer's pipe or a report pipe (`EMFILE`), making a
    ///   pipe non-blocking, writing a send buffer (otherwise than into a
    ///   pipe whose reader is gone; the child is then aborted),
    ///   `clone` or `fork` (`EAGAIN` at `RLIMIT_NPROC`, `ENOMEM`),
    ///   `pidfd_open` on the fork path, reading the child's report, or a
    ///   report no child of ours can have written (`EPROTO`);
    /// * [`Error::Build`] with
    ///   [`BuildErrorKind::Conflict`](crate::BuildErrorKind::Conflict)
    ///   inside a [dry run](crate::dry_run), which cannot fake a live child.
    ///
    /// # References
    ///
    /// [`clone3(2)`](https://man7.org/linux/man-pages/man2/clone3.2.html) with
    /// `CLONE_VM | CLONE_VFORK | CLONE_PIDFD | CLONE_CLEAR_SIGHAND` (Linux 5.5,
    /// x86_64), else
    /// [`clone(2)`](https://man7.org/linux/man-pages/man2/clone.2.html) with
    /// `CLONE_VM | CLONE_VFORK | CLONE_PIDFD` (Linux 5.2); with a
    /// [`pre_exec`](crate::Command::pre_exec) hook or
    /// [`uid_map`](crate::Command::uid_map) /
    /// [`gid_map`](crate::Command::gid_map) ranges (whose maps this
    /// process writes while the child waits),
    /// [`fork(2)`](https://man7.org/linux/man-pages/man2/fork.2.html) (a
    /// `clone` without `CLONE_VM` with namespaces) and
    /// [`pidfd_open(2)`](https://man7.org/linux/man-pages/man2/pidfd_open.2.html)
    /// (Linux 5.3). In the child,
    /// [`close_range(2)`](https://man7.org/linux/man-pages/man2/close_range.2.html)
    /// (Linux 5.9; `CLOSE_RANGE_CLOEXEC` from 5.11; a `/proc/self/fd` walk
    /// without it) and
    /// [`execve(2)`](https://man7.org/linux/man-pages/man2/execve.2.html).
    /// Linux 5.2; waiting for the child needs 5.4 (see [`Running::wait`]).
    ///
    /// ```
    /// let p = safespawn::Command::new("sleep").arg("0.01").build()?;
    /// let child = p.spawn()?;
    /// assert!(child.wait()?.success());
    /// # Ok::<(), safespawn::Error>(())
    /// ```
    pub fn spawn(&self) -> Result<Running, Error> {
        crate::dry_run::refuse_spawn(&self.plan.line)?;
        let pipes = StdioPipes::new(&self.plan)?;
        let sends = SendPipes::new(&self.plan)?;
        let slots = sends.slots(pipes.child_fds());
        let child = spawn::spawn(&self.plan, slots.as_slice())?;
        let running = Running::new(child, pipes.parent, self.plan.line.clone());
        // On a failed write the `Running` is dropped: the child is aborted.
        Ok(running.with_sends(sends.start(&self.plan)?))
    }

    /// Starts the child stopped just before exec (libvirt's handshake);
    /// [`Paused::resume`] lets it exec. This takes the fork path.
    ///
    /// # Errors
    ///
    /// As [`spawn`](Prepared::spawn) for the steps before the pause (an exec
    /// failure is reported by [`Paused::resume`]), and:
    ///
    /// * [`Error::Build`] with
    ///   [`BuildErrorKind::Conflict`](crate::BuildErrorKind::Conflict) when
    ///   the command has [`forbid_fork`](crate::Command::forbid_fork);
    /// * [`Error::Spawn`] at stage [`Handshake`](crate::Stage::Handshake)
    ///   when the child cannot report that it reached the pause;
    /// * [`Error::Io`] (`ECHILD`) when the child ends before the pause
    ///   without a report (killed by a signal, say).
    ///
    /// # References
    ///
    /// [`fork(2)`](https://man7.org/linux/man-pages/man2/fork.2.html), then
    /// [`pidfd_open(2)`](https://man7.org/linux/man-pages/man2/pidfd_open.2.html)
    /// for the child's pidfd; a
    /// [`pipe2(2)`](https://man7.org/linux/man-pages/man2/pipe2.2.html) the
    /// child reads until resumed; Linux 5.3.
    ///
    /// ```
    /// let p = safespawn::Command::new("true").build()?;
    /// let paused = p.spawn_paused()?;
    /// // ... move paused.pid() into a cgroup, say ...
    /// assert!(paused.resume()?.wait()?.success());
    /// # Ok::<(), safespawn::Error>(())
    /// ```
    pub fn spawn_paused(&self) -> Result<Paused, Error> {
        crate::dry_run::refuse_spawn(&self.plan.line)?;
        let pipes = StdioPipes::new(&self.plan)?;
        let sends = SendPipes::new(&self.plan)?;
        let slots = sends.slots(pipes.child_fds());
        let child = spawn::spawn_paused(&self.plan, slots.as_slice())?;
        // What fits goes in now; a failed write drops the child (killed
        // and reaped).
        let sends = sends.start(&self.plan)?;
        Ok(Paused {
            child,
            plan: self.plan.clone(),
            pipes: pipes.parent,
            sends,
        })
    }

    /// Spawns and waits; a non-zero exit or a death by signal is
    /// [`Error::Exit`] with the quoted command line. Pipes are closed at
    /// once (a synchronous run cannot service them).
    ///
    /// # Errors
    ///
    /// * [`Error::Exit`] when the child exits non-zero or is killed by a
    ///   signal (its `stderr` is empty: nothing is captured here);
    /// * [`Error::Timeout`] past the command's
    ///   [`timeout`](crate::Command::timeout), once the child is aborted and
    ///   reaped;
    /// * [`Error::Io`] when waiting for the child fails (see
    ///   [`Running::wait`]);
    /// * otherwise as [`spawn`](Prepared::spawn).
    ///
    /// In a [dry run](crate::dry_run) nothing is spawned: the only error is
    /// [`Error::Exit`] for a failing fake status.
    ///
    /// # References
    ///
    /// As [`spawn`](Prepared::spawn), then
    /// [`waitid(2)`](https://man7.org/linux/man-pages/man2/waitid.2.html) with
    /// `P_PIDFD` (Linux 5.4); with a timeout,
    /// [`poll(2)`](https://man7.org/linux/man-pages/man2/poll.2.html) on the
    /// pidfd and
    /// [`pidfd_send_signal(2)`](https://man7.org/linux/man-pages/man2/pidfd_send_signal.2.html).
    /// Linux 5.4.
    ///
    /// ```
    /// let p = safespawn::Command::new("false").build()?;
    /// assert_eq!(p.run().unwrap_err().to_string(), "false exited with status 1");
    /// # Ok::<(), safespawn::Error>(())
    /// ```
    pub fn run(&self) -> Result<Finished, Error> {
        let finished = self.wait_timed()?;
        finished.check()?;
        Ok(finished)
    }

    /// Spawns and waits, without checking the status.
    ///
    /// # Errors
    ///
    /// As [`run`](Prepared::run), except that no status is an error: never
    /// [`Error::Exit`].
    ///
    /// # References
    ///
    /// As [`run`](Prepared::run).
    ///
    /// ```
    /// let p = safespawn::Command::new("false").build()?;
    /// assert_eq!(p.status()?.code(), Some(1));
    /// # Ok::<(), safespawn::Error>(())
    /// ```
    pub fn status(&self) -> Result<ExitStatus, Error> {
        Ok(self.wait_timed()?.status())
    }

    fn wait_timed(&self) -> Result<Finished, Error> {
        if let Some(outcome) = crate::dry_run::intercept(&self.plan) {
            return Ok(Finished::new(outcome.status, self.plan.line.clone()));
        }
        let mut child = self.spawn()?;
        child.close_pipes();
        wait_with_timeout(child, self.plan.timeout, &self.plan.line)
    }
}

/// Waits for `child`, aborting it past `timeout`.
pub(crate) fn wait_with_timeout(
    mut child: Running,
    timeout: Option<Duration>,
    line: &str,
) -> Result<Finished, Error> {
    let Some(timeout) = timeout else {
        return child.wait();
    };
    if child.wait_timeout(timeout)?.is_some() {
        return child.wait();
    }
    child.abort()?;
    Err(Error::Timeout {
        command: line.to_string(),
        timeout,
        stdout: Vec::new(),
        stderr: Vec::new(),
    })
}

impl<M: Mode> Prepared<M> {
    /// The line-broken command line, as [`Command::display_multiline`](crate::Command::display_multiline).
    ///
    /// ```
    /// let p = safespawn::Command::new("true").env("A", "1").args(["--opt", "v", "pos"]).build()?;
    /// assert_eq!(p.display_multiline(), "A=1 \\\ntrue \\\n--opt v \\\npos");
    /// # Ok::<(), safespawn::Error>(())
    /// ```
    pub fn display_multiline(&self) -> String {
        self.plan.display_multiline()
    }

    /// Writes the unquoted one-line form plus a newline to `fd`, as
    /// [`Command::write_arg_log`](crate::Command::write_arg_log).
    ///
    /// # Errors
    ///
    /// As [`Command::write_arg_log`](crate::Command::write_arg_log).
    ///
    /// # References
    ///
    /// As [`Command::write_arg_log`](crate::Command::write_arg_log).
    ///
    /// ```
    /// use std::io::Read;
    /// let p = safespawn::Command::new("true").arg("a b").build()?;
    /// let (mut r, w) = std::io::pipe()?;
    /// p.write_arg_log(&w)?;
    /// drop(w);
    /// let mut log = String::new();
    /// r.read_to_string(&mut log)?;
    /// assert_eq!(log, "true a b\n");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn write_arg_log(&self, fd: impl AsFd) -> Result<(), Error> {
        crate::quote::write_all(fd.as_fd(), &self.plan.arg_log())
    }

    /// The landlock ABI version the kernel offered when this command was
    /// built with [`Command::landlock`](crate::Command::landlock), which
    /// says what its children's confinement enforces (the table there): 3
    /// and above for everything a path rule promises, 4 and above for TCP
    /// rules. A [`best_effort`](crate::Landlock::best_effort) `Landlock`
    /// built on a kernel with less runs with the part that kernel has.
    /// `None` for a command without landlock.
    ///
    /// # References
    ///
    /// `LANDLOCK_CREATE_RULESET_VERSION` in
    /// [`landlock_create_ruleset(2)`](https://man7.org/linux/man-pages/man2/landlock_create_ruleset.2.html);
    /// Linux 5.13.
    ///
    /// ```
    /// use safespawn::{Command, Landlock};
    /// assert_eq!(Command::new("true").build()?.landlock_abi(), None);
    /// if let Ok(p) = Command::new("/bin/true")
    ///     .landlock(Landlock::new().allow_exec("/").allow_read("/").best_effort())
    ///     .build()
    /// {
    ///     assert!(p.landlock_abi() >= Some(1)); // 7 on Linux 6.15
    ///     assert!(p.status()?.success());
    /// }
    /// # Ok::<(), safespawn::Error>(())
    /// ```
    pub fn landlock_abi(&self) -> Option<u32> {
        self.plan.landlock_abi
    }
}

/// The shell-quoted command line, as [`Command`](crate::Command)'s `Display`.
///
/// ```
/// let p = safespawn::Command::new("echo").arg("a b").env("X", "1").build().unwrap();
/// assert_eq!(p.to_string(), "X=1 echo 'a b'");
/// ```
impl<M: Mode> fmt::Display for Prepared<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.plan.line)
    }
}

impl<M: Mode> fmt::Debug for Prepared<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Prepared")
            .field("mode", &std::any::type_name::<M>())
            .field("plan", &self.plan)
            .finish()
    }
}
