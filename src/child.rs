//! The child side: everything that runs between clone/fork and exec.
//!
//! # Contract
//!
//! Code in this module runs in a process that shares the parent's memory
//! (`CLONE_VM | CLONE_VFORK`, on a stack buffer in the spawning frame) or
//! in a copy of a multi-threaded parent (`fork`). Other parent threads may
//! hold any lock at that moment, and in the `CLONE_VM` case they keep
//! running in the same address space. Therefore this module:
//!
//! * **never allocates or frees** heap memory (no `Vec`, `String`, `format!`,
//!   `Box`, no `std::io::Error` with a message);
//! * **takes no lock** and calls nothing that might (no stdio, no `println!`,
//!   no `std::env`, no logging);
//! * **never panics**: no indexing that can fail (only `get` and iterators),
//!   no `unwrap`, no arithmetic that can overflow, no `Errno` built from an
//!   unchecked value;
//! * **touches no thread-local** except the C library's `errno`, which the
//!   suspended parent thread does not read until the child is gone;
//! * **writes no parent memory** except its own stack (and, for a daemon,
//!   one flag in the frame of its intermediate, which is suspended while the
//!   daemon runs);
//! * makes only **raw system calls**: rustix's public API, and from the
//!   `libc` crate only `sigaction`, the signal mask, `close_range`, `execve`
//!   and `_exit` (see [`crate::sys`]).
//!
//! Everything it reads was prepared by `build()` (the [`Plan`]) or by the
//! spawning call (the [`ChildCtx`]). A failure is sent to the parent as a
//! 12-byte message on a close-on-exec pipe and the child exits with 125
//! (set-up failed), 126 (the program cannot be executed) or 127 (it was not
//! found), env(1)'s convention.
//!
//! The tests in `tests/child_contract.rs` run every option of this module
//! under a global allocator that aborts when called from any process but the
//! test itself.
//!
//! # Order of the steps
//!
//! 1. signal dispositions to default (or kept when ignored) and the mask
//!    emptied (or restored);
//! 2. stdio and passed/mapped fds placed, collision-safe, `FD_CLOEXEC`
//!    cleared only on the kept ones;
//! 3. every other fd closed (`close_range` over the gaps, or a
//!    `/proc/self/fd` walk into a stack buffer);
//! 4. daemon mode only: the child is the *intermediate*: it calls `setsid`,
//!    starts the daemon with a second `clone(CLONE_VM | CLONE_VFORK)` on a
//!    second stack region, sends the daemon's pid to the parent and exits.
//!    The daemon changes to "/", acquires the pidfile (create, lock, truncate,
//!    write its pid, keep the fd across exec) and goes on with step 5;
//! 5. umask, rlimits, bounding set, KEEPCAPS, groups, gid, uid, capability
//!    sets and ambient set, no_new_privs, parent-death signal, session,
//!    process group (see [`apply_privileges`]);
//! 6. working directory;
//! 7. `pre_exec` hooks;
//! 8. the pause of `spawn_paused`;
//! 9. exec.

use std::ffi::{c_int, c_void, CStr};
use std::mem::{ManuallyDrop, MaybeUninit};
use std::os::fd::{BorrowedFd, FromRawFd, IntoRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};

use rustix::io::{DupFlags, Errno, FdFlags};

use crate::error::Stage;
use crate::plan::{CloseFds, Plan, Src};
use crate::sys;

/// Message tags on the report pipe.
pub(crate) const MSG_ERROR: u32 = 1;
/// Daemon mode: the intermediate started the daemon; the value is its pid.
pub(crate) const MSG_DAEMON: u32 = 2;
/// The child reached the pause point of `spawn_paused`.
pub(crate) const MSG_PAUSED: u32 = 3;

/// One report message: tag, stage code, value (errno or pid).
pub(crate) const MSG_LEN: usize = 12;

/// Encodes a report message. Child-safe.
pub(crate) fn encode(tag: u32, stage: u32, value: i32) -> [u8; MSG_LEN] {
    let mut m = [0u8; MSG_LEN];
    let (a, rest) = m.split_at_mut(4);
    let (b, c) = rest.split_at_mut(4);
    a.copy_from_slice(&tag.to_ne_bytes());
    b.copy_from_slice(&stage.to_ne_bytes());
    c.copy_from_slice(&value.to_ne_bytes());
    m
}

/// Decodes a report message.
pub(crate) fn decode(m: &[u8; MSG_LEN]) -> (u32, u32, i32) {
    let word = |i: usize| [m[i], m[i + 1], m[i + 2], m[i + 3]];
    (
        u32::from_ne_bytes(word(0)),
        u32::from_ne_bytes(word(4)),
        i32::from_ne_bytes(word(8)),
    )
}

/// What the spawning call adds to the frozen [`Plan`] for one child.
pub(crate) struct ChildCtx<'a> {
    pub plan: &'a Plan,
    /// Per-spawn fds (pipe ends), referenced by `Src::Dynamic(i)`.
    pub dynamic: &'a [RawFd],
    /// The write end of the report pipe (close-on-exec).
    pub report: RawFd,
    /// The read end of the pause pipe of `spawn_paused`, or -1.
    pub pause: RawFd,
    /// The spawning thread's signal mask before it blocked everything.
    pub parent_mask: sys::SigSet,
    /// The parent's pid, to notice its death when a parent-death signal is set.
    pub parent_pid: i32,
    /// Daemon mode's places in the spawning frame; null pointers otherwise.
    pub daemon: DaemonSlots,
}

/// Daemon mode's two places in the spawning frame.
#[derive(Clone, Copy)]
pub(crate) struct DaemonSlots {
    /// The 16-byte aligned top of the second stack region the intermediate
    /// starts the daemon on.
    pub stack: *mut u8,
    /// Where the kernel stores the daemon's pid (`CLONE_PARENT_SETTID`)
    /// before the daemon runs: if the intermediate is killed while the daemon
    /// still runs on the spawning frame's memory, the parent finds the
    /// daemon there and stops it before that memory is reused.
    pub pid: *mut c_int,
}

impl DaemonSlots {
    /// Not a daemon.
    pub(crate) const NONE: DaemonSlots = DaemonSlots {
        stack: std::ptr::null_mut(),
        pid: std::ptr::null_mut(),
    };
}

/// The fds the child carries through its steps; they may move (see `place_fds`).
#[derive(Clone, Copy)]
struct Carried {
    report: RawFd,
    pause: RawFd,
}

/// The `clone` entry point: runs [`child_main`] on the child stack.
pub(crate) extern "C" fn vfork_entry(arg: *mut std::ffi::c_void) -> c_int {
    // SAFETY: the spawning frame passes a pointer to a live ChildCtx and is
    // suspended (CLONE_VFORK) until this process execs or exits.
    let ctx = unsafe { &*(arg as *const ChildCtx<'_>) };
    child_main(ctx)
}

/// The `clone3` entry point: like [`vfork_entry`], in a child whose signal
/// handlers the kernel has already reset (`CLONE_CLEAR_SIGHAND`).
pub(crate) extern "C" fn clear_sighand_entry(arg: *mut std::ffi::c_void) -> c_int {
    // SAFETY: as in `vfork_entry`: a live ChildCtx in the suspended frame.
    let ctx = unsafe { &*(arg as *const ChildCtx<'_>) };
    child_steps(ctx, true)
}

/// Runs every step of the child and execs; never returns.
pub(crate) fn child_main(ctx: &ChildCtx<'_>) -> ! {
    child_steps(ctx, false)
}

/// The steps; `handlers_cleared` says the kernel has reset every handler.
fn child_steps(ctx: &ChildCtx<'_>, handlers_cleared: bool) -> ! {
    let plan = ctx.plan;
    let mut carried = Carried {
        report: ctx.report,
        pause: ctx.pause,
    };
    if let Err(e) = reset_signals(ctx, handlers_cleared) {
        fail(carried.report, Stage::Signals, e);
    }
    if let Err((stage, e)) = place_fds(ctx, &mut carried) {
        fail(carried.report, stage, e);
    }
    if let Err(e) = close_other_fds(plan, &carried) {
        fail(carried.report, Stage::CloseFds, e);
    }
    if plan.daemon.is_some() {
        intermediate_main(ctx, carried);
    }
    let (stage, e) = finish(ctx, &carried, plan.cwd.as_deref());
    fail(carried.report, stage, e)
}

/// Steps 5 to 9: privileges, working directory `cwd`, hooks, pause, exec.
/// Returns only on failure.
fn finish(ctx: &ChildCtx<'_>, carried: &Carried, cwd: Option<&CStr>) -> (Stage, Errno) {
    let plan = ctx.plan;
    if let Err(failure) = apply_privileges(ctx) {
        return failure;
    }
    if let Some(cwd) = cwd {
        if let Err(e) = rustix::process::chdir(cwd) {
            return (Stage::Chdir, e);
        }
    }
    for hook in plan.hooks.iter() {
        if let Err(e) = hook() {
            return (Stage::Hook, e);
        }
    }
    if carried.pause >= 0 {
        if let Err(e) = wait_for_resume(carried) {
            return (Stage::Handshake, e);
        }
    }
    // SAFETY: argv and envp are the null-terminated pointer arrays of the
    // plan, which outlives this call.
    let e = unsafe { sys::execve(&plan.path, plan.argv.as_ptr(), plan.envp.as_ptr()) };
    (Stage::Exec, e)
}

/// What the intermediate hands the daemon it starts.
struct DaemonCtx<'a, 'b> {
    ctx: &'a ChildCtx<'b>,
    carried: Carried,
    /// Set by the daemon just before it exits on a failure, so that the
    /// intermediate knows to reap it. The only memory outside its own stack
    /// the daemon writes: it lives in the intermediate's frame, and the
    /// intermediate is suspended (`CLONE_VFORK`) until the daemon is done.
    failed: AtomicBool,
}

/// Daemon mode, in the intermediate process: a new session, then the daemon
/// on the second stack, then the daemon's pid to the parent and `_exit(0)`.
///
/// The daemon is started with `clone(CLONE_VM | CLONE_VFORK)` like the
/// intermediate itself, so no page table is copied at either level.
fn intermediate_main(ctx: &ChildCtx<'_>, carried: Carried) -> ! {
    if let Err(e) = rustix::process::setsid() {
        fail(carried.report, Stage::Daemon, e);
    }
    let slots = ctx.daemon;
    if slots.stack.is_null() || slots.pid.is_null() {
        fail(carried.report, Stage::Daemon, Errno::INVAL);
    }
    // The daemon runs on memory of the spawning frame, which is released
    // when this process ends: a signal that killed it early would let the
    // parent return while the daemon still runs there. So everything that
    // can be blocked is, until this process exits (the daemon restores the
    // mask first thing). SIGKILL cannot be blocked: for that case the kernel
    // records the daemon's pid in the spawning frame (`slots.pid`), where the
    // parent finds it and stops the daemon before returning.
    if let Err(e) = sys::set_signal_mask(&sys::full_sigset()) {
        fail(carried.report, Stage::Signals, e);
    }
    let dctx = DaemonCtx {
        ctx,
        carried,
        failed: AtomicBool::new(false),
    };
    // SAFETY: `slots.stack` is the top of a second child stack provided by
    // the spawning frame, used by nothing else (this process runs on the
    // first one); `slots.pid` is a writable int in that frame;
    // `daemon_entry` keeps the child contract and ends in execve or _exit;
    // every signal that can be is blocked, and no handler is installed
    // anyway (step 1 reset them all); `dctx` lives in this frame until clone
    // returns, which is after the daemon exec'd or exited.
    let cloned = unsafe {
        sys::clone_vfork_settid(
            daemon_entry,
            slots.stack,
            &dctx as *const DaemonCtx<'_, '_> as *mut c_void,
            slots.pid,
        )
    };
    let pid = match cloned {
        Ok(pid) => pid,
        Err(e) => fail(carried.report, Stage::Daemon, e),
    };
    if dctx.failed.load(Ordering::SeqCst) {
        // The daemon reported its failure and is exiting: reap it here, or
        // it would become a zombie of whoever inherits it. It is this
        // process's unreaped child, so its pid cannot have been reused.
        let _ = rustix::io::retry_on_intr(|| {
            rustix::process::waitpid(
                rustix::process::Pid::from_raw(pid),
                rustix::process::WaitOptions::empty(),
            )
        });
    }
    let msg = encode(MSG_DAEMON, Stage::Daemon.code(), pid);
    // SAFETY: `report` is open in this process until it exits.
    let fd = unsafe { BorrowedFd::borrow_raw(carried.report) };
    match rustix::io::retry_on_intr(|| rustix::io::write(fd, &msg)) {
        Ok(_) => sys::exit_now(0),
        Err(_) => sys::exit_now(125),
    }
}

/// The daemon's `clone` entry point: chdir("/"), the pidfile, then steps 4
/// to 9 like any child.
extern "C" fn daemon_entry(arg: *mut c_void) -> c_int {
    // SAFETY: the intermediate passes a pointer to a live DaemonCtx and is
    // suspended (CLONE_VFORK) until this process execs or exits.
    let d = unsafe { &*(arg as *const DaemonCtx<'_, '_>) };
    let (stage, e) = daemon_steps(d);
    d.failed.store(true, Ordering::SeqCst);
    fail(d.carried.report, stage, e)
}

/// Returns only on failure.
fn daemon_steps(d: &DaemonCtx<'_, '_>) -> (Stage, Errno) {
    if let Err(e) = set_final_mask(d.ctx) {
        return (Stage::Signals, e);
    }
    // A daemon always runs in "/": it must not keep a mount point busy.
    if let Err(e) = rustix::process::chdir(c"/") {
        return (Stage::Chdir, e);
    }
    if let Some(path) = d
        .ctx
        .plan
        .daemon
        .as_ref()
        .and_then(|p| p.pidfile.as_deref())
    {
        if let Err(e) = acquire_pidfile(path) {
            return (Stage::Pidfile, e);
        }
    }
    finish(d.ctx, &d.carried, None)
}

/// How often a pidfile replaced between open and lock is tried again.
const PIDFILE_ATTEMPTS: u32 = 8;

/// Creates `path`, takes a POSIX write lock on the whole file (`F_SETLK`,
/// `F_WRLCK`, start 0, length 0: rustix's `fcntl_lock`), truncates it,
/// writes this process's pid and a newline, and clears close-on-exec on the
/// fd so the lock lives exactly as long as this process, across exec.
///
/// A POSIX lock belongs to the process (here the daemon, which does not
/// share its fd table) and is released when the process ends or closes any
/// fd of that file. If another live process holds the lock, `F_SETLK`
/// fails at once with `EAGAIN` (or `EACCES`). A file unlinked or replaced
/// between open and lock (a previous daemon cleaning up) is detected by
/// comparing device and inode with the path's, and opened again.
fn acquire_pidfile(path: &CStr) -> Result<(), Errno> {
    use rustix::fs::{AtFlags, FlockOperation, Mode, OFlags, CWD};
    let mut attempts = 0u32;
    let fd = loop {
        let fd = rustix::fs::openat(
            CWD,
            path,
            OFlags::WRONLY | OFlags::CREATE | OFlags::CLOEXEC | OFlags::NOCTTY,
            Mode::from_raw_mode(0o644),
        )?;
        rustix::fs::fcntl_lock(&fd, FlockOperation::NonBlockingLockExclusive)?;
        let held = rustix::fs::fstat(&fd)?;
        match rustix::fs::statat(CWD, path, AtFlags::empty()) {
            Ok(now) if now.st_dev == held.st_dev && now.st_ino == held.st_ino => break fd,
            Ok(_) | Err(Errno::NOENT) => {}
            Err(e) => return Err(e),
        }
        attempts = attempts.saturating_add(1);
        if attempts >= PIDFILE_ATTEMPTS {
            return Err(Errno::AGAIN);
        }
        // `fd` is closed here, which drops the lock on the stale file.
    };
    rustix::fs::ftruncate(&fd, 0)?;
    let mut buf = [0u8; PID_TEXT_LEN];
    let text = pid_text(rustix::process::getpid().as_raw_nonzero().get(), &mut buf);
    let mut rest = text;
    while !rest.is_empty() {
        let n = rustix::io::retry_on_intr(|| rustix::io::write(&fd, rest))?;
        if n == 0 {
            return Err(Errno::IO);
        }
        rest = rest.get(n..).unwrap_or(&[]);
    }
    rustix::io::fcntl_setfd(&fd, FdFlags::empty())?;
    // Kept open on purpose: closing it would release the lock.
    let _ = fd.into_raw_fd();
    Ok(())
}

/// Enough for any `i32` and a newline.
const PID_TEXT_LEN: usize = 12;

/// Formats `pid` and a newline into `buf` without allocating; returns the
/// used tail of `buf`. Child-safe.
fn pid_text(pid: i32, buf: &mut [u8; PID_TEXT_LEN]) -> &[u8] {
    let mut n = pid.unsigned_abs();
    let mut start = PID_TEXT_LEN;
    let mut push = |b: u8| {
        if let Some(i) = start.checked_sub(1) {
            if let Some(slot) = buf.get_mut(i) {
                *slot = b;
                start = i;
            }
        }
    };
    push(b'\n');
    loop {
        // `n % 10` is below 10: the cast and the addition cannot overflow.
        push(b'0' + (n % 10) as u8);
        n /= 10;
        if n == 0 {
            break;
        }
    }
    if pid < 0 {
        push(b'-');
    }
    buf.get(start..).unwrap_or(&[])
}

/// Reports `(stage, errno)` to the parent and exits.
fn fail(report: RawFd, stage: Stage, errno: Errno) -> ! {
    let msg = encode(MSG_ERROR, stage.code(), errno.raw_os_error());
    // SAFETY: `report` is open in this process until it execs or exits.
    let fd = unsafe { BorrowedFd::borrow_raw(report) };
    // Nothing can be done if this fails: the exit status still says 125-127.
    let _ = rustix::io::retry_on_intr(|| rustix::io::write(fd, &msg));
    let code = match (stage, errno) {
        (Stage::Exec, Errno::NOENT) => 127,
        (Stage::Exec, _) => 126,
        _ => 125,
    };
    sys::exit_now(code)
}

/// Step 1: default dispositions, then the mask.
///
/// Which dispositions need a system call:
/// * a **handler** must be reset before the mask is opened, or a signal
///   arriving before exec would run the parent's handler in this process.
///   With `handlers_cleared` (the `clone3` path, `CLONE_CLEAR_SIGHAND`) the
///   kernel has reset all of them atomically at clone time: nothing to do;
/// * an **ignored** signal survives both that flag and exec, so it is reset
///   here unless `keep_ignored`. On the `clone3` path these are the signals
///   ignored when `build()` ran (`ignored_at_build`): querying all 64
///   dispositions per spawn would cost more than the rest of the spawn;
/// * SIGKILL and SIGSTOP cannot change. 32 and 33 belong to the C library,
///   whose `sigaction` refuses them; on the `clone3` path an inherited
///   `SIG_IGN` on them is reset too, through the raw system call.
///
/// Without `handlers_cleared` (fork path, or a kernel without `clone3`)
/// every disposition is queried and reset here, at spawn time (32 and 33
/// through the kernel, on x86_64; kept as they are elsewhere).
fn reset_signals(ctx: &ChildCtx<'_>, handlers_cleared: bool) -> Result<(), Errno> {
    let policy = ctx.plan.signals;
    if handlers_cleared {
        let mut ignored = policy.ignored_at_build;
        if policy.keep_ignored {
            ignored = 0;
        }
        while ignored != 0 {
            let sig = ignored.trailing_zeros() as c_int + 1;
            ignored &= ignored - 1;
            // The clone3 path exists on x86_64 only (see `sys::clone3_usable`).
            #[cfg(target_arch = "x86_64")]
            sys::kernel_set_default(sig, true)?;
            #[cfg(not(target_arch = "x86_64"))]
            sys::set_signal_default(sig)?;
        }
    } else {
        for sig in 1..=sys::SIGNAL_MAX {
            if sys::signal_is_reserved(sig) {
                // The C library's two signals: reset through the kernel
                // (an inherited SIG_IGN would survive exec otherwise).
                #[cfg(target_arch = "x86_64")]
                if (sig == 32 || sig == 33) && !policy.keep_ignored {
                    sys::kernel_set_default(sig, true)?;
                }
                continue;
            }
            let was_ignored = sys::set_signal_default(sig)?;
            if was_ignored && policy.keep_ignored {
                sys::set_signal_ignored(sig)?;
            }
        }
    }
    set_final_mask(ctx)
}

/// The signal mask the program starts with: empty, or the parent's.
fn set_final_mask(ctx: &ChildCtx<'_>) -> Result<(), Errno> {
    if ctx.plan.signals.keep_mask {
        sys::set_signal_mask(&ctx.parent_mask)
    } else {
        sys::set_signal_mask(&sys::empty_sigset())
    }
}

/// `dup3(src, dst, flags)` onto a raw target number.
fn dup_onto(src: RawFd, dst: RawFd, flags: DupFlags) -> Result<(), Errno> {
    // SAFETY: the caller checked src != dst; `src` is only borrowed for the
    // call. The target number is wrapped without ever being closed by us
    // (ManuallyDrop): dup3 replaces whatever is there.
    let source = unsafe { BorrowedFd::borrow_raw(src) };
    let mut target = ManuallyDrop::new(unsafe { OwnedFd::from_raw_fd(dst) });
    rustix::io::dup3(source, &mut target, flags)
}

fn resolve(ctx: &ChildCtx<'_>, src: Src) -> Result<RawFd, Errno> {
    match src {
        Src::Fd(fd) => Ok(fd),
        Src::Dynamic(i) => ctx.dynamic.get(i).copied().ok_or(Errno::BADF),
    }
}

/// Step 2: place every planned fd.
///
/// A source that is also some mapping's target could be overwritten before it
/// is read, so such sources are first copied to `base + i`, where `base` is
/// above every fd this child knows of: the relocation needs no memory, and
/// pass 2 recomputes where mapping `i` went. The report and pause pipes are
/// moved the same way when they sit on a target.
fn place_fds(ctx: &ChildCtx<'_>, carried: &mut Carried) -> Result<(), (Stage, Errno)> {
    let plan = ctx.plan;
    let maps = &plan.maps;
    let mut base = plan.max_static_fd.max(carried.report).max(carried.pause);
    for fd in ctx.dynamic {
        base = base.max(*fd);
    }
    let base = base.saturating_add(1);
    let slot = |i: usize| base.saturating_add(i.min(i32::MAX as usize) as RawFd);

    if plan.is_target(carried.report) {
        let moved = slot(maps.len());
        dup_onto(carried.report, moved, DupFlags::CLOEXEC).map_err(|e| (Stage::Fds, e))?;
        carried.report = moved;
    }
    if carried.pause >= 0 && plan.is_target(carried.pause) {
        let moved = slot(maps.len().saturating_add(1));
        dup_onto(carried.pause, moved, DupFlags::CLOEXEC).map_err(|e| (Stage::Fds, e))?;
        carried.pause = moved;
    }
    for (i, m) in maps.iter().enumerate() {
        let src = resolve(ctx, m.src).map_err(|e| (m.stage, e))?;
        if src != m.dst && plan.is_target(src) {
            match dup_onto(src, slot(i), DupFlags::CLOEXEC) {
                Ok(()) => {}
                // The parent lacks this inherited stream: make sure the slot
                // holds nothing, so pass 2 fails the same way and closes dst.
                Err(Errno::BADF) if m.optional => {
                    let n = slot(i) as u32;
                    let _ = sys::close_range(n, n, 0);
                }
                Err(e) => return Err((m.stage, e)),
            }
        }
    }
    for (i, m) in maps.iter().enumerate() {
        let mut src = resolve(ctx, m.src).map_err(|e| (m.stage, e))?;
        if src != m.dst && plan.is_target(src) {
            src = slot(i);
        }
        // SAFETY: the fd number is only borrowed for one fcntl call.
        let result = if src == m.dst {
            rustix::io::fcntl_setfd(unsafe { BorrowedFd::borrow_raw(src) }, FdFlags::empty())
        } else {
            // dup3 without flags: the copy is not close-on-exec.
            dup_onto(src, m.dst, DupFlags::empty())
        };
        match result {
            Ok(()) => {}
            // An inherited stream the parent does not have: the child does
            // not get it either.
            Err(Errno::BADF) if m.optional => {
                let _ = sys::close_range(m.dst as u32, m.dst as u32, 0);
            }
            Err(e) => return Err((m.stage, e)),
        }
    }
    Ok(())
}

/// Step 3: close everything but the planned targets and the report/pause
/// pipes, in the cheapest way this kernel allows:
///
/// * `CLOSE_RANGE_CLOEXEC` over the gaps between targets: one system call
///   for a child with only stdio. The fds are then closed by the exec
///   itself; the report and pause pipes, close-on-exec already, need no
///   gap of their own, and a `pre_exec` hook can still use them (as GLib
///   does for its `child_setup`);
/// * plain `close_range` over the gaps between targets, report and pause
///   pipes (Linux 5.9, 5.10);
/// * a `/proc/self/fd` walk without `close_range`.
fn close_other_fds(plan: &Plan, carried: &Carried) -> Result<(), Errno> {
    let mut extra = [carried.report, carried.pause];
    if extra[0] > extra[1] {
        extra.swap(0, 1);
    }
    let keep = Merged {
        a: &plan.targets,
        b: &extra,
    };
    // Each method falls through to the next when this system refuses it.
    if plan.close_fds == CloseFds::Cloexec {
        let targets = Merged {
            a: &plan.targets,
            b: &[],
        };
        match close_gaps(targets, sys::CLOSE_RANGE_CLOEXEC) {
            Ok(()) => return Ok(()),
            Err(Errno::NOSYS) | Err(Errno::PERM) | Err(Errno::INVAL) => {}
            Err(e) => return Err(e),
        }
    }
    if plan.close_fds != CloseFds::Walk {
        match close_gaps(keep, 0) {
            Ok(()) => return Ok(()),
            Err(Errno::NOSYS) | Err(Errno::PERM) => {}
            Err(e) => return Err(e),
        }
    }
    close_by_walking(|fd| keep.contains(fd))
}

/// Two sorted fd lists seen as one sorted set; negative entries are ignored.
#[derive(Clone, Copy)]
struct Merged<'a> {
    a: &'a [RawFd],
    b: &'a [RawFd],
}

impl Merged<'_> {
    fn contains(&self, fd: RawFd) -> bool {
        // A negative entry stands for "no such fd" (no pause pipe, say).
        fd >= 0 && (self.a.binary_search(&fd).is_ok() || self.b.contains(&fd))
    }

    /// Calls `f` for each kept fd in increasing order (duplicates possible).
    fn for_each(&self, mut f: impl FnMut(RawFd) -> Result<(), Errno>) -> Result<(), Errno> {
        let (mut i, mut j) = (0, 0);
        loop {
            let x = self.a.get(i).copied();
            let y = self.b.get(j).copied();
            let next = match (x, y) {
                (None, None) => return Ok(()),
                (Some(x), Some(y)) if y < x => {
                    j += 1;
                    y
                }
                (Some(x), _) => {
                    i += 1;
                    x
                }
                (None, Some(y)) => {
                    j += 1;
                    y
                }
            };
            if next >= 0 {
                f(next)?;
            }
        }
    }
}

/// `close_range(.., flags)` over every gap between kept fds, then above the
/// last one.
fn close_gaps(keep: Merged<'_>, flags: u32) -> Result<(), Errno> {
    let mut low: u32 = 0;
    keep.for_each(|fd| {
        let fd = fd as u32;
        if fd > low {
            sys::close_range(low, fd - 1, flags)?;
        }
        low = low.max(fd.saturating_add(1));
        Ok(())
    })?;
    if low < u32::MAX {
        sys::close_range(low, u32::MAX, flags)?;
    }
    Ok(())
}

/// The fallback: walk `/proc/self/fd` with getdents64 into a stack buffer and
/// close what is not kept. Never a loop up to RLIMIT_NOFILE.
pub(crate) fn close_by_walking(keep: impl Fn(RawFd) -> bool) -> Result<(), Errno> {
    use rustix::fs::{Mode, OFlags, RawDir, CWD};
    let dir = rustix::fs::openat(
        CWD,
        c"/proc/self/fd",
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let dir_fd = std::os::fd::AsRawFd::as_raw_fd(&dir);
    let mut buf = [MaybeUninit::<u8>::uninit(); 1024];
    let mut entries = RawDir::new(&dir, &mut buf);
    while let Some(entry) = entries.next() {
        let entry = entry?;
        let Some(fd) = parse_fd(entry.file_name().to_bytes()) else {
            continue; // "." and ".."
        };
        if fd != dir_fd && !keep(fd) {
            // SAFETY: the fd is open in this process and owned by nobody
            // that will use it again here: it is being closed before exec.
            unsafe { rustix::io::close(fd) };
        }
    }
    Ok(())
}

/// Parses a decimal fd number without allocating or panicking.
fn parse_fd(name: &[u8]) -> Option<RawFd> {
    if name.is_empty() {
        return None;
    }
    let mut n: RawFd = 0;
    for &b in name {
        if !b.is_ascii_digit() {
            return None;
        }
        n = n.checked_mul(10)?.checked_add(RawFd::from(b - b'0'))?;
    }
    Some(n)
}

/// Step 5: process attributes and privileges, in this order, each with a raw
/// system call:
///
/// 1. **umask** (`umask(2)`; 0 is a valid mask);
/// 2. **rlimits** (`setrlimit(2)`, in the order given), before the uid
///    change so a hard limit can still be raised;
/// 3. **bounding set**: every capability not allowed is dropped with
///    `PR_CAPBSET_DROP`. This needs `CAP_SETPCAP`, so it comes before the
///    uid change; a capability that cannot be dropped is an `EPERM` (one
///    already absent is fine);
/// 4. **KEEPCAPS** (`PR_SET_KEEPCAPS`), only when capabilities are allowed
///    and the uid changes: otherwise `setuid` away from root empties the
///    permitted set;
/// 5. **supplementary groups** (`setgroups(2)`; cleared when the uid or gid
///    changes without `.groups`, see CPython's CVE-2023-6507), then the
///    **gid**, then the **uid**: groups and gid first, while the child still
///    has `CAP_SETGID`. These are rustix's per-thread raw calls, never the C
///    library's set*id broadcast to threads the child does not have;
/// 6. **capability sets**: effective, permitted and inheritable set to
///    exactly the allowed ones (`capset(2)`), the ambient set cleared and the
///    allowed ones raised into it, so they survive exec under a non-root
///    uid; KEEPCAPS cleared again;
/// 7. **no_new_privs** (`PR_SET_NO_NEW_PRIVS`);
/// 8. **parent-death signal** (`PR_SET_PDEATHSIG`), after the credential
///    changes because changing them resets it; then `getppid` is compared
///    with the parent's pid, since a parent that died before the signal was
///    armed would never send it (Go's approach);
/// 9. **session** (`setsid(2)`), then **process group** (`setpgid(0, pgid)`).
fn apply_privileges(ctx: &ChildCtx<'_>) -> Result<(), (Stage, Errno)> {
    use rustix::thread as t;
    let p = &ctx.plan.privileges;
    if let Some(mask) = p.umask {
        rustix::process::umask(mask);
    }
    for (resource, limit) in p.rlimits.iter() {
        rustix::process::setrlimit(*resource, *limit).map_err(|e| (Stage::Rlimit, e))?;
    }
    if let Some(allowed) = p.caps {
        drop_bounding_set(allowed).map_err(|e| (Stage::Caps, e))?;
        if p.uid.is_some() && allowed != 0 {
            t::set_keep_capabilities(true).map_err(|e| (Stage::Caps, e))?;
        }
    }
    if let Some(groups) = &p.groups {
        t::set_thread_groups(groups).map_err(|e| (Stage::Groups, e))?;
    }
    if let Some(gid) = p.gid {
        t::set_thread_gid(gid).map_err(|e| (Stage::Gid, e))?;
    }
    if let Some(uid) = p.uid {
        t::set_thread_uid(uid).map_err(|e| (Stage::Uid, e))?;
    }
    if let Some(allowed) = p.caps {
        set_capability_sets(allowed).map_err(|e| (Stage::Caps, e))?;
    }
    if p.no_new_privs {
        t::set_no_new_privs(true).map_err(|e| (Stage::NoNewPrivs, e))?;
    }
    if let Some(sig) = p.parent_death_signal {
        // After the credential changes: a uid change clears it.
        rustix::process::set_parent_process_death_signal(Some(sig))
            .map_err(|e| (Stage::ParentDeathSignal, e))?;
        let parent = rustix::process::getppid().map(|p| p.as_raw_nonzero().get());
        if parent != Some(ctx.parent_pid) {
            // The parent died before the signal was armed.
            return Err((Stage::ParentDeathSignal, Errno::SRCH));
        }
    }
    if p.new_session {
        rustix::process::setsid().map_err(|e| (Stage::Session, e))?;
    }
    if let Some(pgid) = p.process_group {
        let pgid = rustix::process::Pid::from_raw(pgid);
        rustix::process::setpgid(None, pgid).map_err(|e| (Stage::ProcessGroup, e))?;
    }
    Ok(())
}

/// Removes every capability not in `allowed` from the bounding set. A
/// capability already absent is fine; one we cannot drop is an error.
fn drop_bounding_set(allowed: u64) -> Result<(), Errno> {
    use rustix::thread::{self as t, CapabilitySet};
    for bit in 0..64u32 {
        if allowed & (1u64 << bit) != 0 {
            continue;
        }
        let cap = CapabilitySet::from_bits_retain(1u64 << bit);
        match t::remove_capability_from_bounding_set(cap) {
            Ok(()) => {}
            // Past the last capability this kernel knows.
            Err(Errno::INVAL) => return Ok(()),
            Err(Errno::PERM) => {
                if t::capability_is_in_bounding_set(cap)? {
                    return Err(Errno::PERM);
                }
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Sets effective, permitted and inheritable to exactly `allowed`, and the
/// ambient set to `allowed` so the capabilities survive exec under a
/// non-root uid.
fn set_capability_sets(allowed: u64) -> Result<(), Errno> {
    use rustix::thread::{self as t, CapabilitySet, CapabilitySets};
    let set = CapabilitySet::from_bits_retain(allowed);
    t::set_capabilities(
        None,
        CapabilitySets {
            effective: set,
            permitted: set,
            inheritable: set,
        },
    )?;
    match t::clear_ambient_capability_set() {
        Ok(()) | Err(Errno::INVAL) => {} // EINVAL: a kernel without ambient sets
        Err(e) => return Err(e),
    }
    for bit in 0..64u32 {
        if allowed & (1u64 << bit) != 0 {
            let cap = CapabilitySet::from_bits_retain(1u64 << bit);
            t::configure_capability_in_ambient_set(cap, true)?;
        }
    }
    if allowed != 0 {
        t::set_keep_capabilities(false)?;
    }
    Ok(())
}

/// Step 7: tell the parent we are ready, then block until it resumes us.
fn wait_for_resume(carried: &Carried) -> Result<(), Errno> {
    // SAFETY: both fds are open in this process.
    let report = unsafe { BorrowedFd::borrow_raw(carried.report) };
    let pause = unsafe { BorrowedFd::borrow_raw(carried.pause) };
    let msg = encode(MSG_PAUSED, 0, 0);
    rustix::io::retry_on_intr(|| rustix::io::write(report, &msg))?;
    let mut byte = [0u8; 1];
    match rustix::io::retry_on_intr(|| rustix::io::read(pause, &mut byte))? {
        1 => Ok(()),
        // The parent dropped the Paused without resuming.
        _ => Err(Errno::CANCELED),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip() {
        let m = encode(MSG_ERROR, Stage::Chdir.code(), libc::ENOENT);
        assert_eq!(decode(&m), (MSG_ERROR, Stage::Chdir.code(), libc::ENOENT));
    }

    #[test]
    fn pid_text_formats_without_allocating() {
        let mut buf = [0u8; PID_TEXT_LEN];
        assert_eq!(pid_text(1, &mut buf), b"1\n");
        assert_eq!(pid_text(4_194_304, &mut buf), b"4194304\n");
        assert_eq!(pid_text(i32::MAX, &mut buf), b"2147483647\n");
        assert_eq!(pid_text(i32::MIN, &mut buf), b"-2147483648\n");
        assert_eq!(pid_text(0, &mut buf), b"0\n");
    }

    #[test]
    fn fd_names_parse_strictly() {
        assert_eq!(parse_fd(b"0"), Some(0));
        assert_eq!(parse_fd(b"1234"), Some(1234));
        assert_eq!(parse_fd(b"."), None);
        assert_eq!(parse_fd(b""), None);
        assert_eq!(parse_fd(b"99999999999"), None);
    }

    #[test]
    fn merged_keeps_order_and_ignores_negatives() {
        let a = [0, 1, 2, 7];
        let b = [-1, 4];
        let m = Merged { a: &a, b: &b };
        let mut seen = [0; 8];
        let mut n = 0;
        m.for_each(|fd| {
            seen[n] = fd;
            n += 1;
            Ok(())
        })
        .unwrap();
        assert_eq!(&seen[..n], &[0, 1, 2, 4, 7]);
        assert!(m.contains(4) && m.contains(7) && !m.contains(3) && !m.contains(-1));
    }
}
