//! `.cgroup(dir)` without `clone3` (`safespawn::__compat::NO_CLONE3`: a
//! kernel before 5.3, or a profile refusing `clone3`, as `tools/compat-run`'s
//! `5.4` does): the child writes itself to the cgroup's `cgroup.procs`
//! (opened at `build()`) right after the signal reset, on the plain
//! `clone` path and the fork path alike, and unshares a new cgroup
//! namespace after that. Alone in its binary: the flags are process-wide.

mod common;
#[macro_use]
mod compat_cgroup_suite;

compat_cgroup_suite!(safespawn::__compat::NO_CLONE3);
