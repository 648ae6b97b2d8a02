//! What rustix does not expose publicly, taken from the `libc` crate, one
//! file per kernel area: [`signal`] (sigaction, the signal mask, pending
//! signals), [`clone`] (clone, clone3, fork, execve, _exit), [`fd`]
//! (close_range and its probes, ppoll and RLIMIT_NOFILE for the last way of
//! closing fds, the pidfd_open probe, pipes and pidfds above the standard
//! streams), [`creds`] (getgroups without allocating), [`mount`]
//! (mount_setattr and its probe), [`landlock`] (the three landlock calls
//! and the ABI probe), [`knobs`] (personality, the core scheduling
//! probe, the `/proc` and selinuxfs fds of a plan), [`seccomp`]
//! (installing a seccomp filter, and the probe for `seccomp(2)`) and
//! [`tty`] (session ids, which rustix cannot return when they are 0);
//! [`compat`] holds the test-only emulation of older kernels. Everything
//! else goes through
//! rustix.
//!
//! Each function says whether it is **child-safe** (async-signal-safe and
//! allocation-free: it may run in the child between clone/fork and exec) or
//! **parent-only**.

use std::ffi::c_int;

use rustix::io::Errno;

pub(crate) mod clone;
pub(crate) mod compat;
pub(crate) mod creds;
pub(crate) mod fd;
pub(crate) mod knobs;
pub(crate) mod landlock;
pub(crate) mod mount;
pub(crate) mod seccomp;
pub(crate) mod signal;
pub(crate) mod tty;

/// Builds an `Errno` from a raw value without ever panicking: rustix's
/// constructor asserts the range, and the child must not panic.
/// Child-safe.
#[inline]
pub(crate) fn errno_from_raw(raw: c_int) -> Errno {
    if (1..4096).contains(&raw) {
        Errno::from_raw_os_error(raw)
    } else {
        Errno::IO
    }
}

/// The calling thread's `errno` after a failed libc call. Child-safe: in a
/// `CLONE_VM` child this reads the parent thread's TLS slot, which the child
/// owns while the parent is suspended by `CLONE_VFORK`.
#[inline]
pub(crate) fn last_errno() -> Errno {
    // SAFETY: `__errno_location` returns a valid pointer to this thread's errno.
    errno_from_raw(unsafe { *libc::__errno_location() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errno_from_raw_never_panics() {
        assert_eq!(errno_from_raw(0), Errno::IO);
        assert_eq!(errno_from_raw(-5), Errno::IO);
        assert_eq!(errno_from_raw(100_000), Errno::IO);
        assert_eq!(errno_from_raw(libc::ENOENT), Errno::NOENT);
    }
}
