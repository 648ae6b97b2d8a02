//! The seccomp filters, installed as the last step before exec.

use std::mem::ManuallyDrop;
use std::os::fd::{BorrowedFd, FromRawFd, OwnedFd, RawFd};

use rustix::io::DupFlags;

use super::report::{At, AtItem, Failure};
use super::Carried;
use crate::error::Stage;
use crate::frozen::Frozen;
use crate::sys;
use crate::sys::seccomp::Insn;

/// The compiled filters and how to install them, all decided at `build()`.
pub(crate) struct SeccompPlan {
    /// The programs, installed in this order.
    pub filters: Frozen<[Frozen<[Insn]>]>,
    /// The fd number the report pipe moves to after the fd steps:
    /// the generated programs that would block `write(2)` allow it on this
    /// fd only, so that a failed exec is still reported. -1: no program
    /// needs it, the report stays where it is.
    pub report_fd: RawFd,
    /// `prctl(PR_SET_SECCOMP)` instead of `seccomp(2)`, which this system
    /// lacks (probed at `build()`).
    pub via_prctl: bool,
}

impl std::fmt::Debug for SeccompPlan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SeccompPlan")
            .field("filters", &self.filters.len())
            .field("report_fd", &self.report_fd)
            .field("via", &if self.via_prctl { "prctl" } else { "seccomp" })
            .finish()
    }
}

/// Moves the report pipe to its planned number (close-on-exec, as it was),
/// where a filter needs it there. Right after the fd steps, so that no
/// later step can open a file on that number (the daemon's pidfile, a
/// hook's file: each takes the lowest free one), and before the
/// resource limits, which may put the number out of reach of a new fd.
/// Another carried fd that sits there (the pause pipe, the landlock
/// ruleset, ...) moves out of the way first.
pub(crate) fn place_report(
    plan: Option<&SeccompPlan>,
    carried: &mut Carried,
) -> Result<(), Failure> {
    let Some(plan) = plan else {
        return Ok(());
    };
    let to = plan.report_fd;
    // A child that reports in the spawning frame has no pipe to move.
    if to < 0 || carried.report < 0 || carried.report == to {
        return Ok(());
    }
    for fd in carried.all_mut() {
        if *fd == to {
            // SAFETY: the carried fd is open in this process; it is only
            // borrowed for the call.
            let there = unsafe { BorrowedFd::borrow_raw(*fd) };
            let moved =
                rustix::io::fcntl_dupfd_cloexec(there, to.saturating_add(1)).at(Stage::Seccomp)?;
            // The old number is replaced below; the copy lives until exec.
            *fd = std::os::fd::IntoRawFd::into_raw_fd(moved);
        }
    }
    // SAFETY: the report fd is open in this process; it is only borrowed
    // for the call.
    let source = unsafe { BorrowedFd::borrow_raw(carried.report) };
    // SAFETY: the target number is never closed by us (ManuallyDrop): dup3
    // replaces whatever is there, which `build()` chose to be no planned
    // fd, and which every carried fd has left.
    let mut target = ManuallyDrop::new(unsafe { OwnedFd::from_raw_fd(to) });
    rustix::io::dup3(source, &mut target, DupFlags::CLOEXEC).at(Stage::Seccomp)?;
    carried.report = to;
    Ok(())
}

/// Installs each filter, in order. After the first one, every system
/// call this process makes is filtered: what follows is `execve` or, when
/// it fails, the report's `write` and `exit_group`, which the generated
/// programs allow (a caller's raw program must allow them itself).
pub(crate) fn install(plan: Option<&SeccompPlan>) -> Result<(), Failure> {
    let Some(plan) = plan else {
        return Ok(());
    };
    let mut item: u16 = 0;
    for prog in plan.filters.iter() {
        item = item.saturating_add(1);
        sys::seccomp::set_filter(prog, plan.via_prctl).at_item(Stage::Seccomp, item)?;
    }
    Ok(())
}
