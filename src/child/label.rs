//! The security label the program will run with: the SELinux exec context
//! and the AppArmor profile, each written to the kernel's `exec` attribute
//! of this thread, which the next `execve` applies.
//!
//! # The order
//!
//! 1. **SELinux**: the label and its NUL, with one write to
//!    `thread-self/attr/exec` of the plan's `/proc` fd (what libselinux's
//!    `setexeccon_raw` writes). A refusal fails the spawn only while SELinux
//!    enforces (libvirt's SetSELinuxLabel): the child then reads the
//!    plan's selinuxfs `enforce` file, and where there is none (SELinux not
//!    enabled) or it reads `0` (permissive) the refusal is ignored, since
//!    such a system confines nothing by label anyway;
//! 2. **AppArmor**: `exec NAME` with one write to
//!    `thread-self/attr/apparmor/exec` (Linux 5.1), or where that file is
//!    missing to `thread-self/attr/exec` (what libapparmor's
//!    `aa_change_onexec` writes). A refusal always fails the spawn, as in
//!    libvirt (SetAppArmorProfile).
//!
//! After the knobs (whose privilege the label might restrict once the
//! program runs) and before the credentials: the attribute belongs to
//! this thread, and a policy may refuse a transition to a process whose
//! uid has changed. The label takes effect at exec; nothing before it runs
//! under it.

use std::ffi::CStr;
use std::os::fd::{BorrowedFd, RawFd};

use rustix::io::Errno;

use super::knobs::write_once;
use super::report::{AtItem, Failure};
use super::Carried;
use crate::error::Stage;
use crate::frozen::Frozen;
use crate::sys;

/// Below the plan's `/proc` fd: the exec attribute of the major LSM.
pub(crate) const ATTR_EXEC: &CStr = c"thread-self/attr/exec";
/// Below the plan's `/proc` fd: AppArmor's own exec attribute (5.1).
pub(crate) const APPARMOR_EXEC: &CStr = c"thread-self/attr/apparmor/exec";

/// The item of a [`Stage::Label`] failure: which write the kernel refused.
pub(crate) const ITEM_SELINUX: u16 = 1;
/// AppArmor's own attribute.
pub(crate) const ITEM_APPARMOR: u16 = 2;
/// AppArmor through the major LSM's attribute (no `attr/apparmor/`).
pub(crate) const ITEM_APPARMOR_FALLBACK: u16 = 3;

/// What the child writes before exec.
#[derive(Debug, Default)]
pub(crate) struct LabelPlan {
    /// The SELinux context, NUL-terminated as it is written.
    pub selinux: Option<Frozen<[u8]>>,
    /// `exec NAME`.
    pub apparmor: Option<Frozen<[u8]>>,
    /// SELinux's `enforce` file, or -1 (see [`enforcing`]).
    pub enforce: RawFd,
    /// `build()` could not tell whether SELinux enforces (the `enforce`
    /// file exists but could not be opened): a refusal is fatal.
    pub enforce_unknown: bool,
}

/// Writes the labels (see the module docs for the order and its reasons).
pub(crate) fn apply(plan: &LabelPlan, carried: &Carried) -> Result<(), Failure> {
    if let Some(label) = &plan.selinux {
        if let Err(e) = write_once(carried.proc, ATTR_EXEC, label) {
            if enforcing(plan, carried.enforce) {
                return Err(e).at_item(Stage::Label, ITEM_SELINUX);
            }
        }
    }
    if let Some(profile) = &plan.apparmor {
        match write_once(carried.proc, APPARMOR_EXEC, profile) {
            Ok(()) => {}
            Err(Errno::NOENT) => write_once(carried.proc, ATTR_EXEC, profile)
                .at_item(Stage::Label, ITEM_APPARMOR_FALLBACK)?,
            Err(e) => return Err(e).at_item(Stage::Label, ITEM_APPARMOR),
        }
    }
    Ok(())
}

/// Whether SELinux enforces now: its `enforce` file reads anything but
/// `0`. No file (SELinux not enabled at `build()`) is no; a file that
/// cannot be read is yes.
fn enforcing(plan: &LabelPlan, enforce: RawFd) -> bool {
    if sys::compat::forced(sys::compat::SELINUX_ENFORCING) || plan.enforce_unknown {
        return true;
    }
    if enforce < 0 {
        return false;
    }
    // SAFETY: the plan's enforce fd, open in this process until exec (the
    // fd steps kept it, or moved it and said where).
    let fd = unsafe { BorrowedFd::borrow_raw(enforce) };
    let mut buf = [0u8; 4];
    match rustix::io::pread(fd, &mut buf, 0) {
        Ok(n) => buf.get(..n).and_then(|b| b.first()) != Some(&b'0'),
        Err(_) => true,
    }
}
