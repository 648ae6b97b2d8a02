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
//! * **writes no parent memory** except its own stack;
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
//! 4. umask, rlimits, bounding set, groups, gid, uid, capabilities,
//!    no_new_privs, parent-death signal, session, process group;
//! 5. working directory;
//! 6. `pre_exec` hooks;
//! 7. the pause of `spawn_paused`;
//! 8. exec.

use std::ffi::c_int;
use std::mem::{ManuallyDrop, MaybeUninit};
use std::os::fd::{BorrowedFd, FromRawFd, OwnedFd, RawFd};

use rustix::io::{DupFlags, Errno, FdFlags};

use crate::error::Stage;
use crate::plan::{Plan, Src};
use crate::sys;

/// Message tags on the report pipe.
pub(crate) const MSG_ERROR: u32 = 1;
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
}

/// The fds the child carries through its steps; they may move (see `place_fds`).
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

/// Runs every step of the child and execs; never returns.
pub(crate) fn child_main(ctx: &ChildCtx<'_>) -> ! {
    let plan = ctx.plan;
    let mut carried = Carried {
        report: ctx.report,
        pause: ctx.pause,
    };
    if let Err(e) = reset_signals(ctx) {
        fail(carried.report, Stage::Signals, e);
    }
    if let Err((stage, e)) = place_fds(ctx, &mut carried) {
        fail(carried.report, stage, e);
    }
    if let Err(e) = close_other_fds(plan, &carried) {
        fail(carried.report, Stage::CloseFds, e);
    }
    if let Err((stage, e)) = apply_privileges(ctx) {
        fail(carried.report, stage, e);
    }
    if let Some(cwd) = &plan.cwd {
        if let Err(e) = rustix::process::chdir(cwd.as_c_str()) {
            fail(carried.report, Stage::Chdir, e);
        }
    }
    for hook in plan.hooks.iter() {
        if let Err(e) = hook() {
            fail(carried.report, Stage::Hook, e);
        }
    }
    if carried.pause >= 0 {
        if let Err(e) = wait_for_resume(&carried) {
            fail(carried.report, Stage::Handshake, e);
        }
    }
    // SAFETY: argv and envp are the null-terminated pointer arrays of the
    // plan, which outlives this call.
    let e = unsafe { sys::execve(&plan.path, plan.argv.as_ptr(), plan.envp.as_ptr()) };
    fail(carried.report, Stage::Exec, e)
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
fn reset_signals(ctx: &ChildCtx<'_>) -> Result<(), Errno> {
    let policy = ctx.plan.signals;
    for sig in 1..=sys::SIGNAL_MAX {
        if sys::signal_is_reserved(sig) {
            continue;
        }
        let was_ignored = sys::set_signal_default(sig)?;
        if was_ignored && policy.keep_ignored {
            sys::set_signal_ignored(sig)?;
        }
    }
    if policy.keep_mask {
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
                Err(Errno::BADF) if m.optional => {}
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
                let _ = sys::close_range(m.dst as u32, m.dst as u32);
            }
            Err(e) => return Err((m.stage, e)),
        }
    }
    Ok(())
}

/// Step 3: close everything but the planned targets and the report/pause pipes.
fn close_other_fds(plan: &Plan, carried: &Carried) -> Result<(), Errno> {
    let mut extra = [carried.report, carried.pause];
    if extra[0] > extra[1] {
        extra.swap(0, 1);
    }
    let keep = Merged {
        a: &plan.targets,
        b: &extra,
    };
    if !plan.close_by_walk {
        match close_gaps(keep) {
            Ok(()) => return Ok(()),
            // A kernel or seccomp filter without close_range: walk instead.
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
        // -1 stands for "no pause pipe": never a kept fd.
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

/// `close_range` over every gap between kept fds, then above the last one.
fn close_gaps(keep: Merged<'_>) -> Result<(), Errno> {
    let mut low: u32 = 0;
    keep.for_each(|fd| {
        let fd = fd as u32;
        if fd > low {
            sys::close_range(low, fd - 1)?;
        }
        low = low.max(fd.saturating_add(1));
        Ok(())
    })?;
    if low < u32::MAX {
        sys::close_range(low, u32::MAX)?;
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

/// Step 4: process attributes and privileges, in libvirt's order.
fn apply_privileges(ctx: &ChildCtx<'_>) -> Result<(), (Stage, Errno)> {
    use rustix::thread as t;
    let p = &ctx.plan.privileges;
    if let Some(mask) = p.umask {
        rustix::process::umask(mask);
    }
    for (resource, limit) in p.rlimits.iter() {
        rustix::process::setrlimit(*resource, limit.clone()).map_err(|e| (Stage::Rlimit, e))?;
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
