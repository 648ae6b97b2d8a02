//! The few primitives rustix does not expose publicly, taken from the `libc`
//! crate: `clone`, `fork`, `execve`, `_exit`, `sigaction`, the signal mask,
//! the pending-signal calls (`sigpending`, `sigtimedwait`) and the
//! `close_range` system call. Everything else goes through rustix.
//!
//! Functions marked "child-safe" are async-signal-safe and allocation-free:
//! they may run in the child between clone/fork and exec.

use std::ffi::{c_char, c_int, c_void, CStr};
use std::mem::MaybeUninit;
use std::sync::atomic::{AtomicU8, Ordering};

use rustix::io::Errno;

/// A signal set, as the C library and the kernel use it.
pub(crate) type SigSet = libc::sigset_t;

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

/// A set with every signal in it.
pub(crate) fn full_sigset() -> SigSet {
    let mut set = MaybeUninit::<SigSet>::uninit();
    // SAFETY: sigfillset initialises the whole set it is given.
    unsafe {
        libc::sigfillset(set.as_mut_ptr());
        set.assume_init()
    }
}

/// An empty signal set. Child-safe.
pub(crate) fn empty_sigset() -> SigSet {
    let mut set = MaybeUninit::<SigSet>::uninit();
    // SAFETY: sigemptyset initialises the whole set it is given.
    unsafe {
        libc::sigemptyset(set.as_mut_ptr());
        set.assume_init()
    }
}

/// Blocks every signal in the calling thread and returns the previous mask.
/// (The C library keeps its two internal signals unblockable; that is fine:
/// it never sends them to a process it did not create.)
pub(crate) fn block_all_signals() -> SigSet {
    let all = full_sigset();
    let mut old = empty_sigset();
    // SAFETY: both pointers are to initialised sigsets; SIG_SETMASK is valid.
    // pthread_sigmask cannot fail with valid arguments.
    unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &all, &mut old) };
    old
}

/// Sets the calling thread's signal mask. Child-safe.
pub(crate) fn set_signal_mask(set: &SigSet) -> Result<(), Errno> {
    // SAFETY: `set` is an initialised sigset; the old-set pointer may be null.
    let rc = unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, set, std::ptr::null_mut()) };
    if rc == 0 {
        Ok(())
    } else {
        Err(errno_from_raw(rc))
    }
}

/// A set holding only `sig`.
fn sigset_of(sig: c_int) -> SigSet {
    let mut set = empty_sigset();
    // SAFETY: `set` is initialised; an invalid signal number is an error
    // return, never undefined behaviour.
    unsafe { libc::sigaddset(&mut set, sig) };
    set
}

/// Blocks `sig` in the calling thread and returns the previous mask.
pub(crate) fn block_signal(sig: c_int) -> SigSet {
    let set = sigset_of(sig);
    let mut old = empty_sigset();
    // SAFETY: both pointers are to initialised sigsets; SIG_BLOCK is valid.
    unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, &mut old) };
    old
}

/// Whether `sig` is pending for the calling thread or the process.
pub(crate) fn signal_pending(sig: c_int) -> bool {
    let mut set = empty_sigset();
    // SAFETY: `set` is an initialised sigset that sigpending fills.
    let rc = unsafe { libc::sigpending(&mut set) };
    // SAFETY: `set` is initialised.
    rc == 0 && unsafe { libc::sigismember(&set, sig) } == 1
}

/// Takes one pending `sig` off the calling thread (or the process) without
/// waiting; nothing happens when none is pending. `sig` must be blocked.
pub(crate) fn discard_pending_signal(sig: c_int) {
    let set = sigset_of(sig);
    let zero = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    loop {
        // SAFETY: `set` and `zero` are valid for the call; the siginfo
        // pointer may be null.
        let rc = unsafe { libc::sigtimedwait(&set, std::ptr::null_mut(), &zero) };
        if rc >= 0 || last_errno() != Errno::INTR {
            return;
        }
    }
}

/// The highest signal number (64 on Linux).
pub(crate) const SIGNAL_MAX: c_int = 64;

/// Whether the child must leave this signal's disposition alone: SIGKILL and
/// SIGSTOP cannot be changed, and 32/33 belong to the C library.
#[inline]
pub(crate) fn signal_is_reserved(sig: c_int) -> bool {
    sig == libc::SIGKILL || sig == libc::SIGSTOP || sig == 32 || sig == 33
}

/// Sets `sig` to `SIG_DFL`; returns whether it was ignored before. Child-safe.
pub(crate) fn set_signal_default(sig: c_int) -> Result<bool, Errno> {
    // SAFETY: a zeroed sigaction is a valid "SIG_DFL, empty mask, no flags".
    let dfl: libc::sigaction = unsafe { std::mem::zeroed() };
    let mut old = MaybeUninit::<libc::sigaction>::zeroed();
    // SAFETY: both pointers are valid for the duration of the call.
    let rc = unsafe { libc::sigaction(sig, &dfl, old.as_mut_ptr()) };
    if rc != 0 {
        return Err(last_errno());
    }
    // SAFETY: sigaction filled `old` on success (and it was zeroed before).
    Ok(unsafe { old.assume_init() }.sa_sigaction == libc::SIG_IGN)
}

/// Sets `sig` to `SIG_IGN`. Child-safe.
pub(crate) fn set_signal_ignored(sig: c_int) -> Result<(), Errno> {
    // SAFETY: a zeroed sigaction with the handler set to SIG_IGN is valid.
    let mut ign: libc::sigaction = unsafe { std::mem::zeroed() };
    ign.sa_sigaction = libc::SIG_IGN;
    // SAFETY: the pointer is valid; the old-action pointer may be null.
    let rc = unsafe { libc::sigaction(sig, &ign, std::ptr::null_mut()) };
    if rc != 0 {
        return Err(last_errno());
    }
    Ok(())
}

/// `execve(2)`; returns only on failure. Child-safe.
///
/// # Safety
/// `argv` and `envp` must be null-terminated arrays of pointers to
/// NUL-terminated strings that stay valid for the call.
pub(crate) unsafe fn execve(
    path: &CStr,
    argv: *const *const c_char,
    envp: *const *const c_char,
) -> Errno {
    // SAFETY: the caller guarantees the arrays' shape; `path` is a CStr.
    unsafe { libc::execve(path.as_ptr(), argv, envp) };
    last_errno()
}

/// `_exit(2)`: ends the process without running any user-space clean-up.
/// Child-safe.
pub(crate) fn exit_now(code: c_int) -> ! {
    // SAFETY: _exit is always safe to call; it does not return.
    unsafe { libc::_exit(code) }
}

/// `close_range(first, last, 0)`. Child-safe.
pub(crate) fn close_range(first: u32, last: u32) -> Result<(), Errno> {
    // SAFETY: close_range takes three integers and touches no memory.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            first as libc::c_uint,
            last as libc::c_uint,
            0 as libc::c_uint,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(last_errno())
    }
}

/// Whether the kernel has `close_range(2)`, probed once in the parent and
/// cached (the child cannot report it back, and probing there would cost a
/// system call per spawn).
pub(crate) fn have_close_range() -> bool {
    // 0 = unknown, 1 = yes, 2 = no.
    static STATE: AtomicU8 = AtomicU8::new(0);
    match STATE.load(Ordering::Relaxed) {
        1 => true,
        2 => false,
        _ => {
            // An empty range at the very top closes nothing; a kernel without
            // the call (or a seccomp filter refusing it) answers with an error.
            let ok = close_range(u32::MAX, u32::MAX).is_ok();
            STATE.store(if ok { 1 } else { 2 }, Ordering::Relaxed);
            ok
        }
    }
}

/// The child-side entry point type for [`clone_vfork`].
pub(crate) type ChildEntry = extern "C" fn(*mut c_void) -> c_int;

/// `clone(CLONE_VM | CLONE_VFORK | CLONE_PIDFD | SIGCHLD)` running `entry(arg)`
/// on the stack that ends at `stack_top`. Returns the child's pid and pidfd
/// once the child has exec'd or exited.
///
/// # Safety
/// * `stack_top` must be the 16-byte aligned end of a writable region that is
///   large enough for `entry` and is not used by anything else until this
///   returns;
/// * `entry` must never return into the C library's frame: it ends in
///   `execve` or `_exit`, touches no thread-locals but `errno`, takes no
///   lock, does not allocate and does not unwind;
/// * every signal must be blocked in the calling thread.
pub(crate) unsafe fn clone_vfork(
    entry: ChildEntry,
    stack_top: *mut u8,
    arg: *mut c_void,
) -> Result<(libc::pid_t, c_int), Errno> {
    let mut pidfd: c_int = -1;
    let flags = libc::CLONE_VM | libc::CLONE_VFORK | libc::CLONE_PIDFD | libc::SIGCHLD;
    // SAFETY: upheld by the caller, see above. With CLONE_PIDFD the kernel
    // stores the new pidfd through the parent_tid argument.
    let pid = unsafe {
        libc::clone(
            entry,
            stack_top.cast::<c_void>(),
            flags,
            arg,
            &mut pidfd as *mut c_int,
        )
    };
    if pid < 0 {
        Err(last_errno())
    } else {
        Ok((pid, pidfd))
    }
}

/// `fork(2)`: `Ok(0)` in the child, `Ok(pid)` in the parent.
///
/// # Safety
/// In a multi-threaded process the child may only make async-signal-safe
/// calls until it execs or exits.
pub(crate) unsafe fn fork() -> Result<libc::pid_t, Errno> {
    // SAFETY: upheld by the caller.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        Err(last_errno())
    } else {
        Ok(pid)
    }
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

    #[test]
    fn close_range_probe_matches_this_kernel() {
        // Linux >= 5.9 has close_range; the probe must say so and be stable.
        assert_eq!(have_close_range(), have_close_range());
    }
}
