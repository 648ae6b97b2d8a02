//! The core tests through the fallbacks, as on a system described by
//! `safespawn::__compat::LINUX_5_2` (see tests/compat_suite).

mod common;
#[macro_use]
mod compat_suite;

compat_suite!(
    safespawn::__compat::LINUX_5_2,
    clone_pidfd: true,
    fork_pidfd: false
);
