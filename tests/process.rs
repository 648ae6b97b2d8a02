//! Process attributes: the umask and resource limits, read back from the
//! child's own /proc/self/status and /proc/self/limits through the test
//! helper.

mod common;

use common::{helper_for_any_user, report_of};
use rustix::thread::CapabilitySet;
use safespawn::{Error, Resource, Stage};

/// Raising a hard limit is refused only without `CAP_SYS_RESOURCE`, which
/// the test removes from a root thread; say so when skipping.
fn root(test: &str) -> bool {
    common::root_or_skip(test, "to drop CAP_SYS_RESOURCE from a thread")
}

#[test]
fn umask_0002_and_0() {
    let control = report_of(helper_for_any_user("report").umask(0o022));
    assert_eq!(control.field("umask"), "0022");
    assert_eq!(
        report_of(helper_for_any_user("report").umask(0o002)).field("umask"),
        "0002"
    );
    assert_eq!(
        report_of(helper_for_any_user("report").umask(0)).field("umask"),
        "0000"
    );
}

#[test]
fn rlimit_nofile_256_512() {
    let r = report_of(helper_for_any_user("report").rlimit(Resource::Nofile, 256, 512));
    assert_eq!(
        r.rlimits.get("Max_open_files"),
        Some(&("256".to_string(), "512".to_string()))
    );
}

#[test]
fn raising_a_hard_rlimit_without_privilege_is_reported() {
    if !root("raising_a_hard_rlimit_without_privilege_is_reported") {
        return;
    }
    std::thread::spawn(|| {
        let mut sets = rustix::thread::capabilities(None).unwrap();
        sets.effective.remove(CapabilitySet::SYS_RESOURCE);
        rustix::thread::set_capabilities(None, sets).unwrap();
        let hard = rustix::process::getrlimit(Resource::Nofile)
            .maximum
            .unwrap_or(u64::MAX);
        if hard == u64::MAX {
            eprintln!("skipping: RLIMIT_NOFILE is unlimited here, nothing to raise");
            return;
        }
        match helper_for_any_user("report")
            .rlimit(Resource::Nofile, 16, hard + 1)
            .status()
        {
            Err(Error::Spawn { stage, errno, .. }) => {
                assert_eq!((stage, errno), (Stage::Rlimit, rustix::io::Errno::PERM))
            }
            other => panic!("raising the hard limit without CAP_SYS_RESOURCE: {other:?}"),
        }
    })
    .join()
    .unwrap();
}
