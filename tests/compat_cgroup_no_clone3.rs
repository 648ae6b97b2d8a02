//! `.cgroup(dir)` without `clone3` (`safespawn::__compat::NO_CLONE3`: a
//! kernel before 5.3, or a profile refusing `clone3`, as `tools/compat-run`'s
//! `5.4` does): the child writes itself to the cgroup's `cgroup.procs`
//! (opened at `build()`) right after the signal reset, on the plain
//! `clone` path and the fork path alike, and unshares a new cgroup
//! namespace after that. Alone in its binary: the flags are process-wide.

mod common;

use std::sync::Mutex;

use common::cgroup::{self as cg, cgroup_or_skip, ScratchCgroup};
use safespawn::Errno;

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// Forces the flags and serialises the tests (they count fds).
fn setup() -> std::sync::MutexGuard<'static, ()> {
    safespawn::__force_compat(safespawn::__compat::NO_CLONE3);
    ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
}

#[test]
fn the_child_places_itself_on_every_path() {
    let _one = setup();
    let Some(mount) = cgroup_or_skip("the_child_places_itself_on_every_path") else {
        return;
    };
    cg::check_placement(&ScratchCgroup::new(&mount, "self-placed"));
}

#[test]
fn a_daemon_runs_in_the_cgroup() {
    let _one = setup();
    let Some(mount) = cgroup_or_skip("a_daemon_runs_in_the_cgroup") else {
        return;
    };
    rustix::process::set_child_subreaper(Some(rustix::process::getpid())).unwrap();
    cg::check_daemon(&ScratchCgroup::new(&mount, "daemon"));
}

#[test]
fn a_new_cgroup_namespace_is_rooted_at_the_target() {
    let _one = setup();
    let Some(mount) = cgroup_or_skip("a_new_cgroup_namespace_is_rooted_at_the_target") else {
        return;
    };
    cg::check_namespace_root(&ScratchCgroup::new(&mount, "ns-root"));
}

#[test]
fn a_removed_cgroup_is_enodev_at_stage_cgroup() {
    let _one = setup();
    let Some(mount) = cgroup_or_skip("a_removed_cgroup_is_enodev_at_stage_cgroup") else {
        return;
    };
    // The write to a removed cgroup's cgroup.procs: ENODEV (the clone3
    // path's ENOENT comes from the lookup of the directory).
    cg::check_removed(&mount, &[Errno::NODEV]);
}

#[test]
fn an_invalid_domain_is_eopnotsupp() {
    let _one = setup();
    let Some(mount) = cgroup_or_skip("an_invalid_domain_is_eopnotsupp") else {
        return;
    };
    cg::check_invalid_domain(&mount);
}
