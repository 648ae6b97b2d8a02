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
    /// The fd number the report pipe moves to before the first filter:
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
/// then installs each filter. After the first one, every system call this
/// process makes is filtered: what follows is `execve` or, when it fails,
/// the report's `write` and `exit_group`, which the generated programs
/// allow (a caller's raw program must allow them itself).
pub(crate) fn install(plan: Option<&SeccompPlan>, carried: &mut Carried) -> Result<(), Failure> {
    let Some(plan) = plan else {
        return Ok(());
    };
    if plan.report_fd >= 0 && carried.report != plan.report_fd {
        // SAFETY: the report fd is open in this process; it is only
        // borrowed for the call.
        let source = unsafe { BorrowedFd::borrow_raw(carried.report) };
        // SAFETY: the target number is never closed by us (ManuallyDrop):
        // dup3 replaces whatever is there, which `build()` chose to be no
        // planned fd; the pause pipe, if it sat there, is done with.
        let mut target = ManuallyDrop::new(unsafe { OwnedFd::from_raw_fd(plan.report_fd) });
        rustix::io::dup3(source, &mut target, DupFlags::CLOEXEC).at(Stage::Seccomp)?;
        carried.report = plan.report_fd;
    }
    let mut item: u16 = 0;
    for prog in plan.filters.iter() {
        item = item.saturating_add(1);
        sys::seccomp::set_filter(prog, plan.via_prctl).at_item(Stage::Seccomp, item)?;
    }
    Ok(())
}
