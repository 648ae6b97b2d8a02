//! Credentials: capabilities (`clear_caps`, `allow_cap`), supplementary
//! groups, gid, uid and `no_new_privs`, read back from the child's own
//! /proc/self/status through the test helper.

mod common;

use common::{helper_for_any_user, report_of, Report};
use rustix::thread::CapabilitySet;
use safespawn::{Capability, Error, Stage};

/// Capability and credential tests need root; say so when skipping.
fn root(test: &str) -> bool {
    common::root_or_skip(test, "capabilities and credentials")
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
    assert_eq!(r.groups(), vec![100, 65532]);
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
        assert_eq!(control.groups(), vec![4242], "the spawning thread's groups");
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

/// A plain user cannot drop the bounding set (no CAP_SETPCAP), and with
/// `no_new_privs` need not: exec can then grant nothing. So a plain user's
/// `clear_caps().no_new_privs()` works (the README's main job), while
/// `clear_caps()` alone is still refused rather than silently weaker, and
/// root without CAP_SETPCAP is refused even with `no_new_privs` (exec
/// as root hands back the bounding set).
#[test]
fn a_plain_user_can_clear_caps_with_no_new_privs() {
    if !root("a_plain_user_can_clear_caps_with_no_new_privs") {
        return;
    }
    // Made while still root: the checkout may be unreachable for uid 65534.
    common::helper_path_for_any_user();
    std::thread::spawn(|| {
        // This thread becomes a plain user (per-thread credentials): its
        // capability sets empty, as any non-root user's are.
        rustix::thread::set_thread_groups(&[]).unwrap();
        rustix::thread::set_thread_gid(rustix::fs::Gid::from_raw(65534)).unwrap();
        rustix::thread::set_thread_uid(rustix::fs::Uid::from_raw(65534)).unwrap();
        let r = report_of(helper_for_any_user("report").clear_caps().no_new_privs());
        for set in ["capinh", "capprm", "capeff", "capamb"] {
            assert_eq!(caps(&r, set), 0, "{set}");
        }
        assert_eq!(r.field("nonewprivs"), "1");
        match helper_for_any_user("report").clear_caps().status() {
            Err(Error::Spawn { stage, errno, .. }) => {
                assert_eq!((stage, errno), (Stage::Caps, rustix::io::Errno::PERM))
            }
            other => panic!("clear_caps without no_new_privs as a plain user: {other:?}"),
        }
    })
    .join()
    .unwrap();
    std::thread::spawn(|| {
        let mut sets = rustix::thread::capabilities(None).unwrap();
        sets.effective.remove(CapabilitySet::SETPCAP);
        sets.permitted.remove(CapabilitySet::SETPCAP);
        rustix::thread::set_capabilities(None, sets).unwrap();
        match helper_for_any_user("report")
            .clear_caps()
            .no_new_privs()
            .status()
        {
            Err(Error::Spawn { stage, errno, .. }) => {
                assert_eq!((stage, errno), (Stage::Caps, rustix::io::Errno::PERM))
            }
            other => panic!("root without CAP_SETPCAP: {other:?}"),
        }
    })
    .join()
    .unwrap();
}
