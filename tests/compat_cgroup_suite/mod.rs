//! The cgroup placement tests of a child that places itself (writes
//! itself to the cgroup's `cgroup.procs`, opened at `build()`), as on a
//! system without `CLONE_INTO_CGROUP`. Each `compat_cgroup_*` binary
//! instantiates [`compat_cgroup_suite!`] with its `safespawn::__compat`
//! flags; alone in its binary, since the flags are process-wide.

/// Defines the suite's tests for the `safespawn::__compat` flags `$flags`.
macro_rules! compat_cgroup_suite {
    ($flags:expr) => {
        use std::sync::Mutex;

        use common::cgroup::{self as cg, cgroup_or_skip, ScratchCgroup};
        use safespawn::Errno;

        static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

        /// Forces the flags and serialises the tests (they count fds).
        fn setup() -> std::sync::MutexGuard<'static, ()> {
            safespawn::__force_compat($flags);
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
            let Some(mount) = cgroup_or_skip("a_new_cgroup_namespace_is_rooted_at_the_target")
            else {
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
    };
}
