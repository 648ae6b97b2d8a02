//! Signal dispositions and the mask the program starts with.

use std::ffi::c_int;

use rustix::io::Errno;

use crate::sys::signal::{self as sig, SigSet};

/// What the child does with signals, decided at `build()`.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct SignalPolicy {
    pub keep_mask: bool,
    pub keep_ignored: bool,
    /// The signals the parent ignored when `build()` ran (bit `n - 1` for
    /// signal `n`); empty with `keep_ignored`. On the `clone3` path the
    /// kernel resets every handler, so these are the only dispositions the
    /// child still sets (see [`reset`]).
    pub ignored_at_build: u64,
}

/// Default dispositions, then the mask.
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
pub(crate) fn reset(
    policy: &SignalPolicy,
    parent_mask: &SigSet,
    handlers_cleared: bool,
) -> Result<(), Errno> {
    if handlers_cleared {
        let mut ignored = if policy.keep_ignored {
            0
        } else {
            policy.ignored_at_build
        };
        while ignored != 0 {
            // At most 64, and at least 1: the set is not empty.
            let n = ignored.trailing_zeros().wrapping_add(1) as c_int;
            // Clears the lowest set bit (`ignored` is not 0).
            ignored &= ignored.wrapping_sub(1);
            // The clone3 path exists on x86_64 only (see `sys::clone::clone3_usable`).
            #[cfg(target_arch = "x86_64")]
            sig::kernel_set_default(n)?;
            #[cfg(not(target_arch = "x86_64"))]
            sig::set_signal_default(n)?;
        }
    } else {
        for n in 1..=sig::SIGNAL_MAX {
            if sig::signal_is_reserved(n) {
                // The C library's two signals: reset through the kernel
                // (an inherited SIG_IGN would survive exec otherwise).
                #[cfg(target_arch = "x86_64")]
                if (n == 32 || n == 33) && !policy.keep_ignored {
                    sig::kernel_set_default(n)?;
                }
                continue;
            }
            let was_ignored = sig::set_signal_default(n)?;
            if was_ignored && policy.keep_ignored {
                sig::set_signal_ignored(n)?;
            }
        }
    }
    set_final_mask(policy, parent_mask)
}

/// The signal mask the program starts with: empty, or the parent's.
pub(crate) fn set_final_mask(policy: &SignalPolicy, parent_mask: &SigSet) -> Result<(), Errno> {
    if policy.keep_mask {
        sig::set_signal_mask(parent_mask)
    } else {
        sig::set_signal_mask(&sig::empty_sigset())
    }
}
