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

use crate::error::Error;
use crate::mode::Daemon;
use crate::prepared::Prepared;
use crate::process::Finished;
use crate::spawn;

/// The pids of a started daemon, as returned by [`Prepared::run`] in
/// daemon mode.
///
/// `intermediate` has already exited and been reaped when `run` returns
/// (its pid may be reused); it is also the daemon's session id, unless the
/// command asked for [`new_session`](crate::Command::new_session) too, which
/// gives the daemon a session of its own.
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

impl Prepared<Daemon> {
    /// Starts the daemon and returns its pids once the intermediate process
    /// has exited (and is reaped) and the daemon has exec'd, its pidfile (if
    /// any) written and locked. The command's
    /// [`timeout`](crate::Command::timeout) is not used.
    ///
    /// In a dry-run scope nothing is started: the command line is recorded,
    /// and a successful fake status gives `Daemonized { intermediate: 0,
    /// daemon: 0 }`, a failing one [`Error::Exit`].
    ///
    /// # Errors
    ///
    /// * [`Error::Spawn`] when either process fails before exec — the daemon's
    ///   own exec included — with the stage and `errno` of the first failure
    ///   reported. The intermediate runs [`Signals`](crate::Stage::Signals),
    ///   [`Stdio`](crate::Stage::Stdio), [`Fds`](crate::Stage::Fds),
    ///   [`CloseFds`](crate::Stage::CloseFds) and
    ///   [`Daemon`](crate::Stage::Daemon) (`setsid`, starting the daemon); the
    ///   daemon [`Signals`](crate::Stage::Signals),
    ///   [`Chdir`](crate::Stage::Chdir) (to "/"),
    ///   [`Pidfile`](crate::Stage::Pidfile) (`EAGAIN` or `EACCES` when another
    ///   live process holds the lock), then the steps of
    ///   [`Prepared::spawn`](crate::Prepared::spawn) from
    ///   [`Rlimit`](crate::Stage::Rlimit) to [`Exec`](crate::Stage::Exec);
    /// * [`Error::Io`] when a call in the parent fails (creating the report
    ///   pipe, `clone` or `fork`, reading the report, reaping the
    ///   intermediate); `ECHILD` when the intermediate was killed by a
    ///   signal (on the clone path a daemon it had started is killed too)
    ///   or ended without starting the daemon; `EPROTO` for a report no
    ///   child of ours can have written;
    /// * [`Error::Exit`] in a dry run, for a failing fake status.
    ///
    /// # References
    ///
    /// The intermediate is spawned as by
    /// [`Prepared::spawn`](crate::Prepared::spawn) and reaped with
    /// [`waitid(2)`](https://man7.org/linux/man-pages/man2/waitid.2.html)
    /// (`P_PIDFD`); it calls
    /// [`setsid(2)`](https://man7.org/linux/man-pages/man2/setsid.2.html) and
    /// starts the daemon with
    /// [`clone(2)`](https://man7.org/linux/man-pages/man2/clone.2.html)
    /// (`CLONE_VM | CLONE_VFORK | CLONE_PARENT_SETTID`). The daemon calls
    /// [`chdir(2)`](https://man7.org/linux/man-pages/man2/chdir.2.html) and,
    /// for the pidfile,
    /// [`open(2)`](https://man7.org/linux/man-pages/man2/open.2.html) and
    /// `F_SETLK` in
    /// [`fcntl(2)`](https://man7.org/linux/man-pages/man2/fcntl.2.html).
    /// Linux 5.4.
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
        let pids = spawn::daemon::spawn_daemon(&self.plan, &[])?;
        Ok(Daemonized {
            intermediate: pids.intermediate,
            daemon: pids.daemon,
        })
    }
}
