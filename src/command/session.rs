//! The child's place among processes: parent-death signal, session and
//! process group.

use rustix::process::Signal;

use super::Command;
use crate::child::session::Session;
use crate::error::{BuildErrorKind, Error};
use crate::mode::Mode;

/// What a command records about its session.
#[derive(Debug, Default)]
pub(crate) struct SessionConfig {
    pub parent_death_signal: Option<Signal>,
    pub new_session: bool,
    pub process_group: Option<i32>,
}

impl<M: Mode> Command<M> {
    /// The signal the child gets when the parent dies. The kernel sends it
    /// when the spawning *thread* exits, so spawn from a long-lived thread.
    ///
    /// # Errors
    ///
    /// A parent that is already gone when the child arms the signal is
    /// [`Error::Spawn`] at stage
    /// [`ParentDeathSignal`](crate::Stage::ParentDeathSignal) with `ESRCH`;
    /// with [`daemonize`](Command::daemonize) it is a build error
    /// ([`BuildErrorKind::Conflict`]).
    ///
    /// # References
    ///
    /// `PR_SET_PDEATHSIG` in [`prctl(2)`](https://man7.org/linux/man-pages/man2/prctl.2.html);
    /// Linux 2.1.57.
    ///
    /// ```
    /// use safespawn::{Command, Signal};
    /// let cmd = Command::new("true").parent_death_signal(Signal::KILL);
    /// assert!(cmd.status().unwrap().success());
    /// ```
    pub fn parent_death_signal(mut self, signal: Signal) -> Self {
        self.cfg.session.parent_death_signal = Some(signal);
        self
    }

    /// Starts the child in a new session (`setsid`), detached from the
    /// controlling terminal.
    ///
    /// # Errors
    ///
    /// A kernel refusal is [`Error::Spawn`] at stage
    /// [`Session`](crate::Stage::Session).
    ///
    /// # References
    ///
    /// [`setsid(2)`](https://man7.org/linux/man-pages/man2/setsid.2.html); any Linux.
    ///
    /// ```
    /// let cmd = safespawn::Command::new("true").new_session();
    /// assert!(cmd.status().unwrap().success());
    /// ```
    pub fn new_session(mut self) -> Self {
        self.cfg.session.new_session = true;
        self
    }

    /// Puts the child in process group `pgid`; 0 makes a new group led by
    /// the child (as std's `process_group`).
    ///
    /// # Errors
    ///
    /// `build()` refuses a negative `pgid` ([`BuildErrorKind::Invalid`]) and
    /// the combination with [`new_session`](Command::new_session)
    /// ([`BuildErrorKind::Conflict`]); the kernel's refusal (a group in
    /// another session) is [`Error::Spawn`] at stage
    /// [`ProcessGroup`](crate::Stage::ProcessGroup).
    ///
    /// # References
    ///
    /// [`setpgid(2)`](https://man7.org/linux/man-pages/man2/setpgid.2.html); any Linux.
    ///
    /// ```
    /// let cmd = safespawn::Command::new("true").process_group(0);
    /// assert!(cmd.status().unwrap().success());
    /// ```
    pub fn process_group(mut self, pgid: i32) -> Self {
        self.cfg.session.process_group = Some(pgid);
        self
    }
}

impl SessionConfig {
    pub(crate) fn freeze(&self) -> Result<Session, Error> {
        match self.process_group {
            Some(pgid) if pgid < 0 => {
                return Err(Error::build(
                    BuildErrorKind::Invalid,
                    format!("process_group {pgid}"),
                    "is negative; use 0 for a new group led by the child",
                ))
            }
            Some(pgid) if self.new_session => {
                return Err(Error::build(
                    BuildErrorKind::Conflict,
                    format!("process_group {pgid}"),
                    "new_session already makes the child lead a new process group; a session leader cannot change it",
                ))
            }
            _ => {}
        }
        Ok(Session {
            parent_death_signal: self.parent_death_signal,
            new_session: self.new_session,
            process_group: self.process_group,
        })
    }
}
