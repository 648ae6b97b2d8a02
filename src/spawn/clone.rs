//! Making the child: `clone3`/`clone` on a stack buffer in the spawning
//! frame (the vfork-style path), or `fork` (the path of `pre_exec` hooks,
//! paused spawns and id ranges, whose maps the parent writes while the
//! child waits at its gate).

use std::cell::Cell;
use std::ffi::{c_int, c_void};
use std::mem::MaybeUninit;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use rustix::io::Errno;
use rustix::pipe::PipeFlags;

use super::id_maps;
use super::report::{Channel, ReportPipe};
use crate::child::cgroup::Placement;
use crate::child::namespaces::Gate;
use crate::child::report::MSG_LEN;
use crate::child::{self, Ctx, DaemonSlots};
use crate::error::{BuildErrorKind, Error, Stage};
use crate::pidfd::ChildPid;
use crate::plan::Plan;
use crate::sys;
use crate::sys::clone::CLONE_NEWTIME;

/// The child stack for the vfork-style path, in the spawning frame. The
/// child's steps are shallow: `tests::child_stack_use_is_small` measures the
/// deepest use (a few KiB) and fails if it ever reaches half of this.
pub(crate) const CHILD_STACK_SIZE: usize = 32 * 1024;
// clone3 takes the stack as base + size: both ends must be 16-byte aligned.
static_assertions::const_assert_eq!(CHILD_STACK_SIZE % 16, 0);

#[repr(C, align(16))]
pub(crate) struct ChildStack(MaybeUninit<[u8; CHILD_STACK_SIZE]>);

impl ChildStack {
    pub(crate) fn new() -> Self {
        ChildStack(MaybeUninit::uninit())
    }

    /// The 16-byte aligned start of the buffer.
    pub(crate) fn base(&mut self) -> *mut u8 {
        self.0.as_mut_ptr().cast::<u8>()
    }

    /// The 16-byte aligned end of the buffer (stacks grow down).
    pub(crate) fn top(&mut self) -> *mut u8 {
        self.0
            .as_mut_ptr()
            .cast::<u8>()
            .wrapping_add(CHILD_STACK_SIZE)
    }
}

/// The parent's pid, for the child's parent-death check (0 when there is
/// no such check, saving the system call; and in a new pid namespace,
/// where the child's `getppid()` is 0 and cannot be compared).
fn parent_pid(plan: &Plan) -> i32 {
    if plan.child.session.parent_death_signal.is_some() && !plan.child.ns.new_pid_namespace() {
        rustix::process::getpid().as_raw_nonzero().get()
    } else {
        0
    }
}

/// `clone3`/`clone(CLONE_VM | CLONE_VFORK | CLONE_PIDFD)` of the child steps on
/// `stack`; returns once the child has exec'd or exited. The child reports
/// failures through `report` (see [`Channel`]). `daemon` holds daemon
/// mode's places in the caller's frame, or null pointers.
///
/// Where the kernel has `close_range(2)` the child starts on this process's
/// fd table (`CLONE_FILES`) and takes a table of its own as its first step,
/// holding the fds below [`table_end`]: the kernel then copies a few
/// entries instead of the whole table at the clone, and the exec has
/// nothing left to close. A process with thousands of fds open (a server's
/// sockets, the pidfds of a thousand running children) would otherwise pay
/// for each of them twice per spawn: once copied, once closed.
pub(crate) fn clone_on(
    plan: &Plan,
    slots: &[RawFd],
    stack: &mut ChildStack,
    daemon: DaemonSlots,
    report: &mut Channel<'_>,
) -> Result<ChildPid, Error> {
    refused_placement(plan)?;
    let (report_fd, in_frame) = match report {
        Channel::Pipe(fd) => (fd.as_raw_fd(), std::ptr::null_mut()),
        Channel::Frame { msg, .. } => (-1, msg as *mut [u8; MSG_LEN]),
    };
    // Where the kernel puts the pidfd: read through this pointer only, by
    // the kernel, the child and the clone wrappers.
    let mut pidfd_slot: c_int = -1;
    let pidfd_slot: *mut c_int = &mut pidfd_slot;
    let old_mask = sys::signal::block_all_signals();
    let cx = Ctx {
        plan: &plan.child,
        slots,
        report: Cell::new(report_fd),
        report_in_frame: Cell::new(in_frame),
        pause: -1,
        gate: Gate::NONE,
        parent_mask: old_mask,
        parent_pid: parent_pid(plan),
        daemon,
        shared_table_end: Cell::new(if sys::clone::shared_files_usable() {
            table_end(plan, slots, report_fd)
        } else {
            -1
        }),
        pidfd_slot,
    };
    let arg = &cx as *const Ctx<'_> as *mut c_void;
    // The namespaces of `unshare`. With them, EPERM and EINVAL may be the
    // namespaces' answer (no privilege, a kind this kernel lacks) rather
    // than a refusal of clone3 or CLONE_PIDFD, so a refusal is only
    // remembered once the fallback with the same namespaces has worked.
    let ns = plan.child.ns.clone_flags;
    // `clone3_vfork` with or without a cgroup (CLONE_INTO_CGROUP).
    let mut clone3 = |cgroup: Option<c_int>| {
        // SAFETY: the stack is a fresh 16-byte aligned buffer in this frame
        // (both ends aligned: CHILD_STACK_SIZE is a multiple of 16), used by
        // nothing else until clone3 returns; `clear_sighand_entry` runs the
        // child steps, which keep the child contract (see crate::child) and
        // end in execve or _exit; every signal is blocked; `cx` lives in
        // this frame until clone3 returns.
        sharing_if_taken(&cx, |shared| unsafe {
            sys::clone::clone3_vfork(
                child::clear_sighand_entry,
                stack.base(),
                CHILD_STACK_SIZE,
                arg,
                ns | shared_files(shared),
                cgroup,
                pidfd_slot,
            )
        })
    };
    if let Some(cgroup) = plan.child.cgroup.clone_fd() {
        // CLONE_INTO_CGROUP, which build() found this kernel to take with
        // clone3: a failure is the cgroup's (or the namespaces') answer,
        // never clone3's absence, so nothing is learned from it and no
        // other clone is tried (it would start the child in our cgroup).
        let cloned = clone3(Some(cgroup));
        let _ = sys::signal::set_signal_mask(&old_mask);
        let (pid, pidfd) = cloned.map_err(|e| placement_error(plan, e))?;
        return ChildPid::adopt(pid, pidfd);
    }
    let remember = ns == 0;
    // Preferably clone3 with CLONE_CLEAR_SIGHAND: the kernel resets the
    // child's signal handlers, which saves it ~62 system calls; where
    // clone3 is refused (old kernel, seccomp, valgrind) no child was made
    // and the plain clone path runs instead, from then on.
    let mut cloned = Err(Errno::NOSYS);
    let mut how = "clone3";
    if sys::clone::clone3_usable() {
        cloned = clone3(None);
    }
    let mut refused_ns_error = None;
    if matches!(cloned, Err(e) if sys::clone::clone3_refused(e, remember)) {
        if ns & CLONE_NEWTIME != 0 {
            // The old clone cannot take CLONE_NEWTIME: the clone3 error is
            // the answer (ENOSYS where clone3 is missing).
            refused_ns_error = cloned.err();
        } else {
            // clone with CLONE_PIDFD (Linux 5.2; older kernels ignore the
            // flag and leave the slot at -1), unless that was ignored or
            // refused before; then, or when it is refused now, clone
            // without it.
            let with_pidfd = sys::clone::clone_pidfd_usable();
            how = if with_pidfd {
                "clone(CLONE_VM | CLONE_VFORK | CLONE_PIDFD)"
            } else {
                "clone(CLONE_VM | CLONE_VFORK)"
            };
            // Never on the parent's table here (see
            // `sys::clone::shared_files_usable`), and never reporting in
            // this frame: the child may have memory of its own (see
            // `Channel`).
            cx.shared_table_end.set(-1);
            if let Channel::Frame { fallback, .. } = report {
                // The first and only clone of this channel that needs it.
                let pipe = match ReportPipe::new() {
                    Ok(pipe) => fallback.insert(pipe),
                    Err(e) => {
                        let _ = sys::signal::set_signal_mask(&old_mask);
                        return Err(e);
                    }
                };
                cx.report.set(pipe.write.as_raw_fd());
                cx.report_in_frame.set(std::ptr::null_mut());
            }
            // SAFETY: as above, with `vfork_entry`, which resets the
            // handlers itself; the stack is unused again (no child was
            // created).
            cloned = unsafe {
                sys::clone::clone_vfork(
                    child::vfork_entry,
                    stack.top(),
                    arg,
                    with_pidfd,
                    ns,
                    pidfd_slot,
                )
            };
            if with_pidfd
                && matches!(cloned, Err(e) if sys::clone::clone_pidfd_refused(e, remember))
            {
                how = "clone(CLONE_VM | CLONE_VFORK)";
                // SAFETY: as above; the refused call created no child.
                cloned = unsafe {
                    sys::clone::clone_vfork(
                        child::vfork_entry,
                        stack.top(),
                        arg,
                        false,
                        ns,
                        pidfd_slot,
                    )
                };
                if !remember && cloned.is_ok() {
                    sys::clone::clone_pidfd_refusal_confirmed();
                }
            }
            if !remember && cloned.is_ok() {
                sys::clone::clone3_refusal_confirmed();
            }
        }
    }
    // Restoring the mask cannot fail with a valid set.
    let _ = sys::signal::set_signal_mask(&old_mask);
    if ns != 0 {
        if let Some(e) = refused_ns_error.or(cloned.err()) {
            // The kernel's answer to the namespaces, as a child step's.
            return Err(namespace_error(plan, e));
        }
    }
    let (pid, pidfd) = cloned.map_err(|e| clone_error(how, e))?;
    // No pidfd (Linux < 5.2, or the flag refused): pidfd_open, or by pid.
    ChildPid::adopt(pid, pidfd)
}

/// Where a vfork-style child's own fd table ends (see
/// [`child::fds::own_table`]): above every fd the plan names or owns, the
/// spawn's pipe ends and the report pipe (-1 for none).
fn table_end(plan: &Plan, slots: &[RawFd], report: RawFd) -> RawFd {
    slots
        .iter()
        .copied()
        .chain([report, plan.highest_child_fd])
        .fold(-1, RawFd::max)
        .saturating_add(1)
}

/// `CLONE_FILES` when `shared`.
fn shared_files(shared: bool) -> u64 {
    if shared {
        libc::CLONE_FILES as u64
    } else {
        0
    }
}

/// Runs `clone(shared)` (a `clone3`), asking for a child on the parent's fd
/// table when `cx` says so; where that is refused with `EINVAL` (an
/// emulator or sandbox that does not take the flag) and the same clone
/// without it works, children start on a copy of the table from then on.
/// No child exists when `clone` fails, so `cx` may change in between.
fn sharing_if_taken(
    cx: &Ctx<'_>,
    mut clone: impl FnMut(bool) -> Result<(libc::pid_t, c_int), Errno>,
) -> Result<(libc::pid_t, c_int), Errno> {
    let shared = cx.shared_table_end.get() >= 0;
    match clone(shared) {
        Err(Errno::INVAL) if shared => {
            cx.shared_table_end.set(-1);
            let again = clone(false);
            if again.is_ok() {
                sys::clone::shared_files_refused();
            }
            again
        }
        cloned => cloned,
    }
}

/// The error of a clone that failed after every fallback, naming what it
/// asked the kernel for. A refusal (`ENOSYS`, `EPERM`) of a plain
/// `CLONE_VM | CLONE_VFORK` clone, which every Linux has, is a sandbox's.
fn clone_error(how: &str, e: Errno) -> Error {
    if matches!(e, Errno::NOSYS | Errno::PERM) {
        Error::io(
            &format!("{how} refused (every Linux kernel has it: a seccomp filter or sandbox?)"),
            e,
        )
    } else {
        Error::io(how, e)
    }
}

/// A clone with namespace flags failed: [`Error::Spawn`] at stage
/// [`Namespace`](crate::Stage::Namespace), as if the child had reported it.
fn namespace_error(plan: &Plan, errno: Errno) -> Error {
    stage_error(plan, Stage::Namespace, errno)
}

/// [`Error::Spawn`] at `stage`, as if the child had reported it.
fn stage_error(plan: &Plan, stage: Stage, errno: Errno) -> Error {
    crate::spawn::report::spawn_error(
        plan,
        crate::child::report::Failure {
            stage,
            errno,
            item: 0,
        },
    )
}

/// A clone with `CLONE_INTO_CGROUP` failed. The errors only a cgroup gives
/// are [`Stage::Cgroup`]: `EBUSY` (domain controllers enabled in the
/// target's `cgroup.subtree_control`),
/// `EACCES` (delegation), `ENOENT` and `ENODEV` (removed), `EOPNOTSUPP`
/// (a cgroup that cannot hold processes), `EBADF` (not a cgroup v2
/// directory). `EPERM` and `EINVAL` are the cgroup's too unless the clone
/// had namespace flags, which answer with them (no privilege, a kind this
/// kernel lacks): then they, like every other error of such a clone, are
/// [`Stage::Namespace`]'s; without namespaces the rest (`EAGAIN`, `ENOMEM`)
/// are the clone's own.
fn placement_error(plan: &Plan, e: Errno) -> Error {
    let ns = plan.child.ns.clone_flags;
    let cgroup_only = matches!(
        e,
        Errno::BUSY | Errno::ACCESS | Errno::NOENT | Errno::NODEV | Errno::OPNOTSUPP | Errno::BADF
    );
    if cgroup_only || (ns == 0 && matches!(e, Errno::PERM | Errno::INVAL)) {
        stage_error(plan, Stage::Cgroup, e)
    } else if ns != 0 {
        namespace_error(plan, e)
    } else {
        Error::io("clone3 with CLONE_INTO_CGROUP", e)
    }
}

/// A plan whose `cgroup.procs` could not be opened at `build()`: the
/// spawn fails with that errno at [`Stage::Cgroup`], before any clone.
fn refused_placement(plan: &Plan) -> Result<(), Error> {
    match plan.child.cgroup {
        Placement::Refused(e) => Err(stage_error(plan, Stage::Cgroup, e)),
        _ => Ok(()),
    }
}

/// A forked child, its report pipe and, when paused, the resume pipe.
pub(crate) struct Forked {
    pub child: ChildPid,
    pub report: OwnedFd,
    pub resume: Option<OwnedFd>,
}

/// Forks the child; `daemon` holds daemon mode's places (in the caller's
/// frame, which the child gets a copy of), or null pointers.
///
/// With id ranges (`uid_map`, `gid_map`) the child waits at a gate (a pipe
/// made here) right after its signal reset, while this process writes its
/// maps ([`id_maps::write`]); then one byte releases it. A refused write is
/// [`Error::Spawn`] at [`Stage::IdMap`](crate::error::Stage::IdMap): the
/// child is killed and reaped while it waits at the gate, and every pipe
/// closed, before this returns.
pub(crate) fn fork_child(
    plan: &Plan,
    slots: &[RawFd],
    paused: bool,
    daemon: DaemonSlots,
) -> Result<Forked, Error> {
    refused_placement(plan)?;
    if plan.forbid_fork {
        return Err(Error::build(
            BuildErrorKind::Conflict,
            "forbid_fork",
            "this spawn needs the fork path (spawn_paused), which forbid_fork() refuses",
        ));
    }
    let (report_r, report_w) = sys::fd::pipe(PipeFlags::empty())?;
    let (resume_r, resume_w) = if paused {
        let (r, w) = sys::fd::pipe(PipeFlags::empty())?;
        (Some(r), Some(w))
    } else {
        (None, None)
    };
    let gate = match plan.id_ranges {
        Some(_) => Some(sys::fd::pipe(PipeFlags::empty())?),
        None => None,
    };
    let old_mask = sys::signal::block_all_signals();
    let cx = Ctx {
        plan: &plan.child,
        slots,
        report: Cell::new(report_w.as_raw_fd()),
        report_in_frame: Cell::new(std::ptr::null_mut()),
        pause: resume_r.as_ref().map_or(-1, |fd| fd.as_raw_fd()),
        gate: gate.as_ref().map_or(Gate::NONE, |(r, w)| Gate {
            read: r.as_raw_fd(),
            write: w.as_raw_fd(),
        }),
        parent_mask: old_mask,
        parent_pid: parent_pid(plan),
        daemon,
        // The fork path's child has its own copy of the table.
        shared_table_end: Cell::new(-1),
        pidfd_slot: std::ptr::null(),
    };
    // With namespaces, a fork-style clone that creates them: fork takes no
    // flags, and unshare(2) in the child would not do for PID or TIME,
    // which only apply to the caller's later children (the child would not
    // be pid 1, unlike on the clone path).
    // With a cgroup that the kernel places the child in, a fork-style
    // clone3 with CLONE_INTO_CGROUP.
    let ns = plan.child.ns.clone_flags;
    let cgroup = plan.child.cgroup.clone_fd();
    let forked = if ns == 0 && cgroup.is_none() {
        // SAFETY: the child only runs `child_main`, which keeps the child
        // contract (async-signal-safe raw calls, no allocation) until
        // exec/_exit.
        unsafe { sys::clone::fork() }
    } else {
        // SAFETY: as for fork.
        unsafe { sys::clone::fork_into(ns, cgroup) }
    };
    if let Ok(0) = forked {
        child::child_main(&cx);
    }
    let _ = sys::signal::set_signal_mask(&old_mask);
    drop(report_w);
    drop(resume_r);
    let pid = match forked {
        Ok(pid) => pid,
        Err(e) if cgroup.is_some() => return Err(placement_error(plan, e)),
        Err(e) if ns != 0 => return Err(namespace_error(plan, e)),
        Err(e) => return Err(Error::io("fork", e)),
    };
    // Race-free: the child is not reaped until it has an owner (its pidfd,
    // or, without pidfd_open, its pid).
    let mut child = ChildPid::adopt(pid, -1)?;
    if let (Some(ranges), Some((gate_r, gate_w))) = (&plan.id_ranges, gate) {
        if let Err(refused) = id_maps::write(ranges, pid) {
            // Killed and reaped while it still waits at the gate (it never
            // execs); then the gate and report pipes close with this frame.
            let _ = child.kill();
            return Err(Error::Spawn {
                stage: crate::error::Stage::IdMap,
                errno: refused.errno,
                program: plan.program.to_string(),
                path: Some(refused.file.path(pid)),
            });
        }
        // Release. The read end stays open here until the byte is written,
        // so the write cannot meet a pipe without readers (EPIPE, SIGPIPE)
        // even if the child was killed meanwhile.
        let released = rustix::io::retry_on_intr(|| rustix::io::write(&gate_w, b"1"));
        drop(gate_w);
        drop(gate_r);
        if let Err(e) = released {
            // Dropping the child kills and reaps it.
            return Err(Error::io(
                "releasing the child after writing its id maps",
                e,
            ));
        }
    }
    Ok(Forked {
        child,
        report: report_r,
        resume: resume_w,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_clone_refused_after_every_fallback_names_what_was_asked_for() {
        let e = clone_error("clone(CLONE_VM | CLONE_VFORK)", Errno::NOSYS).to_string();
        assert!(
            e.starts_with("clone(CLONE_VM | CLONE_VFORK) refused (every Linux kernel has it"),
            "{e}"
        );
        let e = clone_error("clone(CLONE_VM | CLONE_VFORK)", Errno::AGAIN).to_string();
        assert!(e.starts_with("clone(CLONE_VM | CLONE_VFORK): "), "{e}");
    }
}
