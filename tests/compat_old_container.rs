//! The core tests through the fallbacks, as on a system described by
//! `safespawn::__compat::OLD_CONTAINER_PROFILE` (see tests/compat_suite).

mod common;
#[macro_use]
mod compat_suite;

compat_suite!(
    safespawn::__compat::OLD_CONTAINER_PROFILE,
    clone_pidfd: true,
    fork_pidfd: false
);
