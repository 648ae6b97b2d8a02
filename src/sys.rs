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

/// The signals this process ignores now, as a bit set (bit `n - 1` for
/// signal `n`). Read in the parent by `build()`: one `sigaction` query per
/// signal, which is why the child does not do it per spawn.
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
        if let Ok(libc::SIG_IGN) = kernel_set_default(sig, false) {
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

/// `rt_sigaction` straight to the kernel: when `set`, makes `sig` `SIG_DFL`;
/// returns the previous handler value. Unlike the C library's `sigaction`
/// it also works on the two real-time signals the C library keeps (32, 33),
/// which a parent may have inherited ignored. Child-safe.
#[cfg(target_arch = "x86_64")]
pub(crate) fn kernel_set_default(sig: c_int, set: bool) -> Result<libc::sighandler_t, Errno> {
    let dfl = KernelSigaction {
        handler: libc::SIG_DFL,
        flags: 0,
        restorer: 0,
        mask: 0,
    };
    let mut old = KernelSigaction {
        handler: libc::SIG_DFL,
        flags: 0,
        restorer: 0,
        mask: 0,
    };
    let new: *const KernelSigaction = if set { &dfl } else { std::ptr::null() };
    // SAFETY: both structs have the kernel's layout and size (the mask is
    // 8 bytes, the size passed); `new` may be null (query only). SIG_DFL
    // needs no restorer.
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

/// `close_range(2)`'s flag: mark the range close-on-exec instead of
/// closing it (Linux 5.11).
pub(crate) const CLOSE_RANGE_CLOEXEC: u32 = libc::CLOSE_RANGE_CLOEXEC;

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

/// How the child can close inherited fds here: probed once in the parent
/// and cached (the child cannot report it back, and probing there would
/// cost system calls per spawn). An empty range at the very top touches
/// nothing; a kernel without the call or the flag (or a seccomp filter
/// refusing it) answers with an error.
fn probe(state: &AtomicU8, flags: u32) -> bool {
    // 0 = unknown, 1 = yes, 2 = no.
    match state.load(Ordering::Relaxed) {
        1 => true,
        2 => false,
        _ => {
            let ok = close_range(u32::MAX, u32::MAX, flags).is_ok();
            state.store(if ok { 1 } else { 2 }, Ordering::Relaxed);
            ok
        }
    }
}

/// Whether the kernel has `close_range(2)` (Linux 5.9).
pub(crate) fn have_close_range() -> bool {
    static STATE: AtomicU8 = AtomicU8::new(0);
    probe(&STATE, 0)
}

/// Whether `close_range(2)` takes `CLOSE_RANGE_CLOEXEC` (Linux 5.11).
pub(crate) fn have_close_range_cloexec() -> bool {
    static STATE: AtomicU8 = AtomicU8::new(0);
    probe(&STATE, CLOSE_RANGE_CLOEXEC)
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

/// `CLONE_CLEAR_SIGHAND` (Linux 5.5): the kernel resets every handled
/// signal of the new process to `SIG_DFL`; ignored ones stay ignored.
const CLONE_CLEAR_SIGHAND: u64 = 0x1_0000_0000;

/// `struct clone_args`, version 0 (64 bytes), as `clone3(2)` reads it.
#[repr(C)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
}

/// Whether `clone3` with `CLONE_CLEAR_SIGHAND` may be used: 0 = not tried
/// yet, 1 = it works, 2 = refused (old kernel, seccomp filter, valgrind).
/// Learned from the first real call and cached, like [`have_close_range`].
static CLONE3_STATE: AtomicU8 = AtomicU8::new(0);

/// Whether the `clone3` path is worth trying (not refused before, and this
/// architecture has the trampoline).
pub(crate) fn clone3_usable() -> bool {
    cfg!(target_arch = "x86_64") && CLONE3_STATE.load(Ordering::Relaxed) != 2
}

/// Whether the `clone3` path has been used successfully in this process.
#[cfg(test)]
pub(crate) fn clone3_in_use() -> bool {
    CLONE3_STATE.load(Ordering::Relaxed) == 1
}

/// Whether `clone3` failed because this system does not offer it (ENOSYS:
/// kernel < 5.3 or a seccomp filter; EPERM: a filter; EINVAL: a kernel
/// without `CLONE_CLEAR_SIGHAND`), which is remembered; no child was
/// created in any of these cases, so the caller falls back to [`clone_vfork`].
pub(crate) fn clone3_refused(e: Errno) -> bool {
    let refused = matches!(e, Errno::NOSYS | Errno::PERM | Errno::INVAL);
    if refused {
        CLONE3_STATE.store(2, Ordering::Relaxed);
    }
    refused
}

/// `clone3(CLONE_VM | CLONE_VFORK | CLONE_PIDFD | CLONE_CLEAR_SIGHAND,
/// exit_signal = SIGCHLD)` running `entry(arg)` on the stack
/// `[stack, stack + stack_size)`. Returns the child's pid and pidfd once
/// the child has exec'd or exited. With `CLONE_CLEAR_SIGHAND` the kernel
/// resets every signal handler in the child atomically, so the child does
/// not have to query and reset dispositions one system call at a time.
///
/// `clone3` has no C library wrapper that takes an entry function, and a
/// raw `syscall()` would make the child resume inside the C library's frame
/// on an empty stack, so a few instructions of assembly start the child
/// instead: they call `entry(arg)` on the new stack and `exit_group` if it
/// ever returns.
///
/// # Safety
/// The same as [`clone_vfork`]: `stack .. stack + stack_size` is writable,
/// 16-byte aligned at both ends, large enough for `entry` and unused by
/// anything else until this returns; `entry` keeps the child contract and
/// ends in `execve` or `_exit`; every signal is blocked in the calling
/// thread.
#[cfg(target_arch = "x86_64")]
pub(crate) unsafe fn clone3_vfork(
    entry: ChildEntry,
    stack: *mut u8,
    stack_size: usize,
    arg: *mut c_void,
) -> Result<(libc::pid_t, c_int), Errno> {
    let mut pidfd: c_int = -1;
    let args = CloneArgs {
        flags: (libc::CLONE_VM | libc::CLONE_VFORK | libc::CLONE_PIDFD) as u64
            | CLONE_CLEAR_SIGHAND,
        pidfd: &mut pidfd as *mut c_int as u64,
        child_tid: 0,
        parent_tid: 0,
        exit_signal: libc::SIGCHLD as u64,
        stack: stack as u64,
        stack_size: stack_size as u64,
        tls: 0,
    };
    let ret: isize;
    // SAFETY: the syscall reads `args` (valid, 64 bytes) and writes the
    // pidfd through `args.pidfd`; it clobbers rax (result), rcx and r11.
    // In the parent (rax != 0) the block ends there, every other register
    // intact. In the child (rax == 0) the kernel has switched to the new
    // stack, whose top is 16-byte aligned as the ABI wants before `call`;
    // rbp is cleared so nothing unwinds into the parent's frames; the child
    // calls `entry(arg)` (r12, r13 survive the syscall) and never comes back
    // to Rust code here: `entry` ends in execve or _exit, and should it
    // return, exit_group(its value) ends the process. The child touches no
    // memory of the parent's frame but what `entry` is allowed to (see the
    // caller's contract), and the parent is suspended until it execs or
    // exits (CLONE_VFORK). The default memory clobber makes the compiler
    // reload `pidfd` after the block.
    unsafe {
        std::arch::asm!(
            "syscall",
            "test rax, rax",
            "jnz 2f",
            "xor ebp, ebp",
            "mov rdi, r13",
            "call r12",
            "mov edi, eax",
            "mov eax, 231", // exit_group
            "syscall",
            "ud2",
            "2:",
            inlateout("rax") libc::SYS_clone3 as isize => ret,
            in("rdi") &args as *const CloneArgs,
            in("rsi") std::mem::size_of::<CloneArgs>(),
            in("r12") entry,
            in("r13") arg,
            lateout("rcx") _,
            lateout("r11") _,
            options(nostack),
        );
    }
    if ret < 0 {
        Err(errno_from_raw(ret.unsigned_abs().min(4095) as c_int))
    } else {
        CLONE3_STATE.store(1, Ordering::Relaxed);
        Ok((ret as libc::pid_t, pidfd))
    }
}

/// Elsewhere the `clone3` path is never taken ([`clone3_usable`] is false).
///
/// # Safety
/// Never called; see the x86_64 version.
#[cfg(not(target_arch = "x86_64"))]
pub(crate) unsafe fn clone3_vfork(
    _entry: ChildEntry,
    _stack: *mut u8,
    _stack_size: usize,
    _arg: *mut c_void,
) -> Result<(libc::pid_t, c_int), Errno> {
    Err(Errno::NOSYS)
}

/// `clone(CLONE_VM | CLONE_VFORK | CLONE_PARENT_SETTID | SIGCHLD)` running
/// `entry(arg)` on the stack that ends at `stack_top`; the kernel stores the
/// child's pid at `pid_slot` before the child runs. Returns the pid once the
/// child has exec'd or exited. (No pidfd: the legacy `clone` passes both
/// through the same argument.) Child-safe: the intermediate of daemon mode
/// starts the daemon with it.
///
/// # Safety
/// As [`clone_vfork`]; `pid_slot` must be valid for a 4-byte write.
pub(crate) unsafe fn clone_vfork_settid(
    entry: ChildEntry,
    stack_top: *mut u8,
    arg: *mut c_void,
    pid_slot: *mut c_int,
) -> Result<libc::pid_t, Errno> {
    let flags = libc::CLONE_VM | libc::CLONE_VFORK | libc::CLONE_PARENT_SETTID | libc::SIGCHLD;
    // SAFETY: upheld by the caller; the kernel writes the pid to `pid_slot`.
    let pid = unsafe { libc::clone(entry, stack_top.cast::<c_void>(), flags, arg, pid_slot) };
    if pid < 0 {
        Err(last_errno())
    } else {
        Ok(pid)
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
    fn ignored_signals_sees_sigpipe() {
        // The Rust runtime ignores SIGPIPE before main.
        assert_ne!(ignored_signals() & (1 << (libc::SIGPIPE - 1)), 0);
        assert_eq!(ignored_signals() & (1 << (libc::SIGKILL - 1)), 0);
    }

    #[test]
    fn clone3_path_is_taken_where_the_kernel_has_it() {
        let status = crate::Command::new("true").status().unwrap();
        assert!(status.success());
        // CLONE_CLEAR_SIGHAND is Linux 5.5; a refusal there means a seccomp
        // filter, and the fallback path is the one in use.
        let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap();
        let mut parts = release.split(|c: char| !c.is_ascii_digit());
        let major: u32 = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
        let minor: u32 = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
        if cfg!(target_arch = "x86_64") && (major, minor) >= (5, 5) {
            assert!(
                clone3_in_use(),
                "clone3 was refused on Linux {release}: a seccomp filter?"
            );
        } else {
            assert!(!clone3_usable() || !clone3_in_use());
        }
    }

    #[test]
    fn close_range_probe_matches_this_kernel() {
        // Linux >= 5.9 has close_range; the probe must say so and be stable.
        assert_eq!(have_close_range(), have_close_range());
        assert_eq!(have_close_range_cloexec(), have_close_range_cloexec());
    }
}
