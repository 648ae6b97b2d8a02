//! [`Command::send_buffer`], in every mode. The child numbers are checked
//! and placed with the other fds (`fds::FdConfig::freeze`); the bytes move
//! into the plan, erased with it (`crate::secret`); the pipes are made and
//! written per spawn by `crate::send` (Direct, Daemon) or by the buffered
//! run's loop (`crate::buffered`).

use std::os::fd::RawFd;

use super::Command;
use crate::mode::Mode;
use crate::secret::Secret;

impl<M: Mode> Command<M> {
    /// Gives the child the read end of a new pipe at `child_fd`, through
    /// which it reads `bytes`, then end-of-file (libvirt's SetSendBuffer).
    /// Any bytes, NUL included. The mode stays what it is.
    ///
    /// **Who writes, when.** Several buffers are written concurrently, so a
    /// child may read them in any order. A write end is non-blocking, its
    /// pipe grown toward the buffer's length (at most 1 MiB, a default
    /// `pipe-max-size`: more would pin that much kernel memory per
    /// spawn), and closed as soon as everything is written.
    ///
    /// * [`Direct`](crate::Direct): [`Prepared::spawn`](crate::Prepared::spawn)
    ///   writes what the pipe takes right after the child has exec'd; a
    ///   buffer that went in whole has its pipe closed before `spawn`
    ///   returns. The rest is written while the child is waited for:
    ///   [`Running::wait`](crate::Running::wait),
    ///   [`wait_timeout`](crate::Running::wait_timeout),
    ///   `wait_async` (features `tokio`, `async-io`: on the reactor) and
    ///   the run methods built on them; [`try_wait`](crate::Running::try_wait)
    ///   writes what fits without blocking. A child that exits or closes
    ///   its end stops the writing, which is not an error. Dropping,
    ///   aborting or [`detach`](crate::Running::detach)ing the `Running`
    ///   closes the pipes: the child sees end-of-file early. With
    ///   [`spawn_paused`](crate::Prepared::spawn_paused), what fits is
    ///   written before it returns, the rest after the resume;
    /// * [`Buffered`](crate::Buffered): the run's loop writes them with
    ///   the other streams;
    /// * [`Daemon`](crate::Daemon): the daemon gets the read end (the
    ///   intermediate process has it only to hand it on).
    ///   [`Prepared::run`](crate::Prepared::run) returns once every buffer
    ///   is written, or the daemon closed its end or exited: a daemon that
    ///   does neither, with a buffer larger than its pipe, keeps `run`
    ///   waiting. [`spawn_paused`](crate::Prepared::spawn_paused) writes
    ///   what fits, [`PausedDaemon::resume`](crate::PausedDaemon::resume)
    ///   the rest.
    ///
    /// The write ends are close-on-exec and never reach the child, the
    /// daemon or any other child. While this process writes, SIGPIPE is
    /// blocked in the writing thread (a child gone is `EPIPE`, not a
    /// signal), as in [`Buffered`](crate::Buffered) mode.
    ///
    /// **Erasure.** Send buffers carry secrets (a key for
    /// `cryptsetup --key-file=/dev/fd/3`), so the memory that holds them is
    /// overwritten with zeros (volatile writes, the whole allocation, its
    /// spare capacity too) before it is freed: when the command is dropped
    /// unbuilt or fails to build, and otherwise when the last owner of the
    /// built plan goes: the [`Prepared`](crate::Prepared) (it is reusable,
    /// so it keeps the bytes), and a `Running`, `Paused` or `PausedDaemon`
    /// still writing them. A one-shot `Command::run`/`output`/`spawn`
    /// builds a `Prepared` of its own, so there the bytes are erased before
    /// `run` or `output` returns, and when the `Running` of `spawn` is
    /// done writing. `build` moves the bytes, and nothing copies them: a
    /// `Vec<u8>` or `String` passed in is the one copy; a `&[u8]` or
    /// `&str` is copied once, and the caller's own is not erased. Not
    /// erased either: the kernel's pipe buffer (freed by the kernel) and
    /// whatever the child does with the bytes.
    ///
    /// **Cost.** Per spawn, a pipe per buffer and a few system calls
    /// around it; up to 4 send buffers a `Direct` or `Daemon` spawn
    /// allocates nothing, each one beyond makes its share of two small
    /// allocations (the child's fd list and the pending write ends).
    ///
    /// # Errors
    ///
    /// `build()` refuses a `child_fd` that is negative or not below the
    /// parent's `RLIMIT_NOFILE`
    /// ([`BuildErrorKind::Invalid`](crate::BuildErrorKind::Invalid)) and one
    /// already planned (stdio, `pass_fd`, `map_fd`, another send buffer)
    /// with [`BuildErrorKind::Collision`](crate::BuildErrorKind::Collision),
    /// each naming `child fd N (send_buffer)`; a
    /// [`Pipeline`](crate::Pipeline) refuses a stage with a send buffer
    /// ([`BuildErrorKind::Conflict`](crate::BuildErrorKind::Conflict)).
    /// Creating a pipe at the spawn is [`Error::Io`](crate::Error::Io) if
    /// it fails (`EMFILE`), as is a write that fails otherwise than by the
    /// child's end being closed.
    ///
    /// # References
    ///
    /// [`pipe2(2)`](https://man7.org/linux/man-pages/man2/pipe2.2.html)
    /// with `O_CLOEXEC`,
    /// [`dup3(2)`](https://man7.org/linux/man-pages/man2/dup3.2.html) in
    /// the child, `F_SETPIPE_SZ` in
    /// [`fcntl(2)`](https://man7.org/linux/man-pages/man2/fcntl.2.html)
    /// (Linux 2.6.35; refused or capped, see
    /// [`pipe(7)`](https://man7.org/linux/man-pages/man7/pipe.7.html): the
    /// default 64 KiB then),
    /// [`poll(2)`](https://man7.org/linux/man-pages/man2/poll.2.html) on the
    /// write ends and the child's pidfd,
    /// [`pthread_sigmask(3)`](https://man7.org/linux/man-pages/man3/pthread_sigmask.3.html)
    /// around the writes; Linux 2.6.27 (the spawn's own minimum applies).
    ///
    /// ```
    /// use safespawn::{Command, Stdio};
    /// use std::io::Read;
    ///
    /// // Direct: the child reads fd 3 while this process waits for it.
    /// let mut child = Command::new("sh").args(["-c", "cat <&3"])
    ///     .send_buffer(3, "secret")
    ///     .stdout(Stdio::piped())
    ///     .spawn()?;
    /// let mut out = String::new();
    /// child.take_stdout().unwrap().read_to_string(&mut out).unwrap();
    /// assert!(child.wait()?.success());
    /// assert_eq!(out, "secret");
    ///
    /// // Buffered: written by the run's loop, several at once.
    /// let out = Command::new("sh").args(["-c", "cat <&4; cat <&3"])
    ///     .send_buffer(3, "three")
    ///     .send_buffer(4, "four ")
    ///     .capture_stdout()
    ///     .run()?;
    /// assert_eq!(out.stdout, b"four three");
    ///
    /// // Daemon: the daemon gets it; `run` returns once it is written.
    /// let dir = std::env::temp_dir().join(format!("safespawn-send-doc-{}", std::process::id()));
    /// std::fs::create_dir_all(&dir).unwrap();
    /// let file = dir.join("key");
    /// Command::new("sh").args(["-c", "cat <&3 > \"$0\"", file.to_str().unwrap()])
    ///     .daemonize()
    ///     .send_buffer(3, vec![7u8; 10])
    ///     .run()?;
    /// # for _ in 0..500 {
    /// #     if std::fs::read(&file).map_or(false, |b| b.len() == 10) { break }
    /// #     std::thread::sleep(std::time::Duration::from_millis(10));
    /// # }
    /// assert_eq!(std::fs::read(&file).unwrap(), [7u8; 10]);
    /// # std::fs::remove_dir_all(&dir).unwrap();
    ///
    /// // A number already planned is a build error naming it.
    /// let err = Command::new("true").send_buffer(1, "x").build().unwrap_err();
    /// assert!(err.to_string().contains("child fd 1 (send_buffer)"), "{err}");
    /// # Ok::<(), safespawn::Error>(())
    /// ```
    pub fn send_buffer(mut self, child_fd: RawFd, bytes: impl Into<Vec<u8>>) -> Self {
        self.cfg.send_buffers.push((child_fd, Secret::new(bytes)));
        self
    }
}
