//! Buffered mode: in-memory stdin, captured stdout and stderr, send buffers,
//! all driven by one poll loop in the calling thread (libvirt's
//! virCommandSetInputBuffer, SetOutputBuffer, SetErrorBuffer, SetSendBuffer
//! and virCommandProcessIO).
//!
//! # The loop
//!
//! `run`/`output` create one pipe per stream (stdin if there is input or a
//! piped stdin, stdout and stderr if captured, one per send buffer), spawn the
//! child with the child's ends, and then:
//!
//! 1. **close the child's ends in the parent before any I/O.** A parent that
//!    keeps the read end of the child's stdin never sees `EPIPE` when the
//!    child stops reading, and blocks for ever on a full pipe (libvirt's
//!    858c2476d9);
//! 2. make the parent's ends non-blocking and `poll` all of them together
//!    with the child's pidfd. Every stream is serviced whenever it is ready, so
//!    a child blocked writing stderr while the parent waits on stdout (or
//!    writing stdout while the parent still writes stdin) cannot deadlock;
//! 3. treat `POLLHUP` and `POLLERR` like readiness: do the read or write and
//!    let it report (end-of-file, `EPIPE`). Waking on them and doing nothing
//!    is how libvirt's loop once spun for ever;
//! 4. close stdin (and each send buffer) as soon as it is fully written, so
//!    the child sees end-of-file; `EPIPE` means the child stopped reading:
//!    writing stops, which is not an error;
//! 5. retry `EINTR` everywhere; never poll a stream that is closed, and stop
//!    polling the pidfd once the child has exited, so the loop never spins;
//! 6. once the pidfd reports the exit, keep draining for at most
//!    [`wait_delay`](Command::wait_delay) (3 s by default): a grandchild that
//!    inherited the pipes may hold them open for ever (Go's issue 23019).
//!    What was read by then is returned;
//! 7. past [`timeout`](Command::timeout) the child is aborted (TERM, a short
//!    grace, KILL) and reaped, and the call returns [`Error::Timeout`].
//!
//! The child is reaped exactly once, through its pidfd; on every early
//! return (an error in the loop, a timeout) it is aborted and reaped, so no
//! zombie is left.
//!
//! Output buffers grow geometrically (`Vec::reserve` doubles) and the kernel
//! reads straight into their spare capacity; the poll set and its results
//! live in vectors allocated before the loop. Nothing else allocates while
//! data moves.
//!
//! # SIGPIPE
//!
//! A library cannot assume the program ignores SIGPIPE (Rust binaries do, C
//! programs usually do not), yet a write to a pipe whose reader is gone raises
//! it. While the loop writes, SIGPIPE is blocked in the calling thread only;
//! the signal a failed write raises is directed at that thread, so it stays
//! pending there instead of killing the process. After the loop, if a write
//! failed with `EPIPE` and no SIGPIPE was pending before, the one the write
//! raised is taken off with a zero-timeout `sigtimedwait`, and the previous
//! mask is restored. A SIGPIPE that was already pending is left alone.

use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::PathBuf;
use std::process::ExitStatus;
use std::time::{Duration, Instant};

use rustix::event::{PollFd, PollFlags, Timespec};
use rustix::io::Errno;
use rustix::pipe::PipeFlags;

use crate::command::Command;
use crate::error::Error;
use crate::mode::{Buffered, Direct};
use crate::plan::{Plan, SLOT_SEND_BUFFERS, SLOT_STDERR, SLOT_STDIN, SLOT_STDOUT};
use crate::prepared::Prepared;
use crate::process::Running;
use crate::{spawn, sys, Stdio};

/// How long to keep draining pipes after the child exited, unless
/// [`Command::wait_delay`] says otherwise.
pub(crate) const DEFAULT_WAIT_DELAY: Duration = Duration::from_secs(3);

/// How much of the captured stderr an [`Error::Exit`] carries (its end).
const STDERR_TAIL: usize = 4096;

/// The least free space offered to one `read`: a default pipe's capacity.
const READ_CHUNK: usize = 64 * 1024;

/// At most this many reads per stream per wake-up, so one busy stream cannot
/// starve the others.
const READS_PER_WAKE: usize = 8;

/// What a buffered run returns: how the child ended and what it wrote.
///
/// ```
/// let out = safespawn::Command::new("sh")
///     .args(["-c", "echo out; echo err >&2; exit 3"])
///     .capture_stdout()
///     .capture_stderr()
///     .output()?;
/// assert_eq!(out.status.code(), Some(3));
/// assert_eq!(out.stdout, b"out\n");
/// assert_eq!(out.stderr, b"err\n");
/// # Ok::<(), safespawn::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Output {
    /// How the child ended.
    pub status: ExitStatus,
    /// Everything the child wrote to stdout (with
    /// [`capture_interleaved`](Command::capture_interleaved), stdout and
    /// stderr in the order written); empty when not captured.
    pub stdout: Vec<u8>,
    /// Everything the child wrote to stderr; empty when not captured or
    /// interleaved.
    pub stderr: Vec<u8>,
}

impl Command<Direct> {
    /// Switches to [`Buffered`] mode; the first switch sets the default
    /// [`wait_delay`](Command::wait_delay).
    fn into_buffered(self) -> Command<Buffered> {
        let mut cmd: Command<Buffered> = self.into_mode();
        cmd.cfg.buffered.wait_delay = DEFAULT_WAIT_DELAY;
        cmd
    }

    /// Feeds `bytes` to the child's stdin, then closes it (libvirt's
    /// SetInputBuffer). Any bytes, NUL included. Switches to [`Buffered`].
    ///
    /// ```
    /// let out = safespawn::Command::new("cat").input(&b"a\0b"[..]).capture_stdout().run()?;
    /// assert_eq!(out.stdout, b"a\0b");
    /// # Ok::<(), safespawn::Error>(())
    /// ```
    pub fn input(self, bytes: impl Into<Vec<u8>>) -> Command<Buffered> {
        self.into_buffered().input(bytes)
    }

    /// Captures stdout into [`Output::stdout`] (libvirt's SetOutputBuffer).
    /// Switches to [`Buffered`].
    ///
    /// ```
    /// let out = safespawn::Command::new("echo").arg("hi").capture_stdout().run()?;
    /// assert_eq!(out.stdout, b"hi\n");
    /// # Ok::<(), safespawn::Error>(())
    /// ```
    pub fn capture_stdout(self) -> Command<Buffered> {
        self.into_buffered().capture_stdout()
    }

    /// Captures stderr into [`Output::stderr`] (libvirt's SetErrorBuffer).
    /// Switches to [`Buffered`].
    ///
    /// ```
    /// let out = safespawn::Command::new("sh").args(["-c", "echo oops >&2"]).capture_stderr().run()?;
    /// assert_eq!(out.stderr, b"oops\n");
    /// # Ok::<(), safespawn::Error>(())
    /// ```
    pub fn capture_stderr(self) -> Command<Buffered> {
        self.into_buffered().capture_stderr()
    }

    /// Captures stdout and stderr into [`Output::stdout`] through one shared
    /// pipe, so the bytes are in the order the child wrote them (libvirt's
    /// output and error buffers given the same pointer). Switches to
    /// [`Buffered`].
    ///
    /// ```
    /// let out = safespawn::Command::new("sh")
    ///     .args(["-c", "echo 1; echo 2 >&2; echo 3"])
    ///     .capture_interleaved()
    ///     .run()?;
    /// assert_eq!(out.stdout, b"1\n2\n3\n");
    /// assert!(out.stderr.is_empty());
    /// # Ok::<(), safespawn::Error>(())
    /// ```
    pub fn capture_interleaved(self) -> Command<Buffered> {
        self.into_buffered().capture_interleaved()
    }

    /// Gives the child the read end of a new pipe at `child_fd`, through
    /// which it reads `bytes` (libvirt's SetSendBuffer). A number already
    /// planned (stdio, `pass_fd`, another send buffer) is a build error.
    /// Switches to [`Buffered`].
    ///
    /// ```
    /// let out = safespawn::Command::new("sh").args(["-c", "cat <&3"])
    ///     .send_buffer(3, "secret")
    ///     .capture_stdout()
    ///     .run()?;
    /// assert_eq!(out.stdout, b"secret");
    /// # Ok::<(), safespawn::Error>(())
    /// ```
    pub fn send_buffer(self, child_fd: RawFd, bytes: impl Into<Vec<u8>>) -> Command<Buffered> {
        self.into_buffered().send_buffer(child_fd, bytes)
    }
}

/// The [`Buffered`] builder. It has no `spawn`: buffers only work with a
/// synchronous run.
///
/// ```compile_fail
/// let child = safespawn::Command::new("cat").input("x").spawn();
/// ```
///
/// ```compile_fail
/// let p = safespawn::Command::new("cat").capture_stdout().build().unwrap();
/// let child = p.spawn();
/// ```
///
/// It has no stdio setters either: the buffers own the standard streams.
///
/// ```compile_fail
/// use safespawn::{Command, Stdio};
/// let cmd = Command::new("cat").input("x").stdout(Stdio::inherit());
/// ```
///
/// ```compile_fail
/// use safespawn::{Command, Stdio};
/// let cmd = Command::new("cat").capture_stdout().stdin(Stdio::null());
/// ```
///
/// ```compile_fail
/// use safespawn::{Command, Stdio};
/// let cmd = Command::new("cat").capture_stdout().stderr(Stdio::inherit());
/// ```
impl Command<Buffered> {
    /// Feeds `bytes` to the child's stdin, then closes it; replaces earlier
    /// input. Any bytes, NUL included.
    ///
    /// ```
    /// let out = safespawn::Command::new("wc").arg("-c").capture_stdout()
    ///     .input(vec![0u8; 100_000]).run()?;
    /// assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "100000");
    /// # Ok::<(), safespawn::Error>(())
    /// ```
    pub fn input(mut self, bytes: impl Into<Vec<u8>>) -> Self {
        self.cfg.buffered.input = Some(bytes.into());
        self.cfg.stdin = Stdio::piped();
        self
    }

    /// Captures stdout into [`Output::stdout`].
    ///
    /// ```
    /// let out = safespawn::Command::new("cat").input("x").capture_stdout().run()?;
    /// assert_eq!(out.stdout, b"x");
    /// # Ok::<(), safespawn::Error>(())
    /// ```
    pub fn capture_stdout(mut self) -> Self {
        self.cfg.buffered.capture_stdout = true;
        self.cfg.stdout = Stdio::piped();
        self
    }

    /// Captures stderr into its own buffer, [`Output::stderr`]; replaces an
    /// earlier [`capture_interleaved`](Command::capture_interleaved).
    ///
    /// ```
    /// let out = safespawn::Command::new("sh").args(["-c", "echo e >&2"])
    ///     .capture_interleaved().capture_stderr().run()?;
    /// assert_eq!(out.stderr, b"e\n");
    /// assert!(out.stdout.is_empty());
    /// # Ok::<(), safespawn::Error>(())
    /// ```
    pub fn capture_stderr(mut self) -> Self {
        self.cfg.buffered.capture_stderr = true;
        self.cfg.buffered.interleaved = false;
        self.cfg.stderr_to_stdout = false;
        self.cfg.stderr = Stdio::piped();
        self
    }

    /// Captures stdout and stderr into [`Output::stdout`] through one shared
    /// pipe, in the order the child wrote them; replaces an earlier
    /// [`capture_stderr`](Command::capture_stderr).
    ///
    /// ```
    /// let out = safespawn::Command::new("sh").args(["-c", "echo a >&2; echo b"])
    ///     .input("").capture_interleaved().run()?;
    /// assert_eq!(out.stdout, b"a\nb\n");
    /// # Ok::<(), safespawn::Error>(())
    /// ```
    pub fn capture_interleaved(mut self) -> Self {
        self.cfg.buffered.capture_stdout = true;
        self.cfg.buffered.capture_stderr = false;
        self.cfg.buffered.interleaved = true;
        self.cfg.stdout = Stdio::piped();
        self.cfg.stderr = Stdio::null();
        self.cfg.stderr_to_stdout = true;
        self
    }

    /// Gives the child the read end of a new pipe at `child_fd`, through
    /// which it reads `bytes`; the pipe is closed once everything is written.
    /// Several send buffers are written concurrently, so a child may read
    /// them in any order. A number already planned is a build error.
    ///
    /// ```
    /// let out = safespawn::Command::new("sh").args(["-c", "cat <&4; cat <&3"])
    ///     .capture_stdout()
    ///     .send_buffer(3, "three")
    ///     .send_buffer(4, "four ")
    ///     .run()?;
    /// assert_eq!(out.stdout, b"four three");
    /// assert!(safespawn::Command::new("true").send_buffer(1, "x").build().is_err());
    /// # Ok::<(), safespawn::Error>(())
    /// ```
    pub fn send_buffer(mut self, child_fd: RawFd, bytes: impl Into<Vec<u8>>) -> Self {
        self.cfg
            .buffered
            .send_buffers
            .push((child_fd, bytes.into()));
        self
    }

    /// How long to keep reading after the child has exited, for output
    /// still buffered in pipes that a grandchild holds open (default 3 s,
    /// like Go's `WaitDelay`). What was read by then is returned; the
    /// grandchild is left alone.
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// let start = Instant::now();
    /// let out = safespawn::Command::new("sh").args(["-c", "sleep 5 & echo hi"])
    ///     .capture_stdout()
    ///     .wait_delay(Duration::from_millis(100))
    ///     .run()?;
    /// assert_eq!(out.stdout, b"hi\n");
    /// assert!(start.elapsed() < Duration::from_secs(4));
    /// # Ok::<(), safespawn::Error>(())
    /// ```
    pub fn wait_delay(mut self, delay: Duration) -> Self {
        self.cfg.buffered.wait_delay = delay;
        self
    }

    /// The child's working directory. A missing directory is reported as
    /// [`Error::Spawn`] at stage [`Chdir`](crate::Stage::Chdir).
    ///
    /// ```
    /// let out = safespawn::Command::new("pwd").capture_stdout().current_dir("/tmp").run()?;
    /// assert_eq!(out.stdout, b"/tmp\n");
    /// # Ok::<(), safespawn::Error>(())
    /// ```
    pub fn current_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.cfg.cwd = Some(dir.into());
        self
    }

    /// `build()?` then [`Prepared::run`].
    ///
    /// ```
    /// let out = safespawn::Command::new("echo").arg("hi").capture_stdout().run()?;
    /// assert_eq!(out.stdout, b"hi\n");
    /// # Ok::<(), safespawn::Error>(())
    /// ```
    pub fn run(self) -> Result<Output, Error> {
        self.build()?.run()
    }

    /// `build()?` then [`Prepared::output`].
    ///
    /// ```
    /// let out = safespawn::Command::new("false").capture_stdout().output()?;
    /// assert_eq!(out.status.code(), Some(1));
    /// # Ok::<(), safespawn::Error>(())
    /// ```
    pub fn output(self) -> Result<Output, Error> {
        self.build()?.output()
    }
}

impl Prepared<Buffered> {
    /// Runs the child to completion, feeding and capturing its streams;
    /// a non-zero exit or a death by signal is [`Error::Exit`] carrying the
    /// quoted command line and the end of the captured stderr (of the
    /// interleaved output with
    /// [`capture_interleaved`](Command::capture_interleaved)).
    ///
    /// ```
    /// let p = safespawn::Command::new("sh").args(["-c", "echo 'no such file' >&2; exit 2"])
    ///     .capture_stderr().build()?;
    /// let err = p.run().unwrap_err();
    /// assert_eq!(err.to_string(),
    ///     "sh -c 'echo '\\''no such file'\\'' >&2; exit 2' exited with status 2; stderr:\nno such file");
    /// # Ok::<(), safespawn::Error>(())
    /// ```
    pub fn run(&self) -> Result<Output, Error> {
        let out = self.output()?;
        if out.status.success() {
            return Ok(out);
        }
        let captured = if self.plan.buffered.interleaved {
            &out.stdout
        } else {
            &out.stderr
        };
        Err(Error::Exit {
            status: out.status,
            command: self.plan.line.to_string(),
            stderr: tail(captured, STDERR_TAIL),
        })
    }

    /// Runs the child to completion, feeding and capturing its streams,
    /// without checking the status. Reusable: every call is a new child.
    ///
    /// ```
    /// let p = safespawn::Command::new("tr").args(["a-z", "A-Z"]).input("abc").capture_stdout().build()?;
    /// for _ in 0..2 {
    ///     let out = p.output()?;
    ///     assert!(out.status.success());
    ///     assert_eq!(out.stdout, b"ABC");
    /// }
    /// # Ok::<(), safespawn::Error>(())
    /// ```
    pub fn output(&self) -> Result<Output, Error> {
        let plan = &*self.plan;
        if let Some(outcome) = crate::dry_run::intercept(&plan.line) {
            return Ok(Output {
                status: outcome.status,
                stdout: outcome.stdout,
                stderr: outcome.stderr,
            });
        }
        let pipes = Pipes::new(plan)?;
        let child = spawn::spawn(plan, &pipes.child_fds)?;
        // The child has its copies now. Ours must go before any I/O, or a
        // child that stops reading never makes our writes fail with EPIPE.
        let Pipes {
            streams,
            child_fds: _,
            _child_ends: child_ends,
        } = pipes;
        drop(child_ends);
        // From here the child is owned by `running`: any early return aborts
        // and reaps it.
        let running = Running::new(child, [None, None, None], plan.line.clone());
        drive(plan, running, streams)
    }
}

/// The last `max` bytes of `bytes` as text, starting at a character boundary.
fn tail(bytes: &[u8], max: usize) -> String {
    let mut start = bytes.len().saturating_sub(max);
    if start > 0 {
        // Skip UTF-8 continuation bytes cut off from their start (at most 3).
        for _ in 0..3 {
            match bytes.get(start) {
                Some(b) if b & 0xC0 == 0x80 => start += 1,
                _ => break,
            }
        }
    }
    String::from_utf8_lossy(&bytes[start..]).into_owned()
}

/// One pipe the loop services, from the parent's side.
struct Stream<'d> {
    /// `None` once closed.
    fd: Option<OwnedFd>,
    role: Role<'d>,
}

enum Role<'d> {
    /// Writes `data[done..]` to the child.
    Write { data: &'d [u8], done: usize },
    /// Reads what the child writes.
    Read { buf: Vec<u8>, slot: usize },
}

/// The per-spawn pipes: the parent's ends (with their roles) and the raw
/// child ends handed to `spawn` as the dynamic fds.
/// The pipe buffer size asked for (the default is 64 KiB).
const PIPE_SIZE: usize = 1 << 20;

struct Pipes<'d> {
    streams: Vec<Stream<'d>>,
    /// Indexed by `Src::Dynamic` slot; -1 where there is no pipe.
    child_fds: Vec<RawFd>,
    /// Keeps the child ends open until the `Pipes` is taken apart.
    _child_ends: Vec<OwnedFd>,
}

impl<'d> Pipes<'d> {
    fn new(plan: &'d Plan) -> Result<Pipes<'d>, Error> {
        let sends = &plan.buffered.send_buffers;
        let mut pipes = Pipes {
            streams: Vec::with_capacity(3 + sends.len()),
            child_fds: vec![-1; SLOT_SEND_BUFFERS + sends.len()],
            _child_ends: Vec::with_capacity(3 + sends.len()),
        };
        if plan.stdio_pipes[SLOT_STDIN] {
            let data = plan.buffered.input.as_deref().unwrap_or_default();
            pipes.add_writer(SLOT_STDIN, data)?;
        }
        for slot in [SLOT_STDOUT, SLOT_STDERR] {
            if plan.stdio_pipes[slot] {
                let (parent, child) = spawn::pipe(PipeFlags::empty())?;
                pipes.add(
                    slot,
                    parent,
                    child,
                    Role::Read {
                        buf: Vec::new(),
                        slot,
                    },
                )?;
            }
        }
        for (i, (_, data)) in sends.iter().enumerate() {
            pipes.add_writer(SLOT_SEND_BUFFERS + i, data)?;
        }
        Ok(pipes)
    }

    fn add_writer(&mut self, slot: usize, data: &'d [u8]) -> Result<(), Error> {
        let (child, parent) = spawn::pipe(PipeFlags::empty())?;
        self.add(slot, parent, child, Role::Write { data, done: 0 })
    }

    fn add(
        &mut self,
        slot: usize,
        parent: OwnedFd,
        child: OwnedFd,
        role: Role<'d>,
    ) -> Result<(), Error> {
        // Bulk transfers ping-pong between two processes one pipe buffer at
        // a time; a larger buffer means fewer wake-ups. Best effort: the
        // kernel caps it (/proc/sys/fs/pipe-max-size) and may refuse.
        let _ = rustix::pipe::fcntl_setpipe_size(&parent, PIPE_SIZE);
        // Only the parent's end: the child's must block as usual.
        rustix::io::ioctl_fionbio(&parent, true)
            .map_err(|e| Error::io("making a pipe non-blocking", e))?;
        self.child_fds[slot] = child.as_raw_fd();
        self._child_ends.push(child);
        // Nothing to write: close at once, the child sees end-of-file.
        let empty = matches!(role, Role::Write { data, .. } if data.is_empty());
        self.streams.push(Stream {
            fd: (!empty).then_some(parent),
            role,
        });
        Ok(())
    }
}

/// Blocks SIGPIPE in this thread while the loop writes, and on drop takes
/// off the SIGPIPE a failed write raised (see the module docs).
struct SigpipeGuard {
    old_mask: sys::SigSet,
    pending_before: bool,
    saw_epipe: bool,
}

impl SigpipeGuard {
    fn new() -> SigpipeGuard {
        let old_mask = sys::block_signal(libc::SIGPIPE);
        SigpipeGuard {
            old_mask,
            pending_before: sys::signal_pending(libc::SIGPIPE),
            saw_epipe: false,
        }
    }
}

impl Drop for SigpipeGuard {
    fn drop(&mut self) {
        if self.saw_epipe && !self.pending_before {
            sys::discard_pending_signal(libc::SIGPIPE);
        }
        // Restoring a mask obtained from pthread_sigmask cannot fail.
        let _ = sys::set_signal_mask(&self.old_mask);
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
fn poll_timeout(wake: Option<Instant>, now: Instant) -> Option<Timespec> {
    wake.map(|at| {
        let left = at.saturating_duration_since(now);
        Timespec {
            tv_sec: left.as_secs().min(i64::MAX as u64) as i64,
            tv_nsec: i64::from(left.subsec_nanos()),
        }
    })
}

/// The poll loop: services `streams` until the child has exited and every
/// stream is closed (or the post-exit `wait_delay` has passed), then reaps.
fn drive(plan: &Plan, mut running: Running, mut streams: Vec<Stream<'_>>) -> Result<Output, Error> {
    let writes = streams
        .iter()
        .any(|s| s.fd.is_some() && matches!(s.role, Role::Write { .. }));
    let mut sigpipe = writes.then(SigpipeGuard::new);

    let start = Instant::now();
    let timeout_at = plan.timeout.and_then(|t| start.checked_add(t));
    let wait_delay = plan.buffered.wait_delay;
    // `Some` once the child has exited: the end of the drain.
    let mut drain_until: Option<Instant> = None;

    const PIDFD: usize = usize::MAX;
    let mut spare: Vec<PollFd<'static>> = Vec::with_capacity(streams.len() + 1);
    let mut ready: Vec<(usize, PollFlags)> = Vec::with_capacity(streams.len() + 1);

    loop {
        let now = Instant::now();
        let open = streams.iter().any(|s| s.fd.is_some());
        match drain_until {
            Some(_) if !open => break,
            Some(until) if now >= until => {
                // What is already in the pipes is kept; only what a
                // grandchild might still write is given up.
                for s in streams.iter_mut() {
                    if matches!(s.role, Role::Read { .. }) {
                        s.service()?;
                    }
                }
                break;
            }
            None if timeout_at.is_some_and(|at| now >= at) => {
                drop(streams);
                drop(sigpipe);
                running.abort()?;
                return Err(Error::Timeout {
                    command: plan.line.to_string(),
                    timeout: plan.timeout.unwrap_or_default(),
                });
            }
            _ => {}
        }
        let wake = drain_until.or(timeout_at);

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
        let pidfd = running.pidfd();
        if drain_until.is_none() {
            fds.push(PollFd::from_borrowed_fd(pidfd, PollFlags::IN));
            ready.push((PIDFD, PollFlags::empty()));
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

        for &(i, revents) in &ready {
            if revents.is_empty() {
                continue;
            }
            if i == PIDFD {
                if running.try_wait()?.is_some() {
                    drain_until = Some(Instant::now().checked_add(wait_delay).unwrap_or(now));
                }
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
    }

    // Close what a grandchild may still hold, then restore the signal mask.
    let mut out = Output {
        status: running.wait()?.status(),
        stdout: Vec::new(),
        stderr: Vec::new(),
    };
    drop(sigpipe);
    for s in streams {
        if let Role::Read { buf, slot } = s.role {
            if slot == SLOT_STDOUT {
                out.stdout = buf;
            } else {
                out.stderr = buf;
            }
        }
    }
    Ok(out)
}

impl Stream<'_> {
    /// Does the read or write the poll result asked for; `Ok(true)` when a
    /// write found the child's end closed (EPIPE).
    fn service(&mut self) -> Result<bool, Error> {
        let Some(fd) = &self.fd else {
            return Ok(false);
        };
        match &mut self.role {
            Role::Write { data, done } => loop {
                match rustix::io::write(fd, &data[*done..]) {
                    Ok(n) => {
                        *done += n;
                        if *done >= data.len() {
                            // All written: end-of-file for the child.
                            self.fd = None;
                            return Ok(false);
                        }
                        if n == 0 {
                            return Ok(false);
                        }
                    }
                    Err(Errno::AGAIN) => return Ok(false),
                    Err(Errno::INTR) => {}
                    Err(Errno::PIPE) => {
                        // The child stopped reading: stop writing.
                        self.fd = None;
                        return Ok(true);
                    }
                    Err(e) => return Err(Error::io("writing to the child", e)),
                }
            },
            Role::Read { buf, .. } => {
                let mut reads = 0;
                while reads < READS_PER_WAKE {
                    if buf.capacity() - buf.len() < READ_CHUNK {
                        // Amortised doubling: the copies add up to O(total).
                        buf.reserve(READ_CHUNK);
                    }
                    let offered = buf.capacity() - buf.len();
                    match rustix::io::read(fd, rustix::buffer::spare_capacity(buf)) {
                        Ok(0) => {
                            self.fd = None;
                            return Ok(false);
                        }
                        // A short read emptied the pipe: back to poll.
                        Ok(n) if n < offered => return Ok(false),
                        Ok(_) => reads += 1,
                        Err(Errno::AGAIN) => return Ok(false),
                        Err(Errno::INTR) => {}
                        Err(e) => return Err(Error::io("reading from the child", e)),
                    }
                }
                Ok(false)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_is_bounded_and_starts_on_a_character() {
        assert_eq!(tail(b"short", 10), "short");
        assert_eq!(tail(b"abcdef", 3), "def");
        // "é" is C3 A9: cutting after C3 must not produce a replacement char.
        assert_eq!(tail("aé".as_bytes(), 1), "");
        assert_eq!(tail("xéz".as_bytes(), 2), "z");
        assert_eq!(tail("xéz".as_bytes(), 3), "éz");
        assert_eq!(tail(&[0xff, b'a'], 2), "\u{fffd}a");
    }

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
