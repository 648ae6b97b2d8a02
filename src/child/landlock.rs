//! Landlock: the child enforces the ruleset `build()` created
//! (`landlock_restrict_self`), one system call on an fd of the plan.
//!
//! # The fd
//!
//! The ruleset fd belongs to the plan (close-on-exec, open in the parent
//! for as long as the `Prepared` lives), and the child's copy of it must
//! survive the fd steps that come before this one: the child carries its
//! number like the report pipe's ([`Carried::landlock`](super::Carried)),
//! the placement moves it away when a planned fd is to land on its number,
//! and the closing of inherited fds keeps it. The exec closes it.
//!
//! # The order
//!
//! After every mount (a landlocked process may not change its mount
//! topology: the kernel refuses `mount`, `pivot_root` and `umount` with
//! `EPERM`); after the credentials, where `no_new_privs` is set (the step
//! needs it when the child does not keep `CAP_SYS_ADMIN`); after the
//! working directory and the hooks: both are the caller's set-up, which
//! may need what the ruleset denies the program (a hook writing to a
//! cgroup file, say). Before the pause, so a paused child is already
//! confined when the parent acts on it, and before seccomp, whose filter
//! then need not allow this call.

use std::os::fd::RawFd;

use super::report::{At, Failure};
use crate::error::Stage;
use crate::sys;

/// What the child does about landlock.
#[derive(Debug)]
pub(crate) struct LandlockPlan {
    /// The ruleset fd in the parent, or -1 without landlock.
    pub ruleset: RawFd,
}

impl Default for LandlockPlan {
    fn default() -> Self {
        LandlockPlan { ruleset: -1 }
    }
}

/// `landlock_restrict_self(ruleset, 0)` on the ruleset's fd as the child
/// carries it (`-1`: no landlock, nothing to do).
pub(crate) fn restrict(ruleset: RawFd) -> Result<(), Failure> {
    if ruleset < 0 {
        return Ok(());
    }
    sys::landlock::restrict_self(ruleset).at(Stage::Landlock)
}
