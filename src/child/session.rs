//! The child's place among processes: parent-death signal, session and
//! process group.

use rustix::io::Errno;
use rustix::process::Signal;

use super::report::{At, Failure};
use crate::error::Stage;

/// What the child does about its parent, session and process group.
#[derive(Debug, Default)]
pub(crate) struct Session {
    pub parent_death_signal: Option<Signal>,
    pub new_session: bool,
    pub process_group: Option<i32>,
}

/// In this order:
///
/// 1. **parent-death signal** (`PR_SET_PDEATHSIG`), after the credential
///    changes because changing them resets it; then `getppid` is compared
///    with `parent_pid`, since a parent that died before the signal was
///    armed would never send it (Go's approach). A `parent_pid` of 0 skips
///    the comparison: in a new pid namespace the parent is outside it and
///    `getppid()` is 0 whether the parent lives or not;
/// 2. **session** (`setsid(2)`), then **process group** (`setpgid(0, pgid)`).
pub(crate) fn apply(session: &Session, parent_pid: i32) -> Result<(), Failure> {
    if let Some(sig) = session.parent_death_signal {
        rustix::process::set_parent_process_death_signal(Some(sig)).at(Stage::ParentDeathSignal)?;
        let parent = rustix::process::getppid().map(|p| p.as_raw_nonzero().get());
        if parent_pid != 0 && parent != Some(parent_pid) {
            // The parent died before the signal was armed.
            return Err(Errno::SRCH).at(Stage::ParentDeathSignal);
        }
    }
    if session.new_session {
        rustix::process::setsid().at(Stage::Session)?;
    }
    if let Some(pgid) = session.process_group {
        let pgid = rustix::process::Pid::from_raw(pgid);
        rustix::process::setpgid(None, pgid).at(Stage::ProcessGroup)?;
    }
    Ok(())
}
