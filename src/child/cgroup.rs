//! The cgroup: where the child is placed, and the child's own part of it
//! where the kernel cannot place it at the clone.
//!
//! With `CLONE_INTO_CGROUP` (Linux 5.7, the `clone3` paths) the kernel
//! starts the child in the cgroup and the child does nothing here: there
//! is no moment in which it runs in the caller's cgroup. Elsewhere (no
//! `clone3`, a kernel before 5.7, a seccomp profile refusing `clone3`) the
//! child writes `"0"` (itself) to the cgroup's `cgroup.procs`, which
//! `build()` opened for writing. The kernel checks a write to that file
//! against the credentials of whoever *opened* it, so the write is the
//! caller's, as `CLONE_INTO_CGROUP` is: a child already in a new user
//! namespace (made by the clone) keeps the caller's right to move into a
//! cgroup the caller may write but it, without privilege over the caller's
//! namespace, could not open. And it is one system call.
//!
//! With [`Namespaces::CGROUP`](crate::Namespaces::CGROUP) the new cgroup
//! namespace's root is the cgroup the child is in when the namespace is
//! made. A `clone3` with both `CLONE_NEWCGROUP` and `CLONE_INTO_CGROUP`
//! roots it at the target (the kernel sets the root once the child is
//! placed, since 5.7); on the path where the child places itself,
//! `build()` leaves `CLONE_NEWCGROUP` out of the clone and the child
//! unshares it right after the write, as systemd and crun do.

use std::os::fd::{BorrowedFd, RawFd};

use rustix::io::Errno;
use rustix::thread::UnshareFlags;

use super::report::{At, Failure};
use crate::error::Stage;

/// How the child gets into its cgroup.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) enum Placement {
    /// No cgroup asked for: the child stays in the caller's.
    #[default]
    None,
    /// `CLONE_INTO_CGROUP` with this directory fd (O_PATH, owned by the
    /// plan), read by the spawning side; the child does nothing.
    ByClone(RawFd),
    /// The child writes `"0"` to `procs` (the cgroup's `cgroup.procs`,
    /// opened for writing at `build()` and owned by the plan), then, with
    /// `new_namespace`, unshares its cgroup namespace.
    ByWrite { procs: RawFd, new_namespace: bool },
    /// Opening `cgroup.procs` at `build()` failed with this errno: every
    /// spawn fails with it at [`Stage::Cgroup`], before any clone, as the
    /// kernel's refusal of `CLONE_INTO_CGROUP` would.
    Refused(Errno),
}

impl Placement {
    /// The directory fd for `CLONE_INTO_CGROUP`, if the kernel places the
    /// child.
    pub(crate) fn clone_fd(&self) -> Option<RawFd> {
        match self {
            Placement::ByClone(fd) => Some(*fd),
            _ => None,
        }
    }
}

/// The child's placement, where the kernel did not make it at the clone
/// (see the module docs). A refused write is [`Stage::Cgroup`] with the
/// kernel's errno (`EBUSY`: the target has domain controllers enabled in
/// its `cgroup.subtree_control`; `EACCES`: delegation; `ENODEV`: the cgroup
/// was removed); a refused `unshare` is [`Stage::Namespace`].
pub(crate) fn apply(placement: &Placement) -> Result<(), Failure> {
    let Placement::ByWrite {
        procs,
        new_namespace,
    } = *placement
    else {
        return Ok(());
    };
    // SAFETY: the plan owns the fd (close-on-exec) for as long as a child
    // of it can run, and no step before this one closes or moves fds.
    let fd = unsafe { BorrowedFd::borrow_raw(procs) };
    let n = rustix::io::retry_on_intr(|| rustix::io::write(fd, b"0")).at(Stage::Cgroup)?;
    if n != 1 {
        return Err(Errno::IO).at(Stage::Cgroup);
    }
    if new_namespace {
        // SAFETY: unshare is unsafe for UnshareFlags::FILES (fds other
        // threads opened); CLONE_NEWCGROUP changes nothing but this
        // process's view of the cgroup tree.
        unsafe { rustix::thread::unshare_unsafe(UnshareFlags::NEWCGROUP) }.at(Stage::Namespace)?;
    }
    Ok(())
}
