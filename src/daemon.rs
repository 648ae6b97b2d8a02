//! Daemon mode: `Command<Direct>::daemonize()` → `Command<Daemon>` →
//! `run()` → [`Daemonized`].
//!
//! The child becomes an *intermediate* process that calls `setsid` and
//! starts the daemon; the daemon changes to "/", acquires its pidfile if one
//! was asked for, applies the command's privileges and hooks, and execs. The
//! intermediate reports the daemon's pid and exits; [`Prepared::run`]
//! returns once it is reaped. Both processes are started with
//! `clone(CLONE_VM | CLONE_VFORK)`, so starting a daemon costs the same from
//! a small or a huge parent (only a `pre_exec` hook makes the intermediate a
//! `fork`).

use std::path::PathBuf;

use crate::command::Command;
use crate::error::Error;
use crate::mode::{Daemon, Direct};
use crate::prepared::Prepared;
use crate::process::Finished;
use crate::spawn;

/// The pids of a started daemon, as returned by [`Prepared::run`] in
/// daemon mode.
///
/// `intermediate` has already exited and been reaped when `run` returns
/// (its pid may be reused); it is also the daemon's session id.
/// `daemon` is the daemon's pid. It is not a child of the caller: watch it
/// with `pidfd_open`, or through its pidfile.
///
/// ```
/// use safespawn::Command;
/// let d = Command::new("sleep").arg("0.1").daemonize().run()?;
/// assert!(d.daemon > 0 && d.intermediate > 0 && d.daemon != d.intermediate);
/// # Ok::<(), safespawn::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Daemonized {
    /// The pid of the intermediate process (exited and reaped).
    pub intermediate: i32,
    /// The pid of the daemon.
    pub daemon: i32,
}

impl Command<Direct> {
    /// Turns the command into a daemon (libvirt's virCommandDaemonize):
    /// double fork, new session, working directory "/", stdio as set before
    /// (default `/dev/null`). Only a synchronous [`run`](Command::run)
    /// starts it; [`pidfile`](Command::pidfile) asks for a locked pidfile.
    ///
    /// The working directory, `Stdio::piped()` and a parent-death signal make
    /// no sense for a daemon: set before `daemonize`, they are build errors.
    ///
    /// ```
    /// use safespawn::{Command, Daemon};
    /// let cmd: Command<Daemon> = Command::new("sleep").arg("0.1").daemonize();
    /// let d = cmd.run()?;
    /// assert!(d.daemon > 0);
    /// # Ok::<(), safespawn::Error>(())
    /// ```
    ///
    /// A daemon has no `spawn`: `run` waits for the intermediate process, so
    /// the pidfile is on disk when it returns.
    ///
    /// ```compile_fail
    /// let running = safespawn::Command::new("sleep").daemonize().spawn();
    /// ```
    ///
    /// nor a working directory (it runs in "/"):
    ///
    /// ```compile_fail
    /// let cmd = safespawn::Command::new("sleep").daemonize().current_dir("/tmp");
    /// ```
    ///
    /// nor in-memory buffers (nothing would service them once the
    /// intermediate has exited):
    ///
    /// ```compile_fail
    /// let cmd = safespawn::Command::new("sleep").daemonize().capture_stdout();
    /// ```
    ///
    /// and its stdio is chosen before `daemonize`:
    ///
    /// ```compile_fail
    /// let cmd = safespawn::Command::new("sleep").daemonize().stdout(safespawn::Stdio::null());
    /// ```
    pub fn daemonize(self) -> Command<Daemon> {
        let mut cmd: Command<Daemon> = self.into_mode();
        cmd.cfg.daemon = Some(None);
        cmd
    }
}

impl Command<Daemon> {
    /// The daemon's pidfile. The daemon itself creates it (mode 0644 before
    /// the umask), takes a POSIX write lock on the whole file (`fcntl`
    /// `F_SETLK`), truncates it, writes its pid and a newline, and keeps the
    /// fd open across exec, so the lock lives exactly as long as the daemon.
    /// A pidfile locked by another live process makes `run` fail with
    /// [`Error::Spawn`] at stage [`Pidfile`](crate::Stage::Pidfile) and
    /// `EAGAIN` (or `EACCES`). A relative path is taken relative to the
    /// caller's working directory at `build()`.
    ///
    /// The lock is released when the daemon exits, or if it ever closes any
    /// fd open on that file.
    ///
    /// ```
    /// let dir = std::env::temp_dir().join(format!("safespawn-doc-{}", std::process::id()));
    /// std::fs::create_dir_all(&dir).unwrap();
    /// let pidfile = dir.join("sleep.pid");
    /// let d = safespawn::Command::new("sleep").arg("0.1").daemonize().pidfile(&pidfile).run()?;
    /// let text = std::fs::read_to_string(&pidfile).unwrap();
    /// assert_eq!(text, format!("{}\n", d.daemon));
    /// # std::fs::remove_dir_all(&dir).unwrap();
    /// # Ok::<(), safespawn::Error>(())
    /// ```
    ///
    /// A pidfile exists only for a daemon:
    ///
    /// ```compile_fail
    /// let cmd = safespawn::Command::new("sleep").pidfile("/run/sleep.pid");
    /// ```
    pub fn pidfile(mut self, path: impl Into<PathBuf>) -> Self {
        self.cfg.daemon = Some(Some(path.into()));
        self
    }

    /// `build()?` then [`Prepared::run`].
    ///
    /// ```
    /// let d = safespawn::Command::new("true").daemonize().run()?;
    /// assert!(d.daemon > 0);
    /// # Ok::<(), safespawn::Error>(())
    /// ```
    pub fn run(self) -> Result<Daemonized, Error> {
        self.build()?.run()
    }
}

impl Prepared<Daemon> {
    /// Starts the daemon and returns its pids once the intermediate process
    /// has exited (and is reaped) and the daemon has exec'd, its pidfile (if
    /// any) written and locked. A failure of either process before exec —
    /// the daemon's own exec included — is an [`Error::Spawn`] with its stage
    /// and errno.
    ///
    /// In a dry-run scope nothing is started: the command line is recorded,
    /// and a successful fake status gives `Daemonized { intermediate: 0,
    /// daemon: 0 }`, a failing one [`Error::Exit`].
    ///
    /// ```
    /// use safespawn::{Command, Error, Stage};
    /// let p = Command::new("/etc/passwd").daemonize().build()?;
    /// match p.run() {
    ///     Err(Error::Spawn { stage: Stage::Exec, errno, .. }) => {
    ///         assert_eq!(errno, safespawn::Errno::ACCESS)
    ///     }
    ///     other => panic!("unexpected {other:?}"),
    /// }
    /// # Ok::<(), safespawn::Error>(())
    /// ```
    pub fn run(&self) -> Result<Daemonized, Error> {
        if let Some(outcome) = crate::dry_run::intercept(&self.plan.line) {
            Finished::new(outcome.status, self.plan.line.clone()).check()?;
            return Ok(Daemonized {
                intermediate: 0,
                daemon: 0,
            });
        }
        let pids = spawn::spawn_daemon(&self.plan, &[])?;
        Ok(Daemonized {
            intermediate: pids.intermediate,
            daemon: pids.daemon,
        })
    }
}
