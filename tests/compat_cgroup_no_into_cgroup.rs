//! `.cgroup(dir)` with a `clone3` that lacks `CLONE_INTO_CGROUP` (Linux
//! 5.5 and 5.6: `safespawn::__compat::NO_CLONE_INTO_CGROUP`): the child is
//! made by `clone3` (its handlers reset by the kernel) and writes itself to
//! the cgroup's `cgroup.procs`; the fork path forks. Alone in its binary:
//! the flags are process-wide.

mod common;
#[macro_use]
mod compat_cgroup_suite;

compat_cgroup_suite!(safespawn::__compat::NO_CLONE_INTO_CGROUP);
