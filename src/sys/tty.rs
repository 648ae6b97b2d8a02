//! Sessions and terminals as raw numbers: `getsid(2)` and `TIOCGSID`.
//!
//! rustix returns these as a `Pid`, which cannot be 0, and asserts that
//! (a panic in a debug build). But 0 is what the kernel answers when the
//! session leader lives outside the caller's pid namespace: a process
//! started by a container runtime or a CI runner, or anything run under
//! `unshare --pid`. Both functions here are parent-only (`build()` asks
//! them); neither is needed in the child.

use std::ffi::c_int;
use std::os::fd::{AsRawFd, BorrowedFd};

use rustix::io::Errno;

use super::last_errno;

/// `getsid(0)`: the calling process's session id in its pid namespace,
/// 0 when the session leader is outside it. Parent-only.
pub(crate) fn own_session() -> c_int {
    // SAFETY: getsid reads no memory of ours; for the calling process it
    // cannot fail.
    unsafe { libc::getsid(0) }
}

/// `tcgetsid(3)` (`TIOCGSID`): the session whose controlling terminal
/// `fd` is, 0 when its leader is outside our pid namespace. Fails with
/// `ENOTTY` when `fd` is not a terminal, or is one but not our
/// controlling terminal; through a pseudo-terminal's master it answers
/// for the terminal whoever it controls. Parent-only.
pub(crate) fn session_of(fd: BorrowedFd<'_>) -> Result<c_int, Errno> {
    // SAFETY: tcgetsid only issues TIOCGSID on the fd, which is borrowed
    // for the call.
    let sid = unsafe { libc::tcgetsid(fd.as_raw_fd()) };
    if sid < 0 {
        Err(last_errno())
    } else {
        Ok(sid)
    }
}

/// Whether `fd` is a pseudo-terminal's master: only a master answers
/// `TIOCGPTN` (the number of its terminal). Parent-only.
pub(crate) fn is_pty_master(fd: BorrowedFd<'_>) -> bool {
    let mut n: libc::c_uint = 0;
    // SAFETY: TIOCGPTN writes one unsigned int, to `n`, which lives for
    // the call; any other fd answers an error and writes nothing.
    unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCGPTN, &mut n) == 0 }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;
    use std::os::unix::fs::OpenOptionsExt;

    #[test]
    fn own_session_is_what_the_kernel_reports_in_proc() {
        // The fourth field after the command's closing parenthesis.
        let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
            return; // no /proc here: nothing to compare with
        };
        let after = stat.rsplit_once(')').unwrap().1;
        let sid: c_int = after.split_whitespace().nth(3).unwrap().parse().unwrap();
        assert_eq!(own_session(), sid);
    }

    #[test]
    fn a_file_is_neither_a_session_s_terminal_nor_a_master() {
        let file = std::fs::File::open("/dev/null").unwrap();
        assert_eq!(session_of(file.as_fd()), Err(Errno::NOTTY));
        assert!(!is_pty_master(file.as_fd()));
    }

    #[test]
    fn a_pseudo_terminal_s_master_is_told_from_its_terminal() {
        use rustix::pty::{grantpt, openpt, ptsname, unlockpt, OpenptFlags};
        let master = openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY).unwrap();
        grantpt(&master).unwrap();
        unlockpt(&master).unwrap();
        let name = ptsname(&master, Vec::new()).unwrap();
        let slave = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NOCTTY)
            .open(name.to_str().unwrap())
            .unwrap();
        assert!(is_pty_master(master.as_fd()));
        assert!(!is_pty_master(slave.as_fd()));
        // Nobody's controlling terminal yet: no session to tell.
        assert_eq!(session_of(master.as_fd()), Err(Errno::NOTTY));
        assert_eq!(session_of(slave.as_fd()), Err(Errno::NOTTY));
    }
}
