//! Buffered mode's builder: the methods that switch a command to
//! [`Buffered`] and configure its in-memory streams (the loop that drives
//! them is in `crate::buffered`).

use std::path::PathBuf;
use std::time::Duration;

use super::Command;
use crate::buffered::Output;
use crate::error::Error;
use crate::mode::{Buffered, Direct};
use crate::secret::Secret;
use crate::Stdio;

/// How long to keep draining pipes after the child exited, unless
/// [`Command::wait_delay`] says otherwise.
pub(crate) const DEFAULT_WAIT_DELAY: Duration = Duration::from_secs(3);

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
    /// The bytes may be a secret (a key for `cryptsetup --key-file=-`):
    /// they are erased as [`send_buffer`](Command::send_buffer)'s are, when
    /// the command or the [`Prepared`](crate::Prepared) holding them is
    /// dropped; see there for what is not erased.
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
    /// input (which is erased). Any bytes, NUL included. Erased as
    /// [`send_buffer`](Command::send_buffer)'s bytes are.
    ///
    /// ```
    /// let out = safespawn::Command::new("wc").arg("-c").capture_stdout()
    ///     .input(vec![0u8; 100_000]).run()?;
    /// assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "100000");
    /// # Ok::<(), safespawn::Error>(())
    /// ```
    pub fn input(mut self, bytes: impl Into<Vec<u8>>) -> Self {
        self.cfg.buffered.input = Some(Secret::new(bytes));
        self.cfg.fds.stdin = Stdio::piped();
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
        self.cfg.fds.stdout = Stdio::piped();
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
        self.cfg.fds.stderr_to_stdout = false;
        self.cfg.fds.stderr = Stdio::piped();
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
        self.cfg.fds.stdout = Stdio::piped();
        self.cfg.fds.stderr = Stdio::null();
        self.cfg.fds.stderr_to_stdout = true;
        self
    }

    /// How long to keep reading after the child has exited, for output
    /// still buffered in pipes that a grandchild holds open (default 3 s,
    /// like Go's `WaitDelay`). What was read by then is returned; the
    /// grandchild is left alone. A delay too large for a deadline
    /// (`Duration::MAX`) reads until every pipe is closed.
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

    /// The child's working directory, entered after its credentials are set.
    ///
    /// # Errors
    ///
    /// `build()` refuses a path with a NUL byte
    /// ([`BuildErrorKind::Nul`](crate::BuildErrorKind::Nul)); a missing
    /// directory, or one the child may not enter, is [`Error::Spawn`] at
    /// stage [`Chdir`](crate::Stage::Chdir).
    ///
    /// # References
    ///
    /// [`chdir(2)`](https://man7.org/linux/man-pages/man2/chdir.2.html); any Linux.
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

    /// `build()?` then [`Prepared::run`](crate::Prepared::run).
    ///
    /// # Errors
    ///
    /// As [`build`](Command::build) and
    /// [`Prepared::run`](crate::Prepared::run) in buffered mode.
    ///
    /// # References
    ///
    /// As [`Prepared::run`](crate::Prepared::run) in buffered mode.
    ///
    /// ```
    /// let out = safespawn::Command::new("echo").arg("hi").capture_stdout().run()?;
    /// assert_eq!(out.stdout, b"hi\n");
    /// # Ok::<(), safespawn::Error>(())
    /// ```
    pub fn run(self) -> Result<Output, Error> {
        self.build()?.run()
    }

    /// `build()?` then [`Prepared::output`](crate::Prepared::output).
    ///
    /// # Errors
    ///
    /// As [`build`](Command::build) and
    /// [`Prepared::output`](crate::Prepared::output).
    ///
    /// # References
    ///
    /// As [`Prepared::output`](crate::Prepared::output).
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
