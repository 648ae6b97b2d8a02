//! File descriptors: `close_range(2)` and what this kernel offers of it,
//! the `ppoll(2)` and `RLIMIT_NOFILE` look-ups of the last way of closing
//! fds, `pidfd_open(2)` and whether this kernel has it, and pipes and
//! pidfds kept above the standard streams.

use std::ffi::c_int;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::raw::c_long;
use std::sync::atomic::{AtomicU8, Ordering};

use rustix::io::Errno;
use rustix::pipe::PipeFlags;

use super::last_errno;
use crate::error::Error;

/// `close_range(2)`'s flag: mark the range close-on-exec instead of
/// closing it (Linux 5.11).
pub(crate) const CLOSE_RANGE_CLOEXEC: u32 = libc::CLOSE_RANGE_CLOEXEC;

/// `close_range(2)`'s flag: give the caller an fd table of its own first
/// (Linux 5.9, with the call itself).
const CLOSE_RANGE_UNSHARE: u32 = libc::CLOSE_RANGE_UNSHARE;

/// Gives a child started on its parent's fd table (`CLONE_FILES`) a table
/// of its own that holds the fds below `first` and nothing above, with
/// `close_range(first, ~0, CLOSE_RANGE_UNSHARE)`: the kernel copies only
/// the entries below `first`, so the fds above are neither copied nor
/// closed one by one (a parent with thousands of sockets open costs the
/// child nothing for them). Where that call is refused (a seccomp filter
/// looking at the flags), `unshare(CLONE_FILES)` (Linux 2.6.16) copies the
/// whole table instead, and the fd steps close the rest as usual.
/// Child-only: in any process whose table other threads share, this
/// would give the calling thread a table of its own.
///
/// [`close_range(2)`](https://man7.org/linux/man-pages/man2/close_range.2.html),
/// [`unshare(2)`](https://man7.org/linux/man-pages/man2/unshare.2.html).
pub(crate) fn unshare_table_below(first: u32) -> Result<(), Errno> {
    if !super::compat::forced(super::compat::NO_CLOSE_RANGE_UNSHARE)
        && close_range(first, u32::MAX, CLOSE_RANGE_UNSHARE).is_ok()
    {
        return Ok(());
    }
    // SAFETY: unsharing the fd table changes only which table this process
    // uses; the fds it names stay open in both, and nothing in this process
    // (a child between clone and exec, see above) holds a view of the old
    // table but the fd numbers it goes on using.
    unsafe { rustix::thread::unshare_unsafe(rustix::thread::UnshareFlags::FILES) }
}

/// `close_range(first, last, flags)`. Child-safe.
pub(crate) fn close_range(first: u32, last: u32, flags: u32) -> Result<(), Errno> {
    // SAFETY: close_range takes three integers and touches no memory.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            first as libc::c_uint,
            last as libc::c_uint,
            flags as libc::c_uint,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(last_errno())
    }
}

/// A `pollfd` entry that asks for no events: the kernel answers `POLLNVAL`
/// in `revents` when `fd` is not open. See [`poll_now`].
pub(crate) const fn pollfd(fd: c_int) -> libc::pollfd {
    libc::pollfd {
        fd,
        events: 0,
        revents: 0,
    }
}

/// `revents` bit: the entry's fd is not open.
pub(crate) const POLLNVAL: i16 = libc::POLLNVAL;

/// `ppoll(fds, timeout 0, no signal mask)`: fills in every `revents` and
/// never waits. The raw system call, not the C library's `poll`, which is a
/// cancellation point (it writes the calling thread's cancellation state,
/// which in a `CLONE_VM` child is the parent thread's). Child-safe.
pub(crate) fn poll_now(fds: &mut [libc::pollfd]) -> Result<(), Errno> {
    let zero = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `fds` is a writable array of `fds.len()` pollfds and `zero` a
    // timespec, both alive for the call; a null signal mask leaves the mask
    // alone (its size argument is then unused).
    let rc = unsafe {
        libc::syscall(
            libc::SYS_ppoll,
            fds.as_mut_ptr(),
            fds.len() as libc::c_ulong,
            &zero as *const libc::timespec,
            std::ptr::null::<libc::sigset_t>(),
            0 as libc::size_t,
        )
    };
    if rc < 0 {
        Err(last_errno())
    } else {
        Ok(())
    }
}

/// The kernel's `struct rlimit64` (both fields `u64` on every architecture).
#[repr(C)]
struct Rlimit64 {
    cur: u64,
    /// The hard limit: filled in by the kernel, not needed here.
    _max: u64,
}

/// The soft `RLIMIT_NOFILE` in force now; `None` when the call is refused
/// (a seccomp filter) or the limit is unlimited. The raw `prlimit64` call:
/// rustix's `getrlimit` asserts in debug builds that the call succeeded,
/// and the child must not panic. Child-safe.
pub(crate) fn nofile_soft_limit() -> Option<u64> {
    let mut lim = Rlimit64 { cur: 0, _max: 0 };
    // SAFETY: pid 0 (this process), no new limit, and a writable rlimit64
    // for the old one.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_prlimit64,
            0 as libc::pid_t,
            libc::RLIMIT_NOFILE as c_int,
            std::ptr::null::<Rlimit64>(),
            &mut lim as *mut Rlimit64,
        )
    };
    (rc == 0 && lim.cur != u64::MAX).then_some(lim.cur)
}

/// What a probe of this system has found out, kept in an `AtomicU8`.
#[derive(Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Probe {
    /// Not tried yet.
    Unknown = 0,
    /// The system offers it.
    Yes = 1,
    /// The system refuses it (an old kernel, a seccomp filter, valgrind).
    No = 2,
}

impl Probe {
    pub(crate) fn load(state: &AtomicU8) -> Probe {
        match state.load(Ordering::Relaxed) {
            1 => Probe::Yes,
            2 => Probe::No,
            _ => Probe::Unknown,
        }
    }

    pub(crate) fn store(self, state: &AtomicU8) {
        state.store(self as u8, Ordering::Relaxed);
    }
}

/// How the child can close inherited fds here: probed once in the parent
/// and cached (the child cannot report it back, and probing there would
/// cost system calls per spawn). An empty range at the very top touches
/// nothing; a kernel without the call or the flag (or a seccomp filter
/// refusing it) answers with an error. Parent-only.
fn probe(state: &AtomicU8, flags: u32) -> bool {
    match Probe::load(state) {
        Probe::Yes => true,
        Probe::No => false,
        Probe::Unknown => {
            let ok = close_range(u32::MAX, u32::MAX, flags).is_ok();
            (if ok { Probe::Yes } else { Probe::No }).store(state);
            ok
        }
    }
}

/// Whether the kernel has `close_range(2)` (Linux 5.9). Parent-only.
pub(crate) fn have_close_range() -> bool {
    static STATE: AtomicU8 = AtomicU8::new(Probe::Unknown as u8);
    probe(&STATE, 0)
}

/// Whether `close_range(2)` takes `CLOSE_RANGE_CLOEXEC` (Linux 5.11).
/// Parent-only.
pub(crate) fn have_close_range_cloexec() -> bool {
    static STATE: AtomicU8 = AtomicU8::new(Probe::Unknown as u8);
    probe(&STATE, CLOSE_RANGE_CLOEXEC)
}

/// Moves `fd` to a number above the standard streams, so that a parent whose
/// stdio is closed cannot see its own pipes chosen as a child's stdio.
/// Parent-only.
pub(crate) fn above_stdio(fd: OwnedFd) -> Result<OwnedFd, Errno> {
    if fd.as_raw_fd() > 2 {
        Ok(fd)
    } else {
        rustix::io::fcntl_dupfd_cloexec(&fd, 3)
    }
}

/// A new close-on-exec pipe whose ends are both above the standard streams.
/// Parent-only.
pub(crate) fn pipe(flags: PipeFlags) -> Result<(OwnedFd, OwnedFd), Error> {
    let (r, w) = rustix::pipe::pipe_with(flags | PipeFlags::CLOEXEC)
        .map_err(|e| Error::io("creating a pipe", e))?;
    let r = above_stdio(r).map_err(|e| Error::io("moving a pipe fd", e))?;
    let w = above_stdio(w).map_err(|e| Error::io("moving a pipe fd", e))?;
    Ok((r, w))
}

/// Whether an error from `pidfd_open` or `waitid` means this system does
/// not offer the call: `ENOSYS` (an older kernel, a seccomp filter) or
/// `EPERM` (a seccomp filter: neither call answers `EPERM` otherwise).
/// Parent-only.
pub(crate) fn refused(e: Errno) -> bool {
    matches!(e, Errno::NOSYS | Errno::PERM)
}

/// Whether this system has `pidfd_open(2)` (Linux 5.3), and so also pidfds
/// that `poll` reports readable when their process exits (also 5.3: a
/// Linux 5.2 pidfd from `CLONE_PIDFD` cannot be polled). Probed once and
/// cached, without creating an fd: `pidfd_open(0, 0)` is `EINVAL` where the
/// call exists, `ENOSYS` (or a filter's `EPERM`) where it does not.
/// Parent-only.
pub(crate) fn have_pidfd_open() -> bool {
    match Probe::load(&PIDFD_OPEN) {
        Probe::Yes => true,
        Probe::No => false,
        Probe::Unknown => {
            let result = if super::compat::forced(super::compat::NO_PIDFD_OPEN) {
                Err(super::compat::missing())
            } else {
                // SAFETY: pidfd_open takes two integers and touches no
                // memory; pid 0 is always refused, so no fd is created.
                let rc = unsafe { libc::syscall(libc::SYS_pidfd_open, 0 as c_long, 0 as c_long) };
                if rc >= 0 {
                    // Cannot happen (pid 0 is invalid); own and close it.
                    // SAFETY: a non-negative return is a new fd of ours.
                    drop(unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(rc as i32) });
                    Ok(())
                } else {
                    Err(last_errno())
                }
            };
            let have = !matches!(result, Err(e) if refused(e));
            (if have { Probe::Yes } else { Probe::No }).store(&PIDFD_OPEN);
            have
        }
    }
}

/// What [`have_pidfd_open`] found out (a [`Probe`]).
static PIDFD_OPEN: AtomicU8 = AtomicU8::new(Probe::Unknown as u8);

/// `pidfd_open(pid, 0)`, the pidfd moved above the standard streams (where
/// stdio is closed it would otherwise take fd 0, 1 or 2, and a later child
/// inheriting that stream would get it). `Ok(None)` where this system has
/// no `pidfd_open` (remembered: [`have_pidfd_open`] answers false from then
/// on). Parent-only.
pub(crate) fn pidfd_open(pid: rustix::process::Pid) -> Result<Option<OwnedFd>, Errno> {
    if !have_pidfd_open() {
        return Ok(None);
    }
    let opened = if super::compat::forced(super::compat::NO_PIDFD_OPEN) {
        Err(super::compat::missing())
    } else {
        rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty())
    };
    match opened {
        Ok(fd) => above_stdio(fd).map(Some),
        Err(e) if refused(e) => {
            Probe::No.store(&PIDFD_OPEN);
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pidfd_open_probe_is_stable_and_pidfds_are_above_stdio() {
        let have = have_pidfd_open();
        assert_eq!(have_pidfd_open(), have);
        let me = rustix::process::getpid();
        match pidfd_open(me).unwrap() {
            Some(fd) => assert!(have && fd.as_raw_fd() > 2),
            None => assert!(!have),
        }
    }

    #[test]
    fn close_range_probe_matches_this_kernel() {
        // The probe must be stable once it has an answer.
        assert_eq!(have_close_range(), have_close_range());
        assert_eq!(have_close_range_cloexec(), have_close_range_cloexec());
    }
}
