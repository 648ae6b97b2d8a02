//! The core tests through the fallbacks, as on a system described by
//! `safespawn::__compat::CLONE_PIDFD_REFUSED` (see tests/compat_suite).

mod common;
#[macro_use]
mod compat_suite;

compat_suite!(
    safespawn::__compat::CLONE_PIDFD_REFUSED,
    clone_pidfd: true,
    fork_pidfd: true
);
