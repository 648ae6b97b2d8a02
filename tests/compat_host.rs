//! The compat suite (tests/compat_suite) on this system as it is, without
//! emulated refusals: the baseline the `compat_*` binaries are compared to,
//! and, under `.ci/compat-profiles`, the same tests meeting a real seccomp
//! profile's refusals.

mod common;
#[macro_use]
mod compat_suite;

compat_suite!(0, clone_pidfd: true, fork_pidfd: true);
