//! Daemon mode's builder: `Command<Direct>::daemonize()` →
//! `Command<Daemon>`, the pidfile, and the checks `build()` makes.

use std::path::PathBuf;

use super::argv::cstring;
use super::Command;
use crate::child::daemon::DaemonPlan;
use crate::daemon::Daemonized;
use crate::error::{BuildErrorKind, Error};
use crate::mode::{Daemon, Direct};
use crate::quote::shown;

/// What a daemon command records.
#[derive(Debug, Default)]
pub(crate) struct DaemonConfig {
    pub pidfile: Option<PathBuf>,
}

impl Command<Direct> {
    /// Turns the command into a daemon (libvirt's virCommandDaemonize):
    /// double fork, new session, working directory "/", stdio as set before
    /// (default `/dev/null`). Only a synchronous [`run`](Command::run)
    /// starts it; [`pidfile`](Command::pidfile) asks for a locked pidfile.
    ///
    /// # Errors
    ///
    /// The working directory, `Stdio::piped()` and a parent-death signal make
    /// no sense for a daemon: set before `daemonize`, they make `build()`
    /// fail with [`BuildErrorKind::Conflict`]. The intermediate's failure to
    /// create the session or to start the daemon is [`Error::Spawn`] at
    /// stage [`Daemon`](crate::Stage::Daemon); the daemon's failure to change
    /// to "/" is at stage [`Chdir`](crate::Stage::Chdir); see
    /// [`Prepared::run`](crate::Prepared::run) for the rest.
    ///
    /// # References
    ///
    /// [`setsid(2)`](https://man7.org/linux/man-pages/man2/setsid.2.html) in
    /// the intermediate, which starts the daemon with
    /// [`clone(2)`](https://man7.org/linux/man-pages/man2/clone.2.html)
    /// (`CLONE_VM | CLONE_VFORK | CLONE_PARENT_SETTID`);
    /// [`chdir(2)`](https://man7.org/linux/man-pages/man2/chdir.2.html) in the
    /// daemon. The intermediate itself is spawned and reaped as any child
    /// (see [`Prepared::spawn`](crate::Prepared::spawn)): Linux 5.4.
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
        cmd.cfg.daemon = Some(DaemonConfig::default());
        cmd
    }
}

impl Command<Daemon> {
    /// The daemon's pidfile. The daemon itself creates it (mode 0644 before
    /// the umask the caller's process has: the command's own
    /// [`umask`](Command::umask) is set after the pidfile, as are its
    /// credentials), takes a POSIX write lock on the whole file (`fcntl`
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
    /// # Errors
    ///
    /// `build()` refuses an empty path ([`BuildErrorKind::Invalid`]) or one
    /// with a NUL byte ([`BuildErrorKind::Nul`]), and a relative path when
    /// the caller's working directory cannot be determined
    /// ([`BuildErrorKind::Invalid`]); the daemon's failure to create, lock or
    /// write it is [`Error::Spawn`] at stage
    /// [`Pidfile`](crate::Stage::Pidfile).
    ///
    /// # References
    ///
    /// `F_SETLK` in [`fcntl(2)`](https://man7.org/linux/man-pages/man2/fcntl.2.html);
    /// any Linux.
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
        self.cfg.daemon = Some(DaemonConfig {
            pidfile: Some(path.into()),
        });
        self
    }

    /// `build()?` then [`Prepared::run`](crate::Prepared::run).
    ///
    /// # Errors
    ///
    /// As [`build`](Command::build) and
    /// [`Prepared::run`](crate::Prepared::run) in daemon mode.
    ///
    /// # References
    ///
    /// As [`Prepared::run`](crate::Prepared::run) in daemon mode.
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

impl DaemonConfig {
    /// Daemon mode's checks, and the pidfile path made absolute: the daemon
    /// opens it after changing to "/", so a relative path is resolved here,
    /// against the caller's working directory.
    pub(crate) fn freeze(
        self,
        cwd: Option<&std::path::Path>,
        stdio_pipes: [bool; 3],
        has_parent_death_signal: bool,
        timeout: Option<std::time::Duration>,
    ) -> Result<DaemonPlan, Error> {
        if let Some(dir) = cwd {
            return Err(Error::build(
                BuildErrorKind::Conflict,
                format!("working directory {}", shown(dir.as_os_str())),
                "a daemon always runs in \"/\"; current_dir cannot be combined with daemonize",
            ));
        }
        for (name, piped) in ["stdin", "stdout", "stderr"].into_iter().zip(stdio_pipes) {
            if piped {
                return Err(Error::build(
                    BuildErrorKind::Conflict,
                    name,
                    "a daemon cannot use Stdio::piped(): nothing would service the pipe",
                ));
            }
        }
        if let Some(t) = timeout {
            return Err(Error::build(
                BuildErrorKind::Conflict,
                format!("timeout {t:?}"),
                "a daemon is not waited for (run returns once it has started), so nothing would enforce a timeout",
            ));
        }
        if has_parent_death_signal {
            return Err(Error::build(
                BuildErrorKind::Conflict,
                "parent_death_signal",
                "a daemon's parent is the intermediate process, which exits at once",
            ));
        }
        let pidfile = match self.pidfile {
            Some(p) => {
                let item = || format!("pidfile {}", shown(p.as_os_str()));
                if p.as_os_str().is_empty() {
                    return Err(Error::build(BuildErrorKind::Invalid, item(), "is empty"));
                }
                let absolute = if p.is_absolute() {
                    p.clone()
                } else {
                    std::env::current_dir()
                        .map_err(|e| {
                            Error::build(
                                BuildErrorKind::Invalid,
                                item(),
                                format!("is relative and the working directory is unknown: {e}"),
                            )
                        })?
                        .join(&p)
                };
                Some(cstring(item, absolute.as_os_str())?.into())
            }
            None => None,
        };
        Ok(DaemonPlan { pidfile })
    }
}
