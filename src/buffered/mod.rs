//! Buffered mode: in-memory stdin, captured stdout and stderr, send buffers,
//! all driven by one poll loop in the calling thread (libvirt's
//! virCommandSetInputBuffer, SetOutputBuffer, SetErrorBuffer, SetSendBuffer
//! and virCommandProcessIO), or, with the `tokio` or `async-io` feature, by
//! the runtime's reactor (`output_async`, `run_async`).
//!
//! The two drivers share everything but the waiting: `streams.rs` reads and
//! writes a pipe that may be ready (`Stream::service`), `state.rs` decides
//! when the run ends (`Schedule`: the exit, the drain, the timeout) and
//! puts the outcome together; `poll.rs` waits with `poll(2)`, `reactor.rs`
//! with the reactor (each pipe registered once, readiness a hint, a
//! bounded share of work per poll). The rules below hold for both.
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
//!    with the child's pidfd (where the kernel cannot poll pidfds, before
//!    Linux 5.3, the loop also wakes every few milliseconds to ask whether
//!    the child has exited). Every stream is serviced whenever it is ready, so
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
//!    [`wait_delay`](crate::Command::wait_delay) (3 s by default): a grandchild that
//!    inherited the pipes may hold them open for ever (Go's issue 23019).
//!    What was read by then is returned;
//! 7. past [`timeout`](crate::Command::timeout) the child is aborted (TERM, a short
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

use std::process::ExitStatus;

use crate::error::Error;
use crate::mode::Buffered;
use crate::prepared::Prepared;
use crate::process::Running;
use crate::spawn;

pub(crate) mod poll;
#[cfg(any(feature = "tokio", feature = "async-io"))]
mod reactor;
mod state;
pub(crate) mod streams;

use self::streams::{Pipes, Stream};

/// How much of the captured stderr an [`Error::Exit`] carries (its end).
pub(crate) const STDERR_TAIL: usize = 4096;

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
    /// [`capture_interleaved`](crate::Command::capture_interleaved), stdout and
    /// stderr in the order written); empty when not captured.
    pub stdout: Vec<u8>,
    /// Everything the child wrote to stderr; empty when not captured or
    /// interleaved.
    pub stderr: Vec<u8>,
}

impl Prepared<Buffered> {
    /// Runs the child to completion, feeding and capturing its streams;
    /// a non-zero exit or a death by signal is [`Error::Exit`] carrying the
    /// quoted command line and the end of the captured stderr (of the
    /// interleaved output with
    /// [`capture_interleaved`](crate::Command::capture_interleaved)).
    ///
    /// # Errors
    ///
    /// * [`Error::Exit`] when the child exits non-zero or is killed by a
    ///   signal, carrying the last 4 KiB of the captured stderr (of the
    ///   interleaved output with `capture_interleaved`; empty when neither
    ///   is captured), also for a fake status in a dry run;
    /// * otherwise as [`output`](Prepared::output).
    ///
    /// # References
    ///
    /// As [`output`](Prepared::output).
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
        self.check(self.output()?)
    }

    /// `out` if its status is a success, else the [`Error::Exit`] of `run`.
    fn check(&self, out: Output) -> Result<Output, Error> {
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
    /// # Errors
    ///
    /// * [`Error::Timeout`] past the command's
    ///   [`timeout`](crate::Command::timeout), once the child is aborted and
    ///   reaped, carrying what was captured by then;
    /// * [`Error::Io`] when creating a pipe or making it non-blocking,
    ///   polling, reading from the child, writing to it (an `EPIPE` is not an
    ///   error: the child stopped reading, and writing stops) or waiting for
    ///   it fails; a child already started is aborted and reaped;
    /// * [`Error::Spawn`], and [`Error::Io`] from the spawn itself, as for
    ///   [`Prepared::spawn`](crate::Prepared::spawn).
    ///
    /// In a [dry run](crate::dry_run) nothing is spawned and nothing fails:
    /// the fake [`Outcome`](crate::dry_run::Outcome) is returned as it is.
    ///
    /// # References
    ///
    /// [`pipe2(2)`](https://man7.org/linux/man-pages/man2/pipe2.2.html) (and
    /// `F_SETPIPE_SZ` in
    /// [`fcntl(2)`](https://man7.org/linux/man-pages/man2/fcntl.2.html), best
    /// effort), [`poll(2)`](https://man7.org/linux/man-pages/man2/poll.2.html)
    /// on the pipes and the child's pidfd (Linux 5.3), then
    /// [`waitid(2)`](https://man7.org/linux/man-pages/man2/waitid.2.html) with
    /// `P_PIDFD`; the spawn as [`Prepared::spawn`](crate::Prepared::spawn).
    /// Linux 5.4.
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
        match self.start()? {
            Started::DryRun(out) => Ok(out),
            Started::Child(running, streams) => poll::drive(&self.plan, running, streams),
        }
    }

    /// Creates the pipes and spawns the child (or, in a dry run, returns
    /// the fake outcome): what both drivers start from.
    fn start(&self) -> Result<Started<'_>, Error> {
        let plan = &*self.plan;
        if let Some(outcome) = crate::dry_run::intercept(plan) {
            return Ok(Started::DryRun(Output {
                status: outcome.status,
                stdout: outcome.stdout,
                stderr: outcome.stderr,
            }));
        }
        let pipes = Pipes::new(plan)?;
        let child = spawn::spawn(plan, &pipes.child_fds)?;
        // The child has its copies now. Ours must go before any I/O, or a
        // child that stops reading never makes our writes fail with EPIPE.
        let Pipes {
            streams,
            child_fds: _,
            child_ends,
        } = pipes;
        drop(child_ends);
        // From here the child is owned by `running`: any early return aborts
        // and reaps it.
        let running = Running::new(child, [None, None, None], plan.line.clone());
        Ok(Started::Child(running, streams))
    }
}

/// A buffered run, started.
#[allow(
    clippy::large_enum_variant,
    reason = "short-lived, on the stack; a `Running` keeps its send buffers' write ends in place so that spawning allocates nothing"
)]
enum Started<'d> {
    /// A dry run's fake outcome: nothing was spawned.
    DryRun(Output),
    /// The child, and the parent's ends of its pipes.
    Child(Running, Vec<Stream<'d>>),
}

#[cfg(any(feature = "tokio", feature = "async-io"))]
impl Prepared<Buffered> {
    /// [`run`](Prepared::run), driven by the runtime's reactor instead of
    /// a blocking poll loop: a non-zero exit or a death by signal is
    /// [`Error::Exit`] with the end of the captured stderr.
    ///
    /// # Errors
    ///
    /// As [`run`](Prepared::run) and [`output_async`](Prepared::output_async).
    ///
    /// # References
    ///
    /// As [`output_async`](Prepared::output_async).
    ///
    /// ```
    /// # #[cfg(feature = "tokio")]
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let p = safespawn::Command::new("sh").args(["-c", "echo oops >&2; exit 2"])
    ///     .capture_stderr().build()?;
    /// let err = p.run_async().await.unwrap_err();
    /// assert!(err.to_string().ends_with("exited with status 2; stderr:\noops"));
    /// # Ok::<(), safespawn::Error>(())
    /// # }).unwrap();
    /// ```
    pub async fn run_async(&self) -> Result<Output, Error> {
        self.check(self.output_async().await?)
    }

    /// [`output`](Prepared::output), driven by the runtime's reactor: the
    /// same pipes (non-blocking, 1 MiB where the kernel allows), the same
    /// decisions (input, captures, interleaving, send buffers, `EPIPE` as
    /// the end of writing, [`wait_delay`](crate::Command::wait_delay),
    /// [`timeout`](crate::Command::timeout) with the output so far), shared
    /// with the synchronous loop; only the waiting differs. Each pipe and
    /// the child's pidfd are registered with the reactor (see
    /// [`Running::wait_async`](crate::Running::wait_async) for which
    /// runtime, and for kernels whose pidfds cannot be polled). One poll
    /// does a bounded amount of work and then yields, so other tasks on the
    /// same thread keep running while data moves.
    ///
    /// Dropping the future before it finishes kills and reaps the child, as
    /// dropping a [`Running`](crate::Running) does (synchronously).
    ///
    /// # Errors
    ///
    /// As [`output`](Prepared::output); an abort at the timeout is
    /// [`Running::abort_async`](crate::Running::abort_async); and
    /// [`Error::Io`] when the reactor refuses a pipe or the pidfd, or (with
    /// the `tokio` feature only) outside a tokio runtime, before anything
    /// is spawned.
    ///
    /// # References
    ///
    /// As [`output`](Prepared::output), with the reactor's
    /// [`epoll(7)`](https://man7.org/linux/man-pages/man7/epoll.7.html) in
    /// place of `poll(2)`.
    ///
    /// ```
    /// # #[cfg(feature = "tokio")]
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let p = safespawn::Command::new("tr").args(["a-z", "A-Z"]).input("abc")
    ///     .capture_stdout().build()?;
    /// let out = p.output_async().await?;
    /// assert_eq!(out.stdout, b"ABC");
    /// # Ok::<(), safespawn::Error>(())
    /// # }).unwrap();
    /// ```
    pub async fn output_async(&self) -> Result<Output, Error> {
        // Outside any runtime (tokio alone): fail before there is a child.
        crate::runtime::current()?;
        match self.start()? {
            Started::DryRun(out) => Ok(out),
            Started::Child(running, streams) => reactor::drive(&self.plan, running, streams).await,
        }
    }
}

/// The last `max` bytes of `bytes` as text, starting at a character boundary.
pub(crate) fn tail(bytes: &[u8], max: usize) -> String {
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
}
