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
//!
//! [`Prepared::spawn_paused`] (libvirt's Daemonize + SetPidFile +
//! RequireHandshake) stops the daemon just before exec, its pidfile written
//! and locked, so the caller can set up its cgroup or label by pid; then
//! [`PausedDaemon::resume`] lets it exec (HandshakeNotify).

use std::sync::Arc;

use crate::error::Error;
use crate::mode::Daemon;
use crate::plan::Plan;
use crate::prepared::Prepared;
use crate::process::Finished;
use crate::send::{SendPipes, SendWriter};
use crate::spawn;
use crate::spawn::daemon::PausedDaemonChild;

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
    /// any) written and locked, and every
    /// [send buffer](crate::Command::send_buffer) is written (or the
    /// daemon has closed its end or exited). A daemonized command has no
    /// [`timeout`](crate::Command::timeout) (`build` refuses one): a daemon
    /// that neither reads a buffer larger than its pipe nor exits keeps
    /// `run` waiting.
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
    ///   pipe or a send buffer's pipe, `clone` or `fork`, reading the
    ///   report, reaping the intermediate, writing a send buffer otherwise
    ///   than into a pipe whose reader is gone); `ECHILD` when the intermediate was killed by a
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
        if let Some(outcome) = crate::dry_run::intercept(&self.plan) {
            Finished::new(outcome.status, self.plan.line.clone()).check()?;
            return Ok(Daemonized {
                intermediate: 0,
                daemon: 0,
            });
        }
        let sends = SendPipes::new(&self.plan)?;
        let pids = spawn::daemon::spawn_daemon(&self.plan, sends.slots([-1; 3]).as_slice())?;
        // The daemon is not ours to wait for: the writing ends when every
        // buffer is in, or with `EPIPE` once the daemon (the last holder
        // of the read ends) has closed them or exited.
        sends.start(&self.plan)?.drive(None, None)?;
        Ok(Daemonized {
            intermediate: pids.intermediate,
            daemon: pids.daemon,
        })
    }
}

impl Prepared<Daemon> {
    /// Starts the daemon stopped just before exec (libvirt's Daemonize +
    /// RequireHandshake): returns once the intermediate process has exited
    /// (and is reaped) and the daemon waits at its pause, after every step
    /// but the exec — its pidfile written and locked, its privileges,
    /// hooks and landlock ruleset applied, and as much of each
    /// [send buffer](crate::Command::send_buffer) written as its pipe
    /// takes (the rest is written by [`PausedDaemon::resume`]). Move
    /// [`pids().daemon`](PausedDaemon::pids) into a cgroup, say, then
    /// [`PausedDaemon::resume`] lets it exec. Dropping the [`PausedDaemon`]
    /// instead kills the daemon and waits until it is gone, so its pidfile
    /// lock is free again (the file stays, naming the dead daemon, as a
    /// daemon that died would leave it).
    ///
    /// This takes the fork path: the intermediate is forked, and it starts
    /// the daemon with a fork-style `clone` (the daemon waits in memory of
    /// its own, not on the intermediate's).
    ///
    /// # Errors
    ///
    /// As [`run`](Prepared::run) for the steps before the pause (an exec
    /// failure is reported by [`PausedDaemon::resume`]), and:
    ///
    /// * [`Error::Build`] with
    ///   [`BuildErrorKind::Conflict`](crate::BuildErrorKind::Conflict) when
    ///   the command has [`forbid_fork`](crate::Command::forbid_fork), or
    ///   inside a [dry run](crate::dry_run), which cannot fake a live child;
    /// * [`Error::Spawn`] at stage [`Handshake`](crate::Stage::Handshake)
    ///   when the daemon cannot report that it reached the pause;
    /// * [`Error::Io`] (`ECHILD`) when the daemon ends before the pause
    ///   without a report (killed by a signal, say).
    ///
    /// # References
    ///
    /// [`fork(2)`](https://man7.org/linux/man-pages/man2/fork.2.html) for the
    /// intermediate, which calls
    /// [`setsid(2)`](https://man7.org/linux/man-pages/man2/setsid.2.html) and
    /// [`clone(2)`](https://man7.org/linux/man-pages/man2/clone.2.html)
    /// (`SIGCHLD` only) for the daemon;
    /// [`waitid(2)`](https://man7.org/linux/man-pages/man2/waitid.2.html) for
    /// the intermediate;
    /// [`pidfd_open(2)`](https://man7.org/linux/man-pages/man2/pidfd_open.2.html)
    /// for the daemon (Linux 5.3; without it the daemon is killed by pid,
    /// only while it is seen alive); a
    /// [`pipe2(2)`](https://man7.org/linux/man-pages/man2/pipe2.2.html) the
    /// daemon reads until resumed. Linux 5.4.
    ///
    /// ```
    /// use safespawn::Command;
    /// let dir = std::env::temp_dir().join(format!("safespawn-doc-{}", std::process::id()));
    /// std::fs::create_dir_all(&dir)?;
    /// let pidfile = dir.join("sleep.pid");
    /// let p = Command::new("sleep").arg("0.1").daemonize().pidfile(&pidfile).build()?;
    /// let paused = p.spawn_paused()?;
    /// // Written and locked before the daemon runs the program.
    /// let pid = paused.pids().daemon;
    /// assert_eq!(std::fs::read_to_string(&pidfile)?, format!("{pid}\n"));
    /// // ... move `pid` into a cgroup, say ...
    /// assert_eq!(paused.resume()?.daemon, pid);
    /// # std::thread::sleep(std::time::Duration::from_millis(200));
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn spawn_paused(&self) -> Result<PausedDaemon, Error> {
        crate::dry_run::refuse_spawn(&self.plan.line)?;
        let sends = SendPipes::new(&self.plan)?;
        let child =
            spawn::daemon::spawn_daemon_paused(&self.plan, sends.slots([-1; 3]).as_slice())?;
        let mut paused = PausedDaemon {
            child,
            plan: self.plan.clone(),
            sends: SendWriter::none(),
        };
        // What fits goes in now (a failed write drops `paused`: the daemon
        // is killed), the rest after the resume.
        paused.sends = sends.start(&self.plan)?;
        Ok(paused)
    }
}

/// A daemon stopped just before exec by
/// [`Prepared::spawn_paused`](Prepared::spawn_paused) (libvirt's daemon
/// handshake). Its intermediate process has exited and been reaped; its
/// pidfile (if any) is written and locked. Dropping it unresumed kills the
/// daemon and returns once it has exited, its pidfile lock released.
///
/// ```
/// use safespawn::Command;
/// let paused = Command::new("true").daemonize().build()?.spawn_paused()?;
/// let pids = paused.pids();
/// assert!(pids.daemon > 0 && pids.daemon != pids.intermediate);
/// drop(paused); // the daemon is killed; `true` never runs
/// # Ok::<(), safespawn::Error>(())
/// ```
#[derive(Debug)]
pub struct PausedDaemon {
    child: PausedDaemonChild,
    plan: Arc<Plan>,
    /// The send buffers not yet written whole: the rest is written by
    /// `resume`, and closed if the daemon is dropped unresumed.
    sends: SendWriter,
}

impl PausedDaemon {
    /// The pids: the intermediate (exited and reaped, so its pid may be
    /// reused) and the paused daemon, which is not a child of the caller.
    ///
    /// ```
    /// use safespawn::Command;
    /// let paused = Command::new("true").daemonize().build()?.spawn_paused()?;
    /// // Not exec'd yet: still a copy of this program.
    /// let exe = std::fs::read_link(format!("/proc/{}/exe", paused.pids().daemon))?;
    /// assert_eq!(exe, std::env::current_exe()?);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn pids(&self) -> Daemonized {
        Daemonized {
            intermediate: self.child.pids.intermediate,
            daemon: self.child.pids.daemon,
        }
    }

    /// Lets the daemon exec (libvirt's HandshakeNotify); returns its pids
    /// once it has, and has been sent what is left of its
    /// [send buffers](crate::Command::send_buffer) (or has closed its end
    /// or exited).
    ///
    /// # Errors
    ///
    /// * [`Error::Spawn`] at stage [`Exec`](crate::Stage::Exec) when the
    ///   daemon's exec fails (or [`Handshake`](crate::Stage::Handshake) when
    ///   it cannot read the go-ahead); the daemon has exited when this
    ///   returns, its pidfile lock released;
    /// * [`Error::Io`] when writing the go-ahead or reading the daemon's
    ///   report fails; the daemon is then killed, as by dropping.
    ///
    /// # References
    ///
    /// [`write(2)`](https://man7.org/linux/man-pages/man2/write.2.html) on the
    /// pipe the daemon waits on, then its
    /// [`execve(2)`](https://man7.org/linux/man-pages/man2/execve.2.html),
    /// seen as the end of its close-on-exec report pipe; the daemon was
    /// made by [`Prepared::spawn_paused`](Prepared::spawn_paused). Linux 5.3.
    ///
    /// ```
    /// use safespawn::{Command, Error, Stage};
    /// let paused = Command::new("/etc/passwd").daemonize().build()?.spawn_paused()?;
    /// match paused.resume() {
    ///     Err(Error::Spawn { stage: Stage::Exec, errno, .. }) => {
    ///         assert_eq!(errno, safespawn::Errno::ACCESS)
    ///     }
    ///     other => panic!("unexpected {other:?}"),
    /// }
    /// # Ok::<(), safespawn::Error>(())
    /// ```
    pub fn resume(mut self) -> Result<Daemonized, Error> {
        let pids = spawn::daemon::resume_daemon(&self.plan, &mut self.child)?;
        // Exec'd: no longer ours to kill.
        self.child.pidfd = None;
        // As `run`: until every buffer is in or the daemon is gone.
        self.sends.drive(None, None)?;
        Ok(Daemonized {
            intermediate: pids.intermediate,
            daemon: pids.daemon,
        })
    }
}

impl Drop for PausedDaemon {
    /// Kills the daemon unless it was resumed and exec'd, and waits until
    /// it has exited.
    fn drop(&mut self) {
        if self.child.pidfd.is_some() || self.child.resume.is_some() {
            self.child.kill();
        }
    }
}
