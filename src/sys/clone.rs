//! Starting and ending processes: `clone(2)`, `clone3(2)`, `fork(2)`,
//! `execve(2)`, `_exit(2)`. rustix has no public clone with an entry
//! function, and a vfork-style child must start in a function of its own
//! (see the crate's safety model).

use std::ffi::{c_char, c_int, c_void, CStr};
use std::sync::atomic::AtomicU8;

use rustix::io::Errno;

use super::compat;
#[cfg(target_arch = "x86_64")]
use super::errno_from_raw;
use super::fd::Probe;
use super::last_errno;

/// `CLONE_NEWTIME` (Linux 5.6), which the libc crate does not name on every
/// target; only `clone3` takes it (0x80 is the exit signal's field in the
/// old `clone`).
pub(crate) const CLONE_NEWTIME: u64 = 0x80;

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

/// The child-side entry point type for [`clone_vfork`].
pub(crate) type ChildEntry = extern "C" fn(*mut c_void) -> c_int;

/// `clone(CLONE_VM | CLONE_VFORK | SIGCHLD)`, with `CLONE_PIDFD` when
/// `with_pidfd` and the `CLONE_NEW*` flags `ns` (never `CLONE_NEWTIME`,
/// which only `clone3` takes; `CLONE_NEWUSER` is allowed with `CLONE_VM`,
/// only `CLONE_FS` and `CLONE_THREAD`, never passed here, exclude it), running `entry(arg)` on the stack that ends at
/// `stack_top`. Returns the child's pid and its pidfd (-1 without one) once
/// the child has exec'd or exited.
///
/// A kernel older than 5.2 ignores `CLONE_PIDFD`: the call succeeds and the
/// pidfd slot stays -1. That is remembered ([`clone_pidfd_usable`] answers
/// false from then on); the caller opens a pidfd otherwise or owns the child
/// by pid.
///
/// # Safety
/// * `stack_top` must be the 16-byte aligned end of a writable region that is
///   large enough for `entry` and is not used by anything else until this
///   returns;
/// * `entry` must never return into the C library's frame: it ends in
///   `execve` or `_exit`, touches no thread-locals but `errno`, takes no
///   lock, does not allocate and does not unwind;
/// * every signal must be blocked in the calling thread;
/// * `pidfd_slot` must be valid for reads and writes of a `c_int` until
///   this returns. The kernel stores the pidfd there before the child runs.
pub(crate) unsafe fn clone_vfork(
    entry: ChildEntry,
    stack_top: *mut u8,
    arg: *mut c_void,
    with_pidfd: bool,
    ns: u64,
    pidfd_slot: *mut c_int,
) -> Result<(libc::pid_t, c_int), Errno> {
    // SAFETY: the caller's promise: the slot is valid for writes.
    unsafe { pidfd_slot.write(-1) };
    // The caller keeps CLONE_NEWTIME (0x80, a signal number here) out.
    let mut flags = libc::CLONE_VM | libc::CLONE_VFORK | libc::SIGCHLD | ns as c_int;
    if with_pidfd {
        if compat::forced(compat::CLONE_REFUSES_PIDFD) {
            return Err(compat::unknown_argument());
        }
        if !compat::forced(compat::CLONE_IGNORES_PIDFD) {
            flags |= libc::CLONE_PIDFD;
        }
    }
    // SAFETY: upheld by the caller, see above. With CLONE_PIDFD the kernel
    // stores the new pidfd through the parent_tid argument (and leaves it
    // alone where it ignores the flag); without it that argument is unused.
    let pid = unsafe { libc::clone(entry, stack_top.cast::<c_void>(), flags, arg, pidfd_slot) };
    if pid < 0 {
        return Err(last_errno());
    }
    // SAFETY: as above; the kernel wrote the pidfd there, or left the -1.
    let pidfd = unsafe { pidfd_slot.read() };
    if with_pidfd {
        (if pidfd >= 0 { Probe::Yes } else { Probe::No }).store(&CLONE_PIDFD_STATE);
    }
    Ok((pid, pidfd))
}

/// Whether a vfork-style child of `clone3` may start on the parent's fd
/// table (`CLONE_FILES`) and take a table of its own as its first step (see
/// [`unshare_table_below`](super::fd::unshare_table_below)): where the
/// kernel has `close_range(2)` (Linux 5.9), until a `clone3` refuses the
/// flag. Only `clone3` asks for it: every kernel with `close_range` has
/// `clone3`, so the plain `clone` runs only under a filter or an emulator,
/// and valgrind, whose `clone3` is missing, ends the whole process at a
/// `clone` with `CLONE_FILES` next to `CLONE_VFORK` instead of refusing it.
/// Parent-only.
pub(crate) fn shared_files_usable() -> bool {
    Probe::load(&SHARED_FILES_STATE) != Probe::No && super::fd::have_close_range()
}

/// A clone with `CLONE_FILES` was refused and the same clone without it
/// worked: children start on a copy of the table from now on.
pub(crate) fn shared_files_refused() {
    Probe::No.store(&SHARED_FILES_STATE);
}

static SHARED_FILES_STATE: AtomicU8 = AtomicU8::new(Probe::Unknown as u8);

/// Whether `clone` gives a pidfd with `CLONE_PIDFD` (a [`Probe`]): learned
/// from the first call that asked for one and cached.
static CLONE_PIDFD_STATE: AtomicU8 = AtomicU8::new(Probe::Unknown as u8);

/// Whether `clone` is worth asking for a pidfd (not ignored or refused
/// before).
pub(crate) fn clone_pidfd_usable() -> bool {
    Probe::load(&CLONE_PIDFD_STATE) != Probe::No
}

/// Whether `clone` with `CLONE_PIDFD` failed because this system does not
/// take the flag (`EINVAL`: an emulator or sandbox that does not know it;
/// `ENOSYS`, `EPERM`: a seccomp filter), which is remembered; no child was
/// created, so the caller tries again without the flag. Other errors
/// (`EAGAIN`, `ENOMEM`) are the system's answer to any clone.
///
/// With `remember` false (a clone with namespace flags, whose `EPERM` or
/// `EINVAL` may be the namespaces') the refusal is not stored; the caller
/// stores it with [`clone_pidfd_refusal_confirmed`] once the clone without
/// the flag works.
pub(crate) fn clone_pidfd_refused(e: Errno, remember: bool) -> bool {
    let refused = matches!(e, Errno::INVAL | Errno::NOSYS | Errno::PERM);
    if refused && remember {
        Probe::No.store(&CLONE_PIDFD_STATE);
    }
    refused
}

/// See [`clone_pidfd_refused`].
pub(crate) fn clone_pidfd_refusal_confirmed() {
    Probe::No.store(&CLONE_PIDFD_STATE);
}

/// `CLONE_CLEAR_SIGHAND` (Linux 5.5): the kernel resets every handled
/// signal of the new process to `SIG_DFL`; ignored ones stay ignored.
const CLONE_CLEAR_SIGHAND: u64 = 0x1_0000_0000;

/// `CLONE_INTO_CGROUP` (Linux 5.7): the child starts in the cgroup v2
/// directory whose fd is `clone_args.cgroup`.
const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// `struct clone_args`, version 2 (88 bytes), as `clone3(2)` reads it.
/// Without a cgroup only version 0 (the first 64 bytes) is passed: every
/// kernel with `clone3` reads that much, and a seccomp profile may tell
/// callers apart by the size (`tools/compat-run`'s `docker-eperm-old-glibc`).
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
    // Version 1 (Linux 5.5): unused here, zero.
    set_tid: u64,
    set_tid_size: u64,
    // Version 2 (Linux 5.7): the cgroup directory fd of CLONE_INTO_CGROUP.
    cgroup: u64,
}
static_assertions::const_assert_eq!(std::mem::size_of::<CloneArgs>(), 88);
static_assertions::const_assert_eq!(std::mem::offset_of!(CloneArgs, cgroup), 80);

/// `CLONE_ARGS_SIZE_VER0`: the size passed without a cgroup.
const CLONE_ARGS_SIZE_VER0: usize = 64;

impl CloneArgs {
    /// Zero everywhere but `flags`, `exit_signal` and, with `cgroup`,
    /// `CLONE_INTO_CGROUP` and its fd; and the size to pass with it.
    fn new(flags: u64, cgroup: Option<c_int>) -> (CloneArgs, usize) {
        let (flags, fd, size) = match cgroup {
            Some(fd) => (
                flags | CLONE_INTO_CGROUP,
                fd as u64,
                std::mem::size_of::<CloneArgs>(),
            ),
            None => (flags, 0, CLONE_ARGS_SIZE_VER0),
        };
        let args = CloneArgs {
            flags,
            pidfd: 0,
            child_tid: 0,
            parent_tid: 0,
            exit_signal: libc::SIGCHLD as u64,
            stack: 0,
            stack_size: 0,
            tls: 0,
            set_tid: 0,
            set_tid_size: 0,
            cgroup: fd,
        };
        (args, size)
    }
}

/// Whether `clone3` here places a child in a cgroup (`CLONE_INTO_CGROUP`,
/// Linux 5.7) on the `clone3` path: probed once, without creating a
/// process, and cached. The probe is a `clone3` with the flag and an fd
/// number no process can have open (`INT_MAX`, above any `RLIMIT_NOFILE`):
/// a kernel that knows the flag and the 88-byte struct gets as far as the
/// fd and answers `EBADF`; 5.3 to 5.6 refuse the unknown flag (`EINVAL`) or
/// the non-zero bytes past the struct they know (`E2BIG`); a kernel without
/// `clone3`, or a seccomp profile refusing it, answers `ENOSYS` or `EPERM`.
/// Only `EBADF` means yes. False wherever the `clone3` path itself is not
/// used ([`clone3_usable`]), and under the test-only
/// `compat::NO_CLONE_INTO_CGROUP` or `compat::NO_CLONE3`, which are read on
/// every call. Parent-only.
pub(crate) fn have_clone_into_cgroup() -> bool {
    static STATE: AtomicU8 = AtomicU8::new(Probe::Unknown as u8);
    if !clone3_usable()
        || compat::forced(compat::NO_CLONE3)
        || compat::forced(compat::NO_CLONE_INTO_CGROUP)
    {
        return false;
    }
    match Probe::load(&STATE) {
        Probe::Yes => true,
        Probe::No => false,
        Probe::Unknown => {
            // No CLONE_VM, no stack: should the kernel ever make a child, it
            // runs on a copy of this stack and leaves at once.
            let (args, size) = CloneArgs::new(CLONE_CLEAR_SIGHAND, Some(c_int::MAX));
            // SAFETY: the kernel reads `args` (`size` bytes, all of them
            // initialised) and fails on the fd before it creates anything;
            // a child, were one made, would only call _exit.
            let ret = unsafe { libc::syscall(libc::SYS_clone3, &args as *const CloneArgs, size) };
            let answer = if ret == 0 {
                exit_now(0)
            } else if ret > 0 {
                // Cannot happen (the fd is not open); reap it.
                let _ = rustix::process::waitpid(
                    rustix::process::Pid::from_raw(ret as i32),
                    rustix::process::WaitOptions::empty(),
                );
                Probe::No
            } else if last_errno() == Errno::BADF {
                Probe::Yes
            } else {
                Probe::No
            };
            answer.store(&STATE);
            answer == Probe::Yes
        }
    }
}

/// Whether `clone3` with `CLONE_CLEAR_SIGHAND` may be used (a [`Probe`]),
/// learned from the first real call and cached, like
/// [`have_close_range`](super::fd::have_close_range).
static CLONE3_STATE: AtomicU8 = AtomicU8::new(Probe::Unknown as u8);

/// Whether the `clone3` path is worth trying (not refused before, and this
/// architecture has the trampoline).
pub(crate) fn clone3_usable() -> bool {
    cfg!(target_arch = "x86_64") && Probe::load(&CLONE3_STATE) != Probe::No
}

/// Whether the `clone3` path has been used successfully in this process.
#[cfg(test)]
pub(crate) fn clone3_in_use() -> bool {
    Probe::load(&CLONE3_STATE) == Probe::Yes
}

/// Whether `clone3` failed because this system may not offer it (ENOSYS:
/// kernel < 5.3 or a seccomp filter; EPERM: a filter; EINVAL: a kernel
/// without `CLONE_CLEAR_SIGHAND`); no child was created in any of these
/// cases, so the caller falls back to [`clone_vfork`]. The refusal is
/// remembered when `remember`: a clone with namespace flags passes false,
/// since then `EPERM` and `EINVAL` may be the namespaces' (no privilege, a
/// kind this kernel lacks), not clone3's; see [`clone3_refusal_confirmed`].
pub(crate) fn clone3_refused(e: Errno, remember: bool) -> bool {
    let refused = matches!(e, Errno::NOSYS | Errno::PERM | Errno::INVAL);
    if refused && remember {
        Probe::No.store(&CLONE3_STATE);
    }
    refused
}

/// A `clone3` with namespace flags was refused, and the plain `clone` with
/// the same namespaces then worked: the refusal was clone3's, remembered
/// from now on.
pub(crate) fn clone3_refusal_confirmed() {
    if Probe::load(&CLONE3_STATE) != Probe::Yes {
        Probe::No.store(&CLONE3_STATE);
    }
}

/// `clone3(CLONE_VM | CLONE_VFORK | CLONE_PIDFD | CLONE_CLEAR_SIGHAND | ns,
/// exit_signal = SIGCHLD)`, `ns` being `CLONE_NEW*` flags (`CLONE_NEWTIME`
/// included: with `CLONE_VM` the child enters the time namespace at exec),
/// and with `cgroup` (a cgroup v2 directory fd) `CLONE_INTO_CGROUP`, which
/// passes the 88-byte struct; running `entry(arg)` on the stack
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
/// ends in `execve` or `_exit`; `pidfd_slot` as for [`clone_vfork`] (a
/// child started on this process's fd table, `CLONE_FILES` in `ns`, reads there
/// which number its own table holds the pidfd at); every signal is blocked in the calling
/// thread.
#[cfg(target_arch = "x86_64")]
pub(crate) unsafe fn clone3_vfork(
    entry: ChildEntry,
    stack: *mut u8,
    stack_size: usize,
    arg: *mut c_void,
    ns: u64,
    cgroup: Option<c_int>,
    pidfd_slot: *mut c_int,
) -> Result<(libc::pid_t, c_int), Errno> {
    if compat::forced(compat::NO_CLONE3) {
        return Err(compat::missing());
    }
    if ns & libc::CLONE_FILES as u64 != 0 && compat::forced(compat::CLONE_REFUSES_SHARED_FILES) {
        return Err(Errno::INVAL);
    }
    if cgroup.is_some() && compat::forced(compat::NO_CLONE_INTO_CGROUP) {
        return Err(compat::unknown_argument());
    }
    // SAFETY: the caller's promise: the slot is valid for writes.
    unsafe { pidfd_slot.write(-1) };
    let (mut args, size) = CloneArgs::new(
        (libc::CLONE_VM | libc::CLONE_VFORK | libc::CLONE_PIDFD) as u64 | CLONE_CLEAR_SIGHAND | ns,
        cgroup,
    );
    args.pidfd = pidfd_slot as u64;
    args.stack = stack as u64;
    args.stack_size = stack_size as u64;
    let ret: isize;
    // SAFETY: the syscall reads `args` (valid, `size` bytes) and writes the
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
    // read the slot again after the block.
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
            in("rsi") size,
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
        Probe::Yes.store(&CLONE3_STATE);
        // SAFETY: the caller's promise; the kernel wrote the pidfd there.
        Ok((ret as libc::pid_t, unsafe { pidfd_slot.read() }))
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
    _ns: u64,
    _cgroup: Option<c_int>,
    _pidfd_slot: *mut c_int,
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

/// A fork-style clone (no `CLONE_VM`, the child on a copy of the caller's
/// stack) that starts the child in new namespaces `ns` and, with `cgroup`,
/// in that cgroup directory: `fork(2)` takes no flags. `clone(ns |
/// SIGCHLD)`, or `clone3` when `ns` has `CLONE_NEWTIME` (which only
/// `clone3` takes) or there is a cgroup (`CLONE_INTO_CGROUP`). `Ok(0)` in
/// the child, `Ok(pid)` in the parent.
///
/// Unlike the C library's `fork`, no `pthread_atfork` handler runs and the
/// C library's own state is not reset in the child; a child that makes
/// only raw system calls, as ours does, needs neither.
///
/// # Safety
/// As [`fork`].
pub(crate) unsafe fn fork_into(ns: u64, cgroup: Option<c_int>) -> Result<libc::pid_t, Errno> {
    let ret = if ns & CLONE_NEWTIME != 0 || cgroup.is_some() {
        if compat::forced(compat::NO_CLONE3) {
            return Err(compat::missing());
        }
        if cgroup.is_some() && compat::forced(compat::NO_CLONE_INTO_CGROUP) {
            return Err(compat::unknown_argument());
        }
        let (args, size) = CloneArgs::new(ns, cgroup);
        // SAFETY: without CLONE_VM and without a stack the child runs on a
        // copy of this stack and returns here, as from fork; the kernel
        // reads `args` (`size` bytes).
        unsafe { libc::syscall(libc::SYS_clone3, &args as *const CloneArgs, size) }
    } else {
        // SAFETY: as above; every pointer argument is null, which is the
        // same in every architecture's argument order.
        unsafe {
            libc::syscall(
                libc::SYS_clone,
                (ns as libc::c_ulong) | libc::SIGCHLD as libc::c_ulong,
                0usize,
                0usize,
                0usize,
                0usize,
            )
        }
    };
    if ret < 0 {
        Err(last_errno())
    } else {
        Ok(ret as libc::pid_t)
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

/// A fork-style clone with no flags but `SIGCHLD`: `fork(2)` as a raw
/// system call, for a child process to start another (the paused daemon).
/// No `pthread_atfork` handler runs (see [`fork_into`]).
///
/// # Safety
/// As [`fork`].
pub(crate) unsafe fn fork_raw() -> Result<libc::pid_t, Errno> {
    // SAFETY: upheld by the caller; no namespace flag, no cgroup.
    unsafe { fork_into(0, None) }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// This kernel's release string, its (major, minor), and whether this
    /// process runs under a seccomp filter.
    fn this_kernel() -> (String, (u32, u32), bool) {
        let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap();
        let mut parts = release.split(|c: char| !c.is_ascii_digit());
        let major: u32 = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
        let minor: u32 = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
        let filtered = std::fs::read_to_string("/proc/self/status")
            .map(|s| {
                s.lines()
                    .any(|l| l.starts_with("Seccomp:") && l.trim_end() != "Seccomp:\t0")
            })
            .unwrap_or(false);
        (release, (major, minor), filtered)
    }

    #[test]
    fn clone3_path_is_taken_where_the_kernel_has_it() {
        let status = crate::Command::new("true").status().unwrap();
        assert!(status.success());
        // CLONE_CLEAR_SIGHAND is Linux 5.5; a refusal there means a seccomp
        // filter, and the fallback path is the one in use.
        // A seccomp filter (a container profile, the compat launcher) may
        // refuse clone3 on any kernel: then the fallback is right.
        let (release, (major, minor), filtered) = this_kernel();
        if filtered {
            eprintln!("clone3 check skipped: this process runs under a seccomp filter");
            assert!(clone3_usable() || !clone3_in_use());
        } else if cfg!(target_arch = "x86_64") && (major, minor) >= (5, 5) {
            assert!(
                clone3_in_use(),
                "clone3 was refused on Linux {release}: a seccomp filter?"
            );
        } else {
            assert!(!clone3_usable() || !clone3_in_use());
        }
    }

    #[test]
    fn clone_into_cgroup_is_found_where_the_kernel_has_it() {
        let (release, (major, minor), filtered) = this_kernel();
        let have = have_clone_into_cgroup();
        // Cached: the same answer, and no child was ever made by the probe.
        assert_eq!(have_clone_into_cgroup(), have);
        if filtered {
            eprintln!("CLONE_INTO_CGROUP check skipped: this process runs under a seccomp filter");
        } else if cfg!(target_arch = "x86_64") && (major, minor) >= (5, 7) {
            assert!(have, "CLONE_INTO_CGROUP not found on Linux {release}");
        } else {
            assert!(!have, "CLONE_INTO_CGROUP found on Linux {release}");
        }
    }

    #[test]
    fn clone_args_are_version_0_without_a_cgroup_and_2_with_one() {
        let (args, size) = CloneArgs::new(1, None);
        assert_eq!((args.flags, args.cgroup, size), (1, 0, 64));
        let (args, size) = CloneArgs::new(1, Some(7));
        assert_eq!(
            (args.flags, args.cgroup, size),
            (1 | CLONE_INTO_CGROUP, 7, 88)
        );
    }
}
