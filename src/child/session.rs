//! The child's place among processes: parent-death signal, session,
//! controlling terminal, process group and the terminal's foreground.

use std::os::fd::{BorrowedFd, RawFd};

use rustix::io::Errno;
use rustix::process::Signal;

use super::report::{At, Failure};
use crate::error::Stage;
use crate::sys::signal as sig;

/// What the child does about its parent, session, terminal and process
/// group. `build()` has settled every combination: `controlling_tty`
/// comes with `new_session`, `foreground` with a `process_group` and
/// without a new session.
#[derive(Debug, Default)]
pub(crate) struct Session {
    pub parent_death_signal: Option<Signal>,
    pub new_session: bool,
    /// The child fd (after the fd steps) of the terminal to make the new
    /// session's controlling terminal.
    pub controlling_tty: Option<RawFd>,
    pub process_group: Option<i32>,
    /// The child fd of the caller's controlling terminal, whose foreground
    /// group the child's group becomes.
    pub foreground: Option<RawFd>,
}

/// In this order:
///
/// 1. **parent-death signal** (`PR_SET_PDEATHSIG`), after the credential
///    changes because changing them resets it; then `getppid` is compared
///    with `parent_pid`, since a parent that died before the signal was
///    armed would never send it (Go's approach). A `parent_pid` of 0 skips
///    the comparison: in a new pid namespace the parent is outside it and
///    `getppid()` is 0 whether the parent lives or not;
/// 2. **session** (`setsid(2)`), then the **controlling terminal**
///    (`TIOCSCTTY`), which only a session leader without one may acquire;
///    the kernel makes the leader's group the terminal's foreground group
///    with it;
/// 3. **process group** (`setpgid(0, pgid)`), then the **foreground**
///    (`TIOCSPGRP`), which needs the group to exist: the child is in a
///    background group by then, so `SIGTTOU` is blocked for the call (a
///    background `tcsetpgrp` is sent `SIGTTOU` and stopped unless it is
///    blocked or ignored) and the mask put back after it, leaving the
///    program the signal state the signal step gave it.
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
    if let Some(fd) = session.controlling_tty {
        // SAFETY: the fd steps placed a terminal at this number (build()
        // checked its source); it is only borrowed for the call.
        let tty = unsafe { BorrowedFd::borrow_raw(fd) };
        rustix::process::ioctl_tiocsctty(tty).at(Stage::ControllingTty)?;
    }
    if let Some(pgid) = session.process_group {
        let pgid = rustix::process::Pid::from_raw(pgid);
        rustix::process::setpgid(None, pgid).at(Stage::ProcessGroup)?;
    }
    if let Some(fd) = session.foreground {
        // The group just joined: `getpid` for a new group of its own (the
        // child's pid is never 0 in its own namespace; rustix's `getpgrp`
        // would assert that of a group led from outside it).
        let group = match session.process_group {
            Some(pgid) if pgid != 0 => rustix::process::Pid::from_raw(pgid),
            _ => None,
        };
        let group = group.unwrap_or_else(rustix::process::getpid);
        foreground(fd, group).at(Stage::Foreground)?;
    }
    Ok(())
}

/// `tcsetpgrp(fd, group)` with `SIGTTOU` blocked for the call.
fn foreground(fd: RawFd, group: rustix::process::Pid) -> Result<(), Errno> {
    // SAFETY: the fd steps placed the caller's terminal at this number
    // (build() checked its source); it is only borrowed for the call.
    let tty = unsafe { BorrowedFd::borrow_raw(fd) };
    let before = sig::add_to_mask(libc::SIGTTOU)?;
    let result = rustix::termios::tcsetpgrp(tty, group);
    // A SIGTTOU sent meanwhile by someone else stays pending and arrives
    // as it would have, once the program's mask lets it.
    sig::set_signal_mask(&before)?;
    result
}
