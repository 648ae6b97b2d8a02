//! The core tests through the fallbacks, as on a system described by
//! `safespawn::__compat::LINUX_5_3` (see tests/compat_suite).

mod common;
#[macro_use]
mod compat_suite;

compat_suite!(
    safespawn::__compat::LINUX_5_3,
    clone_pidfd: true,
    fork_pidfd: true
);
