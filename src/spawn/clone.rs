//! Making the child: `clone3`/`clone` on a stack buffer in the spawning
//! frame (the vfork-style path), or `fork` (the path of `pre_exec` hooks and
//! paused spawns).

use std::ffi::c_void;
use std::mem::MaybeUninit;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use rustix::io::Errno;
use rustix::pipe::PipeFlags;

use crate::child::{self, Ctx, DaemonSlots};
use crate::error::{BuildErrorKind, Error};
use crate::pidfd::{pid_of, ChildPid};
use crate::plan::Plan;
use crate::sys;

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
/// no such check, saving the system call).
fn parent_pid(plan: &Plan) -> i32 {
    if plan.child.session.parent_death_signal.is_some() {
        rustix::process::getpid().as_raw_nonzero().get()
    } else {
        0
    }
}

/// `clone(CLONE_VM | CLONE_VFORK | CLONE_PIDFD)` of the child steps on
/// `stack`; returns once the child has exec'd or exited. The child reports
/// failures on `report`, the write end of a report pipe; the parent keeps it
/// open. `daemon` holds daemon mode's places in the caller's frame, or null
/// pointers.
pub(crate) fn clone_on(
    plan: &Plan,
    slots: &[RawFd],
    stack: &mut ChildStack,
    daemon: DaemonSlots,
    report: &OwnedFd,
) -> Result<ChildPid, Error> {
    let old_mask = sys::signal::block_all_signals();
    let cx = Ctx {
        plan: &plan.child,
        slots,
        report: report.as_raw_fd(),
        pause: -1,
        parent_mask: old_mask,
        parent_pid: parent_pid(plan),
        daemon,
    };
    let arg = &cx as *const Ctx<'_> as *mut c_void;
    // Preferably clone3 with CLONE_CLEAR_SIGHAND: the kernel resets the
    // child's signal handlers, which saves it ~62 system calls; where
    // clone3 is refused (old kernel, seccomp, valgrind) no child was made
    // and the plain clone path runs instead, from then on.
    let mut cloned = Err(Errno::NOSYS);
    if sys::clone::clone3_usable() {
        // SAFETY: the stack is a fresh 16-byte aligned buffer in this frame
        // (both ends aligned: CHILD_STACK_SIZE is a multiple of 16), used by
        // nothing else until clone3 returns; `clear_sighand_entry` runs the
        // child steps, which keep the child contract (see crate::child) and
        // end in execve or _exit; every signal is blocked; `cx` lives in
        // this frame until clone3 returns.
        cloned = unsafe {
            sys::clone::clone3_vfork(
                child::clear_sighand_entry,
                stack.base(),
                CHILD_STACK_SIZE,
                arg,
            )
        };
    }
    if matches!(cloned, Err(e) if sys::clone::clone3_refused(e)) {
        // SAFETY: as above, with `vfork_entry`, which resets the handlers
        // itself; the stack is unused again (no child was created).
        cloned = unsafe { sys::clone::clone_vfork(child::vfork_entry, stack.top(), arg) };
    }
    // Restoring the mask cannot fail with a valid set.
    let _ = sys::signal::set_signal_mask(&old_mask);
    let (pid, pidfd) = cloned.map_err(|e| Error::io("clone", e))?;
    // SAFETY: with CLONE_PIDFD the kernel returned a new fd that we own.
    Ok(ChildPid::new(pid, unsafe { OwnedFd::from_raw_fd(pidfd) }))
}

/// A forked child, its report pipe and, when paused, the resume pipe.
pub(crate) struct Forked {
    pub child: ChildPid,
    pub report: OwnedFd,
    pub resume: Option<OwnedFd>,
}

/// Forks the child; `daemon` holds daemon mode's places (in the caller's
/// frame, which the child gets a copy of), or null pointers.
pub(crate) fn fork_child(
    plan: &Plan,
    slots: &[RawFd],
    paused: bool,
    daemon: DaemonSlots,
) -> Result<Forked, Error> {
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
    let old_mask = sys::signal::block_all_signals();
    let cx = Ctx {
        plan: &plan.child,
        slots,
        report: report_w.as_raw_fd(),
        pause: resume_r.as_ref().map_or(-1, |fd| fd.as_raw_fd()),
        parent_mask: old_mask,
        parent_pid: parent_pid(plan),
        daemon,
    };
    // SAFETY: the child only runs `child_main`, which keeps the child
    // contract (async-signal-safe raw calls, no allocation) until exec/_exit.
    let forked = unsafe { sys::clone::fork() };
    if let Ok(0) = forked {
        child::child_main(&cx);
    }
    let _ = sys::signal::set_signal_mask(&old_mask);
    drop(report_w);
    drop(resume_r);
    let pid = forked.map_err(|e| Error::io("fork", e))?;
    // Race-free: the child is not reaped until we have its pidfd.
    let pidfd = match rustix::process::pidfd_open(pid_of(pid), rustix::process::PidfdFlags::empty())
    {
        Ok(fd) => fd,
        Err(e) => {
            let _ = rustix::process::kill_process(pid_of(pid), rustix::process::Signal::KILL);
            let _ =
                rustix::process::waitpid(Some(pid_of(pid)), rustix::process::WaitOptions::empty());
            return Err(Error::io("pidfd_open", e));
        }
    };
    Ok(Forked {
        child: ChildPid::new(pid, pidfd),
        report: report_r,
        resume: resume_w,
    })
}
