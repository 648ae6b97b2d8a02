//! Privileges and process attributes, read back from the child's own
//! /proc/self/status through the test helper.

mod common;

use common::{helper_for_any_user, is_root, own_session, report_of, Report};
use rustix::thread::CapabilitySet;
use safespawn::{Capability, Error, Resource, Signal, Stage};

/// Capability and credential tests need root; say so when skipping.
fn root(test: &str) -> bool {
    if !is_root() {
        eprintln!(
            "skipping {test}: it needs root (capabilities and credentials), and this is not root"
        );
    }
    is_root()
}

fn caps(r: &Report, key: &str) -> u64 {
    u64::from_str_radix(r.field(key), 16).unwrap_or_else(|_| panic!("{key}={:?}", r.field(key)))
}

const CAP_SETS: [&str; 5] = ["capinh", "capprm", "capeff", "capbnd", "capamb"];

#[test]
fn clear_caps_empties_all_five_sets() {
    if !root("clear_caps_empties_all_five_sets") {
        return;
    }
    let before = report_of(helper_for_any_user("report"));
    assert_ne!(
        caps(&before, "capbnd"),
        0,
        "the control child has a bounding set"
    );
    let r = report_of(helper_for_any_user("report").clear_caps());
    for set in CAP_SETS {
        assert_eq!(caps(&r, set), 0, "{set} after clear_caps");
    }
}

#[test]
fn allow_cap_under_another_uid_keeps_exactly_that_capability() {
    if !root("allow_cap_under_another_uid_keeps_exactly_that_capability") {
        return;
    }
    let bit = 1u64 << Capability::NetBindService as u8;
    let r = report_of(
        helper_for_any_user("report")
            .uid(65534)
            .gid(65534)
            .allow_cap(Capability::NetBindService),
    );
    assert_eq!(r.field("uid"), "65534 65534 65534 65534");
    assert_eq!(caps(&r, "capeff"), bit, "CapEff");
    assert_eq!(caps(&r, "capamb"), bit, "CapAmb");
    assert_eq!(caps(&r, "capprm"), bit, "CapPrm");
    assert_eq!(caps(&r, "capbnd"), bit, "CapBnd");
    // Without allow_cap the uid change leaves nothing.
    let r = report_of(helper_for_any_user("report").uid(65534).gid(65534));
    assert_eq!(caps(&r, "capeff"), 0);
    assert_eq!(caps(&r, "capamb"), 0);
}

#[test]
fn allow_cap_as_root_keeps_only_that_capability() {
    if !root("allow_cap_as_root_keeps_only_that_capability") {
        return;
    }
    let bit = 1u64 << Capability::NetBindService as u8;
    let r = report_of(helper_for_any_user("report").allow_cap(Capability::NetBindService));
    assert_eq!(r.field("uid"), "0 0 0 0");
    for set in ["capprm", "capeff", "capbnd", "capamb"] {
        assert_eq!(caps(&r, set), bit, "{set}");
    }
}

fn groups_of(r: &Report) -> Vec<u32> {
    let mut g: Vec<u32> = r
        .field("groups")
        .split_whitespace()
        .map(|g| g.parse().unwrap())
        .collect();
    g.sort_unstable();
    g
}

#[test]
fn uid_gid_groups_exactly_as_asked() {
    if !root("uid_gid_groups_exactly_as_asked") {
        return;
    }
    let r = report_of(
        helper_for_any_user("report")
            .uid(65534)
            .gid(65533)
            .groups(&[65532, 100]),
    );
    assert_eq!(r.field("uid"), "65534 65534 65534 65534");
    assert_eq!(r.field("gid"), "65533 65533 65533 65533");
    assert_eq!(groups_of(&r), vec![100, 65532]);
}

/// CPython's CVE-2023-6507: a uid/gid change without `.groups` must not let
/// the parent's supplementary groups through. The spawning thread gets a
/// supplementary group of its own first (credentials are per thread in the
/// kernel), so there is something to leak.
#[test]
fn uid_change_without_groups_clears_supplementary_groups() {
    if !root("uid_change_without_groups_clears_supplementary_groups") {
        return;
    }
    std::thread::spawn(|| {
        rustix::thread::set_thread_groups(&[rustix::fs::Gid::from_raw(4242)]).unwrap();
        let control = report_of(helper_for_any_user("report"));
        assert_eq!(
            groups_of(&control),
            vec![4242],
            "the spawning thread's groups"
        );
        let r = report_of(helper_for_any_user("report").uid(65534).gid(65534));
        assert_eq!(r.field("uid"), "65534 65534 65534 65534");
        assert_eq!(r.field("gid"), "65534 65534 65534 65534");
        assert_eq!(r.field("groups"), "", "supplementary groups must be empty");
        let r = report_of(helper_for_any_user("report").gid(65534));
        assert_eq!(r.field("groups"), "", "a gid change alone clears them too");
    })
    .join()
    .unwrap();
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
fn no_new_privs_is_set() {
    assert_eq!(
        report_of(helper_for_any_user("report")).field("nonewprivs"),
        "0"
    );
    assert_eq!(
        report_of(helper_for_any_user("report").no_new_privs()).field("nonewprivs"),
        "1"
    );
}

#[test]
fn new_session_makes_the_child_session_and_group_leader() {
    let r = report_of(helper_for_any_user("report").new_session());
    assert_eq!(r.field("sid"), r.field("pid"));
    assert_eq!(r.field("pgid"), r.field("pid"));
}

#[test]
fn process_group_zero_makes_the_child_group_leader_in_our_session() {
    let ours = own_session();
    let control = report_of(helper_for_any_user("report"));
    assert_ne!(control.field("pgid"), control.field("pid"));
    let r = report_of(helper_for_any_user("report").process_group(0));
    assert_eq!(r.field("pgid"), r.field("pid"));
    assert_eq!(r.field("sid"), ours);
}

#[test]
fn bad_process_group_requests_are_build_errors() {
    let e = helper_for_any_user("report")
        .process_group(-3)
        .build()
        .unwrap_err();
    assert!(
        matches!(&e, Error::Build { item, .. } if item == "process_group -3"),
        "{e}"
    );
    let e = helper_for_any_user("report")
        .new_session()
        .process_group(0)
        .build()
        .unwrap_err();
    assert!(
        matches!(&e, Error::Build { item, .. } if item == "process_group 0"),
        "{e}"
    );
}

/// The parent-death signal fires when the spawning *thread* exits: spawn
/// from a short-lived thread, keep the child (detached), let the thread end.
#[test]
fn parent_death_signal_fires_when_the_spawning_thread_exits() {
    let detached = std::thread::spawn(|| {
        helper_for_any_user("sleep=20")
            .parent_death_signal(Signal::USR2)
            .spawn()
            .unwrap()
            .detach()
    })
    .join()
    .unwrap();
    let finished = detached.wait().unwrap();
    assert_eq!(
        finished.signal(),
        Some(libc::SIGUSR2),
        "{:?}",
        finished.status()
    );
}

/// Privilege failures come back with their stage and errno. The spawning
/// thread first gives up one capability (per-thread credentials), and the
/// child inherits that thread's credentials.
#[test]
fn privilege_failures_are_reported_with_stage_and_errno() {
    if !root("privilege_failures_are_reported_with_stage_and_errno") {
        return;
    }
    std::thread::spawn(|| {
        let mut sets = rustix::thread::capabilities(None).unwrap();
        sets.effective
            .remove(CapabilitySet::SETUID | CapabilitySet::SETPCAP);
        sets.permitted
            .remove(CapabilitySet::SETUID | CapabilitySet::SETPCAP);
        rustix::thread::set_capabilities(None, sets).unwrap();

        match helper_for_any_user("report").uid(65534).gid(65534).status() {
            Err(Error::Spawn { stage, errno, .. }) => {
                assert_eq!((stage, errno), (Stage::Uid, rustix::io::Errno::PERM))
            }
            other => panic!("setuid without CAP_SETUID: {other:?}"),
        }
        match helper_for_any_user("report").clear_caps().status() {
            Err(Error::Spawn { stage, errno, .. }) => {
                assert_eq!((stage, errno), (Stage::Caps, rustix::io::Errno::PERM))
            }
            other => panic!("bounding-set drop without CAP_SETPCAP: {other:?}"),
        }
        // The gid change alone still works: CAP_SETGID was kept.
        let r = report_of(helper_for_any_user("report").gid(65534));
        assert_eq!(r.field("gid"), "65534 65534 65534 65534");
    })
    .join()
    .unwrap();
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
