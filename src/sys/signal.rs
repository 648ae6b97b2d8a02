//! Signal dispositions and masks (`sigaction(2)`, `rt_sigaction(2)`,
//! `pthread_sigmask(3)`, `sigpending(2)`, `sigtimedwait(2)`).

use std::ffi::c_int;
use std::mem::MaybeUninit;

use rustix::io::Errno;

use super::{errno_from_raw, last_errno};

/// A signal set, as the C library and the kernel use it.
pub(crate) type SigSet = libc::sigset_t;

/// A set with every signal in it. Child-safe.
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
/// Parent-only.
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

/// A set holding only `sig`. Child-safe.
fn sigset_of(sig: c_int) -> SigSet {
    let mut set = empty_sigset();
    // SAFETY: `set` is initialised; an invalid signal number is an error
    // return, never undefined behaviour.
    unsafe { libc::sigaddset(&mut set, sig) };
    set
}

/// Blocks `sig` in the calling thread and returns the previous mask.
/// Parent-only.
pub(crate) fn block_signal(sig: c_int) -> SigSet {
    let set = sigset_of(sig);
    let mut old = empty_sigset();
    // SAFETY: both pointers are to initialised sigsets; SIG_BLOCK is valid.
    unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, &mut old) };
    old
}

/// Adds `sig` to the calling thread's signal mask and returns the mask
/// before, for [`set_signal_mask`] to put back. Child-safe: one
/// `rt_sigprocmask` (through the C library's `pthread_sigmask`, which
/// keeps its own two signals out of the set and takes no lock).
pub(crate) fn add_to_mask(sig: c_int) -> Result<SigSet, Errno> {
    let set = sigset_of(sig);
    let mut old = empty_sigset();
    // SAFETY: both pointers are to initialised sigsets; SIG_BLOCK is valid.
    let rc = unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, &mut old) };
    if rc == 0 {
        Ok(old)
    } else {
        Err(errno_from_raw(rc))
    }
}

/// Whether `sig` is pending for the calling thread or the process.
/// Parent-only.
pub(crate) fn signal_pending(sig: c_int) -> bool {
    let mut set = empty_sigset();
    // SAFETY: `set` is an initialised sigset that sigpending fills.
    let rc = unsafe { libc::sigpending(&mut set) };
    // SAFETY: `set` is initialised.
    rc == 0 && unsafe { libc::sigismember(&set, sig) } == 1
}

/// Takes one pending `sig` off the calling thread (or the process) without
/// waiting; nothing happens when none is pending. `sig` must be blocked.
/// Parent-only.
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

/// The signals this process ignores now, as a bit set (bit `n - 1` for
/// signal `n`). Read in the parent by `build()`: one `sigaction` query per
/// signal, which is why the child does not do it per spawn. Parent-only.
pub(crate) fn ignored_signals() -> u64 {
    let mut set = 0u64;
    for sig in 1..=SIGNAL_MAX {
        if signal_is_reserved(sig) {
            continue;
        }
        let mut old = MaybeUninit::<libc::sigaction>::zeroed();
        // SAFETY: a null new action only queries; `old` is valid for writes.
        let rc = unsafe { libc::sigaction(sig, std::ptr::null(), old.as_mut_ptr()) };
        // SAFETY: sigaction filled `old` on success (and it was zeroed before).
        if rc == 0 && unsafe { old.assume_init() }.sa_sigaction == libc::SIG_IGN {
            set |= 1u64 << (sig - 1);
        }
    }
    // The C library refuses its own two signals; an ignored one may still
    // be inherited from whoever started this process. Ask the kernel.
    #[cfg(target_arch = "x86_64")]
    for sig in [32, 33] {
        if let Ok(libc::SIG_IGN) = kernel_disposition(sig) {
            set |= 1u64 << (sig - 1);
        }
    }
    set
}

/// The kernel's `struct sigaction` on x86_64 (`rt_sigaction(2)`).
#[cfg(target_arch = "x86_64")]
#[repr(C)]
struct KernelSigaction {
    handler: libc::sighandler_t,
    flags: u64,
    restorer: usize,
    mask: u64,
}

/// `rt_sigaction` straight to the kernel, with `new` as the new action (or
/// null to only query); returns the previous handler value.
#[cfg(target_arch = "x86_64")]
fn kernel_sigaction(sig: c_int, new: *const KernelSigaction) -> Result<libc::sighandler_t, Errno> {
    let mut old = KernelSigaction {
        handler: libc::SIG_DFL,
        flags: 0,
        restorer: 0,
        mask: 0,
    };
    // SAFETY: both structs have the kernel's layout and size (the mask is
    // 8 bytes, the size passed); `new` is null (query only) or points to a
    // valid action. SIG_DFL needs no restorer.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_rt_sigaction,
            sig,
            new,
            &mut old as *mut KernelSigaction,
            8usize,
        )
    };
    if rc == 0 {
        Ok(old.handler)
    } else {
        Err(last_errno())
    }
}

/// Makes `sig` `SIG_DFL` through `rt_sigaction` straight to the kernel;
/// returns the previous handler value. Unlike the C library's `sigaction`
/// it also works on the two real-time signals the C library keeps (32, 33),
/// which a parent may have inherited ignored. Child-safe.
#[cfg(target_arch = "x86_64")]
pub(crate) fn kernel_set_default(sig: c_int) -> Result<libc::sighandler_t, Errno> {
    let dfl = KernelSigaction {
        handler: libc::SIG_DFL,
        flags: 0,
        restorer: 0,
        mask: 0,
    };
    kernel_sigaction(sig, &dfl)
}

/// The handler value of `sig` as the kernel has it, changing nothing
/// (works on 32 and 33 too). Parent-only by use, child-safe by nature.
#[cfg(target_arch = "x86_64")]
pub(crate) fn kernel_disposition(sig: c_int) -> Result<libc::sighandler_t, Errno> {
    kernel_sigaction(sig, std::ptr::null())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ignored_signals_sees_sigpipe() {
        // The Rust runtime ignores SIGPIPE before main.
        assert_ne!(ignored_signals() & (1 << (libc::SIGPIPE - 1)), 0);
        assert_eq!(ignored_signals() & (1 << (libc::SIGKILL - 1)), 0);
    }
}
